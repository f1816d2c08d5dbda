/**
 * The job types the CLI runs on this machine (`bench` without `--submit`): the CLI's composition
 * point, as main.ts is the server's — the only cli/ file that imports workers/.
 */
export { httpBenchJob } from "../workers/http-bench.ts";
export { browserBenchJob } from "../workers/browser-bench.ts";
