/**
 * The figures a bench writes with `--json <path>` (kept in docs/perf/<bench>.json): their shape,
 * checked with zod when read, and how a row reads in a table, the same in the bench's output and
 * in docs/performance.md.
 */
import { z } from "zod";

const Value = z.union([z.number(), z.string()]).nullable();

export const BenchRowSchema = z.object({
  metric: z.string().min(1),
  ours: Value,
  peer: Value,
  peer_name: z.string().nullable(),
  unit: z.string().nullable(),
  target: z.string().nullable(),
  met: z.boolean().nullable(),
});

export const BenchJsonSchema = z.object({
  bench: z.string().regex(/^[a-z]+$/),
  command: z.string().min(1),
  date: z.iso.datetime(),
  machine: z.object({
    cores: z.number().int().positive(),
    memory_gb: z.number().positive(),
    load_before: z.number().nonnegative(),
  }),
  rows: z.array(BenchRowSchema).min(1),
});

export type BenchJson = z.infer<typeof BenchJsonSchema>;

/** One figure: ours beside the peer's from the same run, and the target it answers. */
export type BenchRow =
  & Pick<z.infer<typeof BenchRowSchema>, "metric" | "ours">
  & Partial<z.infer<typeof BenchRowSchema>>;

/** A value with its unit, as tables print it: "10,444 jobs/s", "1.11×", "–" for none. */
function withUnit(v: number | string | null, unit: string | null): string {
  if (v === null) return "–";
  if (typeof v === "string") return v;
  const text = v.toLocaleString("en-US", { maximumFractionDigits: 6 });
  if (!unit) return text;
  return unit.startsWith("×") ? `${text}${unit}` : `${text} ${unit}`;
}

export const ROW_HEADER = ["figure", "streamplay", "peer (same run)", "target", "met"];

/** A row's cells: figure, ours, the peer (named), target, met. */
export function rowCells(row: z.infer<typeof BenchRowSchema>): string[] {
  const peer = row.peer === null
    ? row.peer_name ?? ""
    : `${row.peer_name ? `${row.peer_name}: ` : ""}${withUnit(row.peer, row.unit)}`;
  const met = row.met === null ? "" : row.met ? "yes" : "**no**";
  return [row.metric, withUnit(row.ours, row.unit), peer, row.target ?? "", met];
}
