/**
 * Redis key names, built in one place: `<prefix>:<area>:<name>`. The Lua scripts in
 * `queue.ts` and `events.ts` receive these names as KEYS or build them from the same prefix
 * with the helpers below, so the layout is defined only here.
 */

export interface RedisKeys {
  prefix: string;
  /** List of job ids waiting to run, per job type (producers LPUSH, consumers take from the right). */
  queue(type: string): string;
  /** Per-consumer list of job ids taken and not yet finished. */
  processing(consumer: string): string;
  /** Lease key of a consumer; it expires when the consumer stops renewing it. */
  lease(consumer: string): string;
  /** Set of known consumers (for the reaper). */
  consumers: string;
  /** Hash holding one job's state. */
  job(id: string): string;
  /** Sorted set of job ids waiting for a retry, scored by the time they may run again. */
  delayed: string;
  /** List of job ids that failed their last attempt. */
  dead: string;
  /** Stream of every job event (read by the history writer, which also serves live viewers). */
  events: string;
  /** Pub/sub channel for control messages (cancel). */
  control: string;
  /** Set of job types that have ever been enqueued (for queue depth). */
  types: string;
  /** Hash `<type>|<status>` → how many times a job of that type entered that status. */
  jobCounts: string;
  /** Set of the ids of processes that publish a metrics report. */
  reports: string;
  /** One process's metrics report (JSON), expiring unless renewed. */
  report(id: string): string;
  /** Sorted set of session ids holding a session slot, scored by when it was taken. */
  sessionSlots: string;
  /** Hash: session id → the token name that holds its slot (for per-token limits). */
  sessionOwners: string;
  /** A live session's snapshot (JSON), refreshed by the process that runs it. */
  session(id: string): string;
  /** Pub/sub channel of session control requests (navigate, pause, stop, ...). */
  sessionControl: string;
  /** Sorted set of the ids of active video streams, scored by when each started. */
  streams: string;
  /** A video stream's status (JSON), refreshed by the process that encodes it. */
  stream(id: string): string;
  /** Pub/sub channel of the replies to one process's session control requests. */
  sessionReplies(node: string): string;
  /** Present while the process recording `id` is alive (refreshed every 2 s, short expiry). */
  recordingLive(id: string): string;
  /** Pub/sub channel telling every node to delete the files of recordings. */
  recordingsControl: string;
  /** Sorted set of deleted recording ids, by deletion time (for nodes that were down). */
  recordingsDeleted: string;
  /** A replay job's spec (steps, expectations), until the job has taken it. */
  replaySpec(jobId: string): string;
  /** Sorted set of named functions, scored by when each last changed. */
  functions: string;
  /** Hash of one named function: `latest` (its version number) and `v:<n>` (each version). */
  function(name: string): string;
  /** Hash name → cron expression of every function that has a schedule. */
  functionSchedules: string;
  /** Held (SET NX, expiring) by the one process that runs a scheduled function's tick. */
  functionTick(name: string, tick: string): string;
  /** The secret that signs share links, the same for every process on this Redis. */
  shareSecret: string;
}

export function redisKeys(prefix: string): RedisKeys {
  return {
    prefix,
    queue: (type) => `${prefix}:queue:${type}`,
    processing: (consumer) => `${prefix}:processing:${consumer}`,
    lease: (consumer) => `${prefix}:lease:${consumer}`,
    consumers: `${prefix}:consumers`,
    job: (id) => `${prefix}:job:${id}`,
    delayed: `${prefix}:delayed`,
    dead: `${prefix}:dead`,
    events: `${prefix}:events`,
    control: `${prefix}:control`,
    types: `${prefix}:types`,
    jobCounts: `${prefix}:stats:jobs`,
    reports: `${prefix}:metrics:procs`,
    report: (id) => `${prefix}:metrics:proc:${id}`,
    sessionSlots: `${prefix}:sessions:slots`,
    sessionOwners: `${prefix}:sessions:owners`,
    session: (id) => `${prefix}:session:${id}`,
    sessionControl: `${prefix}:sessions:control`,
    streams: `${prefix}:streams`,
    stream: (id) => `${prefix}:stream:${id}`,
    sessionReplies: (node) => `${prefix}:sessions:replies:${node}`,
    recordingLive: (id) => `${prefix}:recording:live:${id}`,
    recordingsControl: `${prefix}:recordings:control`,
    recordingsDeleted: `${prefix}:recordings:deleted`,
    replaySpec: (jobId) => `${prefix}:replay:spec:${jobId}`,
    functions: `${prefix}:functions`,
    function: (name) => `${prefix}:function:${name}`,
    functionSchedules: `${prefix}:functions:schedules`,
    functionTick: (name, tick) => `${prefix}:function:${name}:tick:${tick}`,
    shareSecret: `${prefix}:share:secret`,
  };
}

/** Lua prelude giving scripts the same key layout from ARGV[1] (the prefix). */
export const LUA_KEYS = `
local P = ARGV[1]
local function k_queue(t) return P .. ':queue:' .. t end
local function k_processing(c) return P .. ':processing:' .. c end
local function k_lease(c) return P .. ':lease:' .. c end
local function k_job(id) return P .. ':job:' .. id end
local K_CONSUMERS = P .. ':consumers'
local K_DELAYED = P .. ':delayed'
local K_DEAD = P .. ':dead'
local K_EVENTS = P .. ':events'
local K_CONTROL = P .. ':control'
local K_TYPES = P .. ':types'
local K_JOB_COUNTS = P .. ':stats:jobs'
local K_REPORTS = P .. ':metrics:procs'
local function k_report(id) return P .. ':metrics:proc:' .. id end
`;
