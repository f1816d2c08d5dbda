/**
 * The one list of Debian packages streamplay needs, per task, and `deno task prereq [start|test]`,
 * which (as root) installs the missing ones with apt-get or prints the one command to run.
 * `.ci/run` and the tests' `requirePackages` read the same list.
 */

/** What a package is needed for: `start` (also `deno task worker`) or `test`. */
export type PrereqTask = "start" | "test";

export interface SystemPackage {
  /** The Debian package. */
  pkg: string;
  /** A command looked up on PATH, or an absolute path, present once the package is installed. */
  check: string;
  tasks: PrereqTask[];
  /** Who uses it, for the message that names it. */
  why: string;
}

export const SYSTEM_PACKAGES: readonly SystemPackage[] = [
  { pkg: "redis-server", check: "redis-server", tasks: ["start", "test"], why: "embedded Redis" },
  { pkg: "chromium", check: "chromium", tasks: ["start", "test"], why: "sessions, browser-bench" },
  { pkg: "ffmpeg", check: "ffmpeg", tasks: ["start", "test"], why: "recordings, streams, ffprobe" },
  {
    pkg: "util-linux",
    check: "/usr/bin/prlimit",
    tasks: ["start", "test"],
    why: "setpriv for the embedded Redis, prlimit for functions",
  },
  {
    pkg: "fonts-dejavu-core",
    check: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    tasks: ["test"],
    why: "text in the pages the browser tests render",
  },
  { pkg: "procps", check: "ps", tasks: ["test"], why: "tests that look for leftover processes" },
  { pkg: "nginx", check: "nginx", tasks: ["test"], why: "the RTMP server of the stream tests" },
  {
    pkg: "libnginx-mod-rtmp",
    check: "/usr/lib/nginx/modules/ngx_rtmp_module.so",
    tasks: ["test"],
    why: "nginx's RTMP module",
  },
  { pkg: "prometheus", check: "promtool", tasks: ["test"], why: "promtool checks /metrics" },
];

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

/** What shows `p` is installed: its check, or STREAMPLAY_CHROMIUM for chromium when set. */
export function checkedPath(p: SystemPackage): string {
  return (p.pkg === "chromium" ? Deno.env.get("STREAMPLAY_CHROMIUM") : undefined) ?? p.check;
}

/** Whether `p` is on this machine (a PATH lookup or a stat; no child process). */
export function isInstalled(p: SystemPackage): boolean {
  const check = checkedPath(p);
  return check.startsWith("/") ? exists(check) : onPath(check);
}

/** The packages `task` needs that are missing here. */
export function missingPackages(task: PrereqTask): SystemPackage[] {
  return SYSTEM_PACKAGES.filter((p) => p.tasks.includes(task) && !isInstalled(p));
}

/** The command a person runs to install `pkgs`. */
export function installCommand(pkgs: readonly SystemPackage[]): string {
  return `sudo apt-get install -y ${pkgs.map((p) => p.pkg).join(" ")}`;
}

async function aptGet(args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return success;
}

/** Whether apt has package lists to install from (a fresh image has none until an update). */
function hasPackageLists(): boolean {
  try {
    for (const e of Deno.readDirSync("/var/lib/apt/lists")) {
      if (e.name.includes("_Packages")) return true;
    }
  } catch { /* no lists directory */ }
  return false;
}

/** Installs `pkgs` with apt-get, running `apt-get update` first only when the lists need it. */
async function install(pkgs: SystemPackage[]): Promise<boolean> {
  const args = ["install", "-y", "-qq", "--no-install-recommends", ...pkgs.map((p) => p.pkg)];
  let updated = false;
  if (!hasPackageLists()) {
    updated = true;
    if (!await aptGet(["update", "-qq"])) return false;
  }
  if (await aptGet(args)) return true;
  // Stale lists name package versions the mirror no longer has: refresh them once and retry.
  return !updated && await aptGet(["update", "-qq"]) && await aptGet(args);
}

if (import.meta.main) {
  const task = Deno.args[0] ?? "start";
  if (task !== "start" && task !== "test") {
    console.error(`streamplay prereq: unknown task "${task}" (start or test)`);
    Deno.exit(2);
  }
  const missing = missingPackages(task);
  if (missing.length > 0) {
    const names = missing.map((p) => `${p.pkg} (${checkedPath(p)}: ${p.why})`).join(", ");
    if (Deno.uid() === 0 && onPath("apt-get")) {
      console.error(`streamplay: installing ${names}`);
      const still = await install(missing) ? missingPackages(task) : missing;
      if (still.length > 0) {
        console.error(`streamplay: could not install ${still.map((p) => p.pkg).join(" ")}`);
        Deno.exit(1);
      }
    } else {
      console.error(
        `streamplay ${task} needs ${names}: install with \`${installCommand(missing)}\``,
      );
      const chromium = Deno.env.get("STREAMPLAY_CHROMIUM");
      if (chromium && missing.some((p) => p.pkg === "chromium")) {
        console.error(`(or fix STREAMPLAY_CHROMIUM=${chromium})`);
      }
      Deno.exit(1);
    }
  }
}
