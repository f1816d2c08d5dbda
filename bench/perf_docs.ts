/**
 * `deno task perf:docs`: rewrites the tables of docs/performance.md from the figures the benches
 * wrote (`deno task bench:<name> --json docs/perf/<name>.json`), each between
 * `<!-- perf:<name> -->` and `<!-- /perf:<name> -->`, plus the summary of every target.
 */
import { type BenchJson, BenchJsonSchema, ROW_HEADER, rowCells } from "./bench_json.ts";

const DOCS = new URL("../docs/", import.meta.url);
export const PERF_DOC = new URL("performance.md", DOCS);
export const PERF_DIR = new URL("perf/", DOCS);

/** Every docs/perf/<name>.json, checked against the schema, sorted by name. */
export async function loadReports(dir: URL = PERF_DIR): Promise<BenchJson[]> {
  const reports: BenchJson[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    const file = new URL(entry.name, dir);
    const parsed = BenchJsonSchema.safeParse(JSON.parse(await Deno.readTextFile(file)));
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`${entry.name}: ${issue.path.join(".")}: ${issue.message}`);
    }
    if (`${parsed.data.bench}.json` !== entry.name) {
      throw new Error(`${entry.name} holds the figures of bench "${parsed.data.bench}"`);
    }
    reports.push(parsed.data);
  }
  return reports.sort((a, b) => a.bench.localeCompare(b.bench));
}

/** A Markdown table aligned as `deno fmt` aligns it, so the generated file passes its check. */
function table(rows: string[][]): string {
  const cells = rows.map((r) => r.map((c) => c.replaceAll("|", "\\|")));
  const width = (s: string) => [...s].length;
  const widths = cells[0]!.map((_, i) => Math.max(3, ...cells.map((r) => width(r[i]!))));
  const line = (r: string[]) =>
    `| ${r.map((c, i) => c + " ".repeat(widths[i]! - width(c))).join(" | ")} |`;
  const rule = `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`;
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join("\n");
}

/** A paragraph wrapped at `deno fmt`'s line width (100), code spans kept whole as it keeps them. */
function paragraph(text: string): string {
  const words = text.match(/(?:`[^`]*`|[^\s`])+/g) ?? [];
  const lines: string[] = [];
  for (const word of words) {
    const last = lines.at(-1);
    if (last !== undefined && [...last].length + 1 + [...word].length <= 100) {
      lines[lines.length - 1] = `${last} ${word}`;
    } else lines.push(word);
  }
  return lines.join("\n");
}

const day = (iso: string) => iso.slice(0, 10);

function benchBlock(report: BenchJson): string {
  const m = report.machine;
  return [
    paragraph(
      `\`${report.command}\` on ${day(report.date)} (${m.cores} cores, ${m.memory_gb} GB, load ` +
        `average ${m.load_before.toFixed(2)} before it):`,
    ),
    "",
    table([ROW_HEADER, ...report.rows.map(rowCells)]),
  ].join("\n");
}

function summaryBlock(reports: BenchJson[]): string {
  const rows = reports.flatMap((r) =>
    r.rows.filter((row) => row.target !== null).map((row) => {
      const [metric, ...rest] = rowCells(row);
      return [metric!, `\`deno task bench:${r.bench}\``, ...rest];
    })
  );
  const [figure, ...rest] = ROW_HEADER;
  return table([[figure!, "command", ...rest], ...rows]);
}

/** `doc` with every generated block rewritten from `reports`. */
export function renderPerformance(doc: string, reports: BenchJson[]): string {
  const byName = new Map(reports.map((r) => [r.bench, r]));
  const seen = new Set<string>();
  const out = doc.replace(
    /<!-- perf:([a-z]+) -->[\s\S]*?<!-- \/perf:\1 -->/g,
    (_, name: string) => {
      seen.add(name);
      let body: string;
      if (name === "summary") body = summaryBlock(reports);
      else {
        const report = byName.get(name);
        if (!report) throw new Error(`docs/perf/${name}.json is missing for <!-- perf:${name} -->`);
        body = benchBlock(report);
      }
      return `<!-- perf:${name} -->\n\n${body}\n\n<!-- /perf:${name} -->`;
    },
  );
  const unplaced = reports.filter((r) => !seen.has(r.bench)).map((r) => r.bench);
  if (unplaced.length > 0) {
    throw new Error(
      `docs/performance.md has no place for ${unplaced.join(", ")}: add ` +
        unplaced.map((n) => `<!-- perf:${n} --><!-- /perf:${n} -->`).join(", "),
    );
  }
  return out;
}

if (import.meta.main) {
  const doc = await Deno.readTextFile(PERF_DOC);
  const reports = await loadReports();
  const next = renderPerformance(doc, reports);
  if (next !== doc) await Deno.writeTextFile(PERF_DOC, next);
  console.log(
    `docs/performance.md ${next === doc ? "was already up to date" : "rewritten"} from ` +
      reports.map((r) => `docs/perf/${r.bench}.json`).join(", "),
  );
}
