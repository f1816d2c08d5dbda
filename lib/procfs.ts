/**
 * Reads files under /proc and /sys. Deno only lets a process read those with --allow-all, so the
 * reads go through one `tail` child per call (the same way systeminformation reads them), which
 * needs only `--allow-run=tail`.
 */

/** Reads several files in one child process; a file that cannot be read is absent. */
export async function readProcFiles(paths: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (paths.length === 0) return out;
  const { stdout } = await new Deno.Command("tail", {
    args: ["-v", "-n", "+1", "--", ...paths],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(stdout);
  const re = /^==> (.+) <==$/gm;
  const marks: Array<{ path: string; start: number; end: number }> = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    marks.push({ path: m[1]!, start: m.index + m[0].length + 1, end: m.index });
  }
  marks.forEach((mark, i) => {
    const next = marks[i + 1];
    out.set(mark.path, text.slice(mark.start, next ? next.end : text.length).replace(/\n+$/, "\n"));
  });
  return out;
}

/** Sums received and sent bytes over every interface in /proc/net/dev text. */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split("\n").slice(2)) {
    const [, rest] = line.split(":");
    if (!rest) continue;
    const cols = rest.trim().split(/\s+/).map(Number);
    rx += cols[0] ?? 0;
    tx += cols[8] ?? 0;
  }
  return { rx, tx };
}
