/**
 * Prerequisite check run before `deno task start`, `deno task worker` and `deno task test`:
 * redis-server, chromium and ffmpeg must be on this machine. When one is missing and we are root
 * on a system with apt-get, it is installed; otherwise one line names the install command.
 * Fast when everything is present (a PATH lookup, no child process).
 */

interface Need {
  bin: string;
  pkg: string;
  /** An explicit path that replaces the PATH lookup (STREAMPLAY_CHROMIUM). */
  path?: string | undefined;
}

function onPath(bin: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    try {
      if (Deno.statSync(`${dir}/${bin}`).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

export function missingPrerequisites(needs: Need[]): Need[] {
  return needs.filter((n) => !(n.path ? exists(n.path) : onPath(n.bin)));
}

async function sh(cmd: string, args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command(cmd, {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return success;
}

if (import.meta.main) {
  const chromium = Deno.env.get("STREAMPLAY_CHROMIUM");
  const missing = missingPrerequisites([
    { bin: "redis-server", pkg: "redis-server" },
    { bin: "chromium", pkg: "chromium", path: chromium },
    { bin: "ffmpeg", pkg: "ffmpeg" },
  ]);
  if (missing.length > 0) {
    const pkgs = missing.map((m) => m.pkg);
    const names = missing.map((m) => m.path ?? m.bin).join(", ");
    const isRoot = Deno.uid() === 0;
    if (isRoot && onPath("apt-get")) {
      console.error(`streamplay: installing ${pkgs.join(" ")} (missing: ${names})`);
      const ok = await sh("apt-get", ["update", "-qq"]) &&
        await sh("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs]);
      if (!ok || missingPrerequisites(missing).length > 0) {
        console.error(`streamplay: could not install ${pkgs.join(" ")} with apt-get`);
        Deno.exit(1);
      }
    } else {
      console.error(
        `streamplay needs ${names}: install with \`sudo apt-get install -y ${pkgs.join(" ")}\`` +
          (chromium ? ` (or fix STREAMPLAY_CHROMIUM=${chromium})` : ""),
      );
      Deno.exit(1);
    }
  }
}
