/**
 * The import rules `deno task ok` enforces (docs/architecture.md):
 *   main.ts → routes/, workers/, lib/    routes/ → lib/    workers/ → lib/    lib/ → lib/ only
 * Route files never import each other; the CLI reaches the platform through lib/ (its job
 * types come from cli/job_types.ts, its composition point); nothing imports in a circle. Tests
 * and benches may import anything.
 */
const ABOVE_LIB = "^(main\\.ts|routes/|workers/|cli/|bench/|tests/|examples/)";
const notTest = "_test\\.ts$";

module.exports = {
  forbidden: [
    {
      name: "lib-imports-only-lib",
      comment: "lib/ is the platform: what it needs from routes or workers is passed in by main.ts",
      severity: "error",
      from: { path: "^lib/", pathNot: notTest },
      to: { path: ABOVE_LIB },
    },
    {
      name: "routes-import-only-lib",
      comment: "A route validates, calls lib/ and answers; a helper two routes need lives in lib/",
      severity: "error",
      from: { path: "^routes/", pathNot: notTest },
      to: { path: "^(main\\.ts|routes/|workers/|cli/|bench/|tests/|examples/)" },
    },
    {
      name: "workers-import-only-lib-and-workers",
      comment: "A job type's host side and its Worker reach the platform only through lib/",
      severity: "error",
      from: { path: "^workers/", pathNot: notTest },
      to: { path: "^(main\\.ts|routes/|cli/|bench/|tests/|examples/)" },
    },
    {
      name: "cli-imports-lib",
      comment: "The CLI uses lib/; cli/job_types.ts, its composition point, lists the job types",
      severity: "error",
      from: { path: "^cli/", pathNot: `${notTest}|^cli/job_types\\.ts$` },
      to: { path: "^(main\\.ts|routes/|workers/|bench/|tests/)" },
    },
    {
      name: "no-cycle",
      severity: "error",
      from: { pathNot: notTest },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|data|bench/peers)/" },
    tsPreCompilationDeps: true,
  },
};
