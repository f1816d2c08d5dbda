/**
 * Helpers for the video stream tests: ffprobe on a URL (over HTTP or RTMP), the ffmpeg children
 * of a server process, an ffmpeg build without one encoder, and a local nginx with the RTMP
 * module on free ports, stopped by its `close()`.
 */
import { freePort, requirePackages } from "./helpers.ts";

export interface Probe {
  codec: string;
  width: number;
  height: number;
}

/** ffprobe's view of the first video stream at `url` (killed after `timeoutMs`). */
export async function probe(url: string, timeoutMs = 20_000): Promise<Probe> {
  const child = new Deno.Command("ffprobe", {
    args: [
      "-v",
      "error",
      // A live RTMP stream has no end: decide on the streams from the first second.
      "-analyzeduration",
      "1000000",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=codec_name,width,height",
      "-of",
      "json",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* done */ }
  }, timeoutMs);
  const { stdout, stderr, success } = await child.output();
  clearTimeout(timer);
  if (!success) {
    const why = timedOut ? `no answer within ${timeoutMs} ms` : new TextDecoder().decode(stderr);
    throw new Error(`ffprobe ${url}: ${why}`);
  }
  const stream = JSON.parse(new TextDecoder().decode(stdout)).streams?.[0] ?? {};
  return { codec: stream.codec_name, width: Number(stream.width), height: Number(stream.height) };
}

/** Ids of the processes named `name` whose parent is `parent`. */
export async function childPids(parent: number, name: string): Promise<number[]> {
  requirePackages("procps");
  const { stdout } = await new Deno.Command("ps", {
    args: ["-o", "pid=,comm=", "--ppid", String(parent)],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(stdout).split("\n").flatMap((line) => {
    const [pid, comm] = line.trim().split(/\s+/);
    return pid && comm === name ? [Number(pid)] : [];
  });
}

/** The directory of `command` on PATH. */
export function onPath(command: string): string {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${command}`).isFile) return `${dir}/${command}`;
    } catch { /* not here */ }
  }
  throw new Error(`${command} is not on PATH`);
}

/**
 * A directory holding an `ffmpeg` that is the real one without `encoder` (as builds without
 * that library are): it is not listed and asking for it fails. Put it first on a server's PATH.
 */
export async function ffmpegWithout(encoder: string, dir: string): Promise<string> {
  const real = onPath("ffmpeg");
  const script = `#!/bin/sh
for a in "$@"; do
  if [ "$a" = "${encoder}" ]; then echo "Unknown encoder '${encoder}'" >&2; exit 1; fi
done
case " $* " in
  *" -encoders "*) "${real}" "$@" | grep -v " ${encoder} "; exit 0 ;;
esac
exec "${real}" "$@"
`;
  await Deno.writeTextFile(`${dir}/ffmpeg`, script, { mode: 0o755 });
  return dir;
}

export interface Nginx {
  rtmpPort: number;
  /** rtmp://127.0.0.1:<port>/live */
  rtmpUrl: string;
  /** The access log of RTMP sessions (publishers and players, with their stream names). */
  log(): Promise<string>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/** nginx in the foreground with its own config, loading the RTMP module, on free ports. */
export async function startNginx(dir: string): Promise<Nginx> {
  requirePackages("nginx", "libnginx-mod-rtmp");
  const rtmpPort = freePort();
  await Deno.mkdir(`${dir}/logs`, { recursive: true });
  const conf = `
load_module ${RTMP_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 64; }
rtmp {
  access_log ${dir}/logs/rtmp.log;
  server {
    listen 127.0.0.1:${rtmpPort};
    application live { live on; record off; }
  }
}
`;
  await Deno.writeTextFile(`${dir}/nginx.conf`, conf);
  const child = new Deno.Command("nginx", {
    args: ["-p", dir, "-c", `${dir}/nginx.conf`, "-e", `${dir}/logs/error.log`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  // Ready when the port accepts connections.
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: rtmpPort })).close();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        await child.status;
        throw new Error(`nginx did not start: ${await stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5_000);
      await child.status;
      clearTimeout(timer);
      await stderr;
    })();
  return {
    rtmpPort,
    rtmpUrl: `rtmp://127.0.0.1:${rtmpPort}/live`,
    log: () => Deno.readTextFile(`${dir}/logs/rtmp.log`).catch(() => ""),
    close,
    [Symbol.asyncDispose]: close,
  };
}
