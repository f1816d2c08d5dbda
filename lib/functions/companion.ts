/**
 * The `function` job's companion in the pool process: it clears the run's allow_hosts against
 * the URL policy, this machine and the platform's Redis before the function may start (DNS
 * included, which the job's params schema cannot do), and stores the artifacts the function saves in the
 * job's artifact directory (`files/<name>`, listed by GET /api/jobs/:id/artifacts): the Worker
 * that runs functions may write nowhere.
 */
import type { Companion } from "../jobs/runner.ts";
import type { UrlPolicy } from "../security/url_policy.ts";
import { errorMessage, type Logger } from "../core/log.ts";
import { type FunctionParams, ownNetwork, refuseAllowHost } from "./params.ts";
import { ARTIFACT_NAME } from "./protocol.ts";

/** Companion → function Worker. */
export type FunctionIn =
  | { k: "go" }
  | { k: "refuse"; reason: string }
  | { k: "saved"; rid: number; error?: string };

/** Function Worker → companion. */
export type FunctionOut = { k: "artifact"; rid: number; name: string; bytes: Uint8Array };

/** Where a function's artifacts go, under the job's artifact directory. */
export const FUNCTION_ARTIFACT_DIR = "files";

export interface FunctionCompanionOptions {
  dataDir: string;
  policy: UrlPolicy;
  /** The platform's Redis, which functions must not reach either. */
  redisUrl: string;
  log: Logger;
}

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
      return {
        onMessage(data) {
          const msg = data as FunctionOut;
          if (msg?.k !== "artifact" || !ARTIFACT_NAME.test(msg.name)) return;
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
        end() {},
      };
    },
  };
}
