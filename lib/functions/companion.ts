/**
 * The `function` job's companion in the pool process: it clears the run's allow_hosts before the
 * function may start and stores the artifacts the function saves.
 */
import { ARTIFACT_NAME } from "../jobs/artifacts.ts";
import type { Companion } from "../jobs/runner.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import { type FunctionParams, ownNetwork, refuseAllowHost } from "./params.ts";

import type { SessionParams } from "../sessions/params.ts";

/** Companion → function Worker. */
export type FunctionIn =
  | { k: "go" }
  | { k: "refuse"; reason: string }
  | { k: "saved"; rid: number; error?: string };

/** Function Worker → companion. */
export type FunctionOut = { k: "artifact"; rid: number; name: string; bytes: Uint8Array };

/**
 * The session a function with a browser is: its page starts blank, at the function's size, and
 * it ends when the function does (the job's timeout), not when nobody watches.
 */
function sessionParamsOf(params: FunctionParams): SessionParams {
  return {
    url: "about:blank",
    viewport: params.viewport,
    quality: 60,
    max_fps: 30,
    idle_timeout_s: 86_400,
    max_duration_s: 86_400,
    record: params.record,
  };
}

/** Where a function's artifacts go, under the job's artifact directory. */
export const FUNCTION_ARTIFACT_DIR = "files";

export interface FunctionCompanionOptions {
  dataDir: string;
  policy: UrlPolicy;
  /** The platform's Redis, which functions must not reach either. */
  redisUrl: string;
  /** The session companion: a function with a browser is a live session too. */
  session: Companion;
  log: Logger;
}

/**
 * allow_hosts are checked against the URL policy, this machine and the platform's Redis, DNS
 * included, which the job's params schema cannot do. Artifacts go to the job's artifact directory
 * (`files/<name>`, listed by GET /api/jobs/:id/artifacts): the Worker that runs functions may write
 * nowhere. A function with a browser is also a live session: the session companion serves its
 * viewers and recording, and gets every other message.
 */
export function functionCompanion(options: FunctionCompanionOptions): Companion {
  const own = ownNetwork(options.redisUrl);
  return {
    start(job, link) {
      const params = job.params as FunctionParams;
      const send = (msg: FunctionIn) => link.send(msg);
      if (params.allow_hosts.length === 0) send({ k: "go" });
      else {
        Promise.all(
          params.allow_hosts.map((h) => refuseAllowHost(h, options.policy, own)),
        ).then((reasons) => {
          const i = reasons.findIndex((r) => r !== null);
          send(i < 0 ? { k: "go" } : { k: "refuse", reason: `allow_hosts[${i}]: ${reasons[i]}` });
        }, (err) => send({ k: "refuse", reason: `allow_hosts: ${errorMessage(err)}` }));
      }
      const dir = `${options.dataDir}/artifacts/${job.id}/${FUNCTION_ARTIFACT_DIR}`;
      const live = params.browser
        ? options.session.start({ ...job, params: sessionParamsOf(params) }, link)
        : null;
      return {
        onMessage(data) {
          const msg = data as FunctionOut;
          if (msg?.k !== "artifact") return live?.onMessage(data);
          if (!ARTIFACT_NAME.test(msg.name)) {
            const error = `artifact name "${msg.name}" must be 1-128 of A-Z a-z 0-9 _ . -`;
            return send({ k: "saved", rid: msg.rid, error });
          }
          Deno.mkdir(dir, { recursive: true })
            .then(() => Deno.writeFile(`${dir}/${msg.name}`, msg.bytes))
            .then(() => {
              link.emit({
                type: "artifact",
                name: msg.name,
                bytes: msg.bytes.length,
                url: `/api/jobs/${job.id}/artifacts/${FUNCTION_ARTIFACT_DIR}/${msg.name}`,
              });
              send({ k: "saved", rid: msg.rid });
            }, (err) => {
              options.log.warn("could not store a function's artifact", {
                job: job.id,
                error: errorMessage(err),
              });
              send({ k: "saved", rid: msg.rid, error: "the artifact could not be stored" });
            });
        },
        end(outcome) {
          live?.end(outcome);
        },
      };
    },
  };
}
