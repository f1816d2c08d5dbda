/**
 * Browser scenarios: the declarative steps a virtual user repeats, their schema (which also feeds
 * the OpenAPI document and the /bench editor's messages), the default scenario, and its URLs.
 */
import { z } from "@hono/zod-openapi";

const ACTIONS = [
  "goto",
  "click",
  "type",
  "scroll",
  "wait",
  "screenshot",
  "hover",
  "press",
] as const;

const required = (what: string) => ({
  error: (issue: { input?: unknown }) =>
    issue.input === undefined ? `is required (${what})` : `must be ${what}`,
});
const selector = z.string(required("a CSS or Playwright selector")).min(1).max(2000);

const GotoStep = z.object({
  action: z.literal("goto"),
  url: z.string().max(8192).optional()
    .openapi({ description: "Absolute, or relative to the job's url; default the job's url." }),
}).strict();
const ClickStep = z.object({ action: z.literal("click"), selector }).strict();
const TypeStep = z.object({
  action: z.literal("type"),
  selector,
  text: z.string(required("the text to type")).max(10_000),
}).strict();
const ScrollStep = z.object({
  action: z.literal("scroll"),
  by: z.number().int().min(-1_000_000).max(1_000_000).optional()
    .openapi({ description: "Pixels to scroll down (negative: up) with the mouse wheel." }),
  to: z.enum(["top", "bottom"]).optional(),
}).strict().superRefine((s, ctx) => {
  if (s.by !== undefined && s.to !== undefined) {
    ctx.addIssue({ code: "custom", path: ["to"], message: "give by or to, not both" });
  }
});
const WaitStep = z.object({
  action: z.literal("wait"),
  ms: z.number().int().min(0).max(600_000).optional(),
  selector: selector.optional(),
}).strict().superRefine((s, ctx) => {
  if ((s.ms === undefined) === (s.selector === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["ms"],
      message: "give exactly one of ms (a pause) or selector (wait until it is visible)",
    });
  }
});
const ScreenshotStep = z.object({
  action: z.literal("screenshot"),
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "may hold only letters, digits and _.- (64 max)")
    .optional(),
}).strict();
const HoverStep = z.object({ action: z.literal("hover"), selector }).strict();
const PressStep = z.object({
  action: z.literal("press"),
  key: z.string(required('a key name such as "Enter" or "Control+A"')).min(1).max(64),
  selector: selector.optional(),
}).strict();

export const Step = z.discriminatedUnion("action", [
  GotoStep,
  ClickStep,
  TypeStep,
  ScrollStep,
  WaitStep,
  ScreenshotStep,
  HoverStep,
  PressStep,
], { error: () => `must be one of ${ACTIONS.join(", ")}` }).openapi("ScenarioStep");

export type Step = z.infer<typeof Step>;

/** Open the URL, scroll, wait, repeat. */
export const DEFAULT_SCENARIO: Step[] = [
  { action: "goto" },
  { action: "scroll", by: 600 },
  { action: "wait", ms: 1000 },
];

export const Scenario = z.array(Step).min(1).max(100).default(DEFAULT_SCENARIO)
  .openapi({ description: "Steps each virtual user repeats until the level ends." });

/** The absolute URL a `goto` step opens. */
export function stepUrl(step: { url?: string | undefined }, base: string): string {
  return step.url === undefined ? base : new URL(step.url, base).href;
}

/** Every URL a scenario opens, by field path (for the URL policy). */
export function scenarioUrls(steps: Step[], base: string): Array<{ field: string; url: string }> {
  const out: Array<{ field: string; url: string }> = [];
  steps.forEach((step, i) => {
    if (step.action !== "goto" || step.url === undefined) return;
    let url: string;
    try {
      url = stepUrl(step, base);
    } catch {
      url = step.url;
    }
    out.push({ field: `params.scenario.${i}.url`, url });
  });
  return out;
}
