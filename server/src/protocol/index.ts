/**
 * The wire protocol between the playground server and the browser: REST bodies,
 * WebSocket frames. web/ imports these types (type-only: no runtime code here), so a
 * change to the protocol is a compile error on both sides.
 */

export type ContainerState = 'created' | 'running' | 'exited' | 'removed';

/** Why a container stopped, as told to its owner. */
export type ExitReason =
  | 'exited' // its init exited on its own
  | 'killed' // a signal from outside (mdocker kill, DELETE)
  | 'oom' // the kernel's OOM killer ended its init
  | 'idle' // no client attached for longer than the idle timeout
  | 'lifetime' // it reached the maximum lifetime
  | 'shutdown' // the server is stopping
  | 'class-ended' // the teacher ended the class it belonged to
  | 'reset' // the teacher reset the student's container
  | 'launch-failed'; // mdocker-init reported a runtime failure

export interface LimitsJson {
  memoryBytes: number | null;
  cpus: number | null;
  pidsLimit: number | null;
}

export interface CreateContainerBody {
  image?: string;
  hostname?: string;
  /** bytes, or docker-style: "64m", "1g" */
  memory?: number | string;
  cpus?: number | string;
  pidsLimit?: number;
  cmd?: string[];
  /** a lesson's id (GET /api/lessons): its image, limits and capabilities apply */
  lesson?: string;
}

export type UpdateContainerBody = Partial<Pick<CreateContainerBody, 'memory' | 'cpus' | 'pidsLimit'>>;

export interface TerminalJson {
  id: number; // 0 is the container's init
  containerId: string;
  cmd: string[];
  cols: number;
  rows: number;
  state: 'running' | 'exited';
  exitCode: number | null;
  clients: number;
}

/** GET /api/containers/:id/terminals/:tid/cwd: where the terminal's shell works, as the
 * container sees the path. */
export interface TerminalCwdJson {
  cwd: string;
}

export interface ContainerJson {
  id: string;
  name: string;
  image: string;
  hostname: string;
  cmd: string[];
  state: ContainerState;
  limits: LimitsJson;
  initPid: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
  exitReason: ExitReason | null;
  terminals: TerminalJson[];
  /** the lesson it was made for (GET /api/containers/:id/lesson) */
  lesson?: string | null;
  /** the network it is on (its session's, or its class's) and its address there; null: only lo */
  network: ContainerNetworkJson | null;
  /** the TCP ports its image's config exposes (ExposedPorts): preview hints before anything listens */
  exposedPorts?: number[];
}

export interface ContainerNetworkJson {
  name: string;
  ip: string;
}

export interface ExecBody {
  cmd: string[];
  timeoutMs?: number;
}

export interface ExecResultJson {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** stdout or stderr was longer than the server's cap and was cut there. */
  truncated: boolean;
}

/** POST /api/containers/:id/terminals: every field optional. */
export interface CreateTerminalBody {
  /** default ["/bin/sh"] */
  cmd?: string[];
  /** the size of the client that opens it; attached clients resize it later */
  cols?: number;
  rows?: number;
}

/** GET /api/containers/:id/stats */
export interface StatsHistoryJson {
  containerId: string;
  samples: StatsSample[];
}

/** GET /healthz */
export interface HealthJson {
  status: 'ok';
  containers: number;
  uptimeSeconds: number;
}

/** GET /readyz (200 when ready, else 503) and GET /api/node: whether this node takes new
 * sessions, and how much room it has (what HAProxy's weight for it comes from). */
export interface ReadyJson {
  ready: boolean;
  node: string;
  state: NodeState;
  /** why not ready: 'starting', 'draining', 'at-capacity', 'low-memory' */
  reasons: string[];
  headroom: HeadroomJson;
}

export type NodeState = 'starting' | 'serving' | 'draining' | 'stopping';

export interface HeadroomJson {
  containers: number;
  maxContainers: number;
  /** maxContainers - containers */
  freeSlots: number;
  /** the host's MemAvailable */
  memoryAvailableBytes: number;
  memoryTotalBytes: number;
  /** HAProxy's weight for new sessions, % of the configured one: free slots' share ×
   * available memory's share; 0 when not ready */
  weightPercent: number;
}

/** The stats stream's `node` message (and POST /api/node/drain's answer): the node is
 * draining (or no longer). */
export interface NodeNoticeJson {
  node: string;
  state: NodeState;
  /** when the containers go (ISO); null when not draining */
  deadline: string | null;
  message: string;
}

/** POST /api/node/drain (token holder): optional grace, else --drain-grace. */
export interface DrainBody {
  /** "10m", "30s" */
  grace?: string;
}

export type NamespaceType = 'pid' | 'uts' | 'mnt' | 'ipc' | 'net' | 'cgroup' | 'user';

export interface InspectJson {
  id: string;
  namespaces: { type: NamespaceType; host: number; container: number; isolated: boolean }[];
  processes: { hostPid: number; containerPid: number; user: string; command: string }[];
  hostname: { host: string; container: string };
  /** The container's network stack as it sees it, beside the host's end of its eth0; null: it could not be read. */
  network: InspectNetworkJson | null;
}

/** What a container's network is from inside (`ip -s link`, `ip -4 addr`, `ip -4 route` in it) and from its network's side. */
export interface InspectNetworkJson {
  /** the network it is on; null: none, the container has only lo */
  name: string | null;
  interfaces: NetInterfaceJson[];
  /** the IPv4 routes of its main table */
  routes: NetRouteJson[];
  /** the other end of eth0: a veth on the network's bridge, in the network's own namespace; null without a network */
  peer: NetPeerJson | null;
  /** more interfaces, addresses or routes than are shown */
  truncated: boolean;
}

export interface NetLinkJson {
  index: number;
  name: string;
  /** "veth", "bridge"…; null for lo and devices without a kind */
  kind: string | null;
  /** null when the link has no Ethernet address */
  mac: string | null;
  mtu: number;
  /** administratively up (IFF_UP) */
  up: boolean;
  /** the kernel's operational state: "up", "down", "unknown" (lo's), "lowerlayerdown"… */
  operState: string;
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

export interface NetInterfaceJson extends NetLinkJson {
  addresses: { address: string; prefix: number; scope: string }[];
}

export interface NetPeerJson extends NetLinkJson {
  /** the bridge it is attached to */
  master: string | null;
  /** the interface it pairs with, inside the container */
  peerOf: string;
}

export interface NetRouteJson {
  /** "10.89.3.0/24", or "default" */
  destination: string;
  gateway: string | null;
  /** the interface it leaves by */
  device: string | null;
  /** the address the container sends from on it */
  source: string | null;
  /** "link", "host", "global"… */
  scope: string;
  /** who made it: "kernel" (with an address), "boot", "static"… */
  protocol: string;
}

// REST responses: POST /api/containers → 201 ContainerJson; GET /api/containers →
// ContainerJson[]; GET/PATCH /api/containers/:id → ContainerJson; DELETE → 204;
// POST …/terminals → 201 TerminalJson; GET …/terminals → TerminalJson[]; DELETE
// …/terminals/:tid → 204; POST …/exec → ExecResultJson; GET …/inspect → InspectJson;
// GET …/stats → StatsHistoryJson; GET /api/images → ImageJson[]. Every error: ErrorJson.

export interface ImageJson {
  /** what a create's `image` names */
  name: string;
  sizeBytes: number;
  /** a built-in image's own, a stored image's org.opencontainers.image.description label */
  description: string | null;
  /** the TCP ports its config exposes */
  exposedPorts: number[];
  /** built-in, from the store (allowed or pulled), or saved by a session from a container */
  kind: 'builtin' | 'stored' | 'saved';
  /** a saved image: when it was saved (ISO) */
  savedAt?: string;
}

// POST /api/images {reference} (token holder) → 202 ImagePullJson; GET
// /api/images/pulls/:id → ImagePullJson; WebSocket /api/images/pulls/:id → ImagePullMessage
// (`pull` first and on every change of state, `layer` as bytes arrive), closed when done.
// POST /api/containers/:id/save (its owner) → 201 ImageJson.

export interface ImagePullBody {
  reference: string;
}

export interface ImagePullLayerJson {
  digest: string;
  totalBytes: number;
  doneBytes: number;
  status: 'exists' | 'downloading' | 'verifying' | 'unpacking' | 'done';
}

export interface ImagePullJson {
  id: string;
  /** the reference as it will be listed (familiar form with its tag) */
  reference: string;
  state: 'pulling' | 'done' | 'failed';
  layers: ImagePullLayerJson[];
  error: { code: string; message: string } | null;
  startedAt: string;
  finishedAt: string | null;
}

export type ImagePullMessage =
  { type: 'pull'; pull: ImagePullJson } | { type: 'layer'; pullId: string; layer: ImagePullLayerJson };

/** An entry of a container's directory: GET /api/containers/:id/files?path=P&list=1 →
 * FileEntryJson[] (lstat: a symlink is itself). The path is the container's. */
export interface FileEntryJson {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** bytes */
  size: number;
  /** permission bits (0o7777) */
  mode: number;
  /** ISO 8601 */
  mtime: string;
}

// Files: GET …/files?path=P → the file's bytes (application/octet-stream, Content-Length
// its size when opened), or a directory as a tar (application/x-tar); PUT …/files?path=P
// with the raw bytes as the body → 201 (a new file) or 200 (replaced) with its
// FileEntryJson; 413 TOO_LARGE past the server's upload cap.

export interface ErrorJson {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** One stats sample, taken at 1 Hz from the container's cgroup files. */
export interface StatsSample {
  t: number; // epoch ms
  cpuPercent: number; // of one core: 150 means one and a half cores busy
  cpuUsageUsec: number;
  memoryBytes: number;
  memoryLimitBytes: number | null;
  pids: number;
  pidsLimit: number | null;
  oomKills: number; // cumulative
  pidsLimitHits: number; // cumulative (pids.events max)
  cpuThrottledPeriods: number; // cumulative
  cpuThrottledUsec: number; // cumulative
}

// ---- WebSocket /api/containers/:id/terminals/:tid[?cols=N&rows=N] ----
// Binary frames: terminal bytes, both ways. Text frames: these JSON messages.
// Order on attach: `attached`, one binary frame with the serialized screen (possibly
// empty), then live output. Every binary frame the server sends counts for flow
// control, the screen frame included: the client acks bytes once xterm has processed
// them (term.write callback). After `exit` the server closes with WS_CLOSE.NORMAL and
// the client should not reconnect; any other close may be retried (a reattach gets the
// screen back), except 4400-4499 closes, which will fail the same way again.

export type TerminalClientMessage =
  | { type: 'resize'; cols: number; rows: number }
  /** The client has processed (written to xterm) this many more bytes of output. */
  | { type: 'ack'; bytes: number };

export type TerminalServerMessage =
  /** First message after attach; a binary frame with the serialized screen follows,
   * then the live stream. The client resets its terminal before writing the screen. */
  | { type: 'attached'; terminal: TerminalJson; cols: number; rows: number }
  | { type: 'exit'; exitCode: number | null; reason: ExitReason | null }
  | { type: 'error'; code: string; message: string }
  /** To a teacher's watch or control client: the owner's window resized the pty; output
   * after this message is laid out at the new size. */
  | { type: 'resize'; cols: number; rows: number };

// ---- WebSocket /api/stats ----
// Messages for a student's page ride on its stats stream: `broadcast` (the teacher's
// message), `control` (the teacher took or gave back the keyboard of one of its
// terminals), `class-ended` (every container is being removed).
export type StatsServerMessage =
  | { type: 'history'; containerId: string; samples: StatsSample[] }
  | { type: 'sample'; containerId: string; sample: StatsSample }
  | { type: 'container'; container: ContainerJson }
  | { type: 'broadcast'; broadcast: BroadcastJson }
  | { type: 'control'; containerId: string; terminalId: number; teacher: boolean }
  | { type: 'class-ended'; classId: string; reason: string }
  /** a step of the container's lesson was done (and once on the first check) */
  | { type: 'lesson'; containerId: string; lesson: ContainerLessonJson }
  /** the container's listening TCP ports changed (checked on each sample); all of them */
  | { type: 'ports'; containerId: string; ports: PortJson[] }
  /** the node is draining (users are told when their containers go) or serves again */
  | { type: 'node'; node: NodeNoticeJson };

// ---- previews ----
// GET /api/containers/:id/ports → PortJson[]: every TCP port listening in the container's
// network namespace, with the URL that serves it on an origin of its own (README: Previews).

export interface PortJson {
  port: number;
  protocol: 'tcp';
  /** http://<token>-<port>.preview.localhost:<server port>/ by default (--preview-domain) */
  previewUrl: string;
}

// ---- lessons ----
// GET /api/lessons → LessonJson[]; GET /api/containers/:id/lesson → ContainerLessonJson;
// POST /api/containers/:id/lesson/check → ContainerLessonJson (checks run now).

export interface LessonJson {
  id: string;
  title: string;
  description: string;
  steps: { id: string; title: string }[];
}

export interface LessonStepJson {
  id: string;
  title: string;
  done: boolean;
  /** when its checks first all held (ISO) */
  doneAt: string | null;
  /** Markdown source: render it safely (no raw HTML) */
  text: string;
}

export interface ContainerLessonJson {
  /** the lesson's id */
  lesson: string;
  title: string;
  description: string;
  containerId: string;
  /** steps in the lesson's order; any may be done first */
  steps: LessonStepJson[];
  /** index of the first step not done (steps.length when all are) */
  current: number;
  progress: LessonProgressJson;
}

// ---- classes ----
// Roles: whoever holds the server's access token (on a token-less loopback server, the
// local user) is the teacher; a session that joined a class with its code is a student of
// it and stays one. Teacher routes answer 404 to students, as other sessions' containers do.

/** GET /api/me: who the page is talking as. */
export type MeJson =
  | { role: 'teacher' }
  | { role: 'student'; student: StudentSelfJson }
  /** token-less visitor of a server with a token: only /join works */
  | { role: 'guest' };

export interface StudentSelfJson {
  id: string;
  name: string;
  classId: string;
  className: string;
  /** false once the teacher ended the class */
  classOpen: boolean;
  lesson: string | null;
  /** broadcasts so far, oldest first (a reloaded page shows them again) */
  broadcasts: BroadcastJson[];
}

/** POST /api/classes. Limits in the create-container units ("64m", 0.5). */
export interface CreateClassBody {
  name: string;
  /** per student container; default: the server's defaults */
  limits?: { memory?: number | string; cpus?: number | string; pidsLimit?: number };
  /** default 1 */
  maxContainersPerStudent?: number;
  image?: string;
  lesson?: string;
  /** the whole class together, in its own cgroup */
  budget?: { memory?: number | string; cpus?: number | string };
  /** default 'per-student' */
  network?: ClassNetworkMode;
}

/**
 * 'per-student': each student's containers share a network of their own, apart from the
 * others'; 'class': every student's containers join the class's one network and reach
 * each other by hostname.
 */
export type ClassNetworkMode = 'per-student' | 'class';

export interface ClassBudgetJson {
  memoryBytes: number | null;
  cpus: number | null;
}

export interface ClassJson {
  id: string;
  name: string;
  /** 12 characters; rotated by POST /api/classes/:id/code */
  joinCode: string;
  /** path and query only ("/join/CODE"): the page prefixes its own origin */
  joinUrl: string;
  createdAt: string;
  endedAt: string | null;
  limits: LimitsJson;
  budget: ClassBudgetJson;
  maxContainersPerStudent: number;
  image: string;
  lesson: string | null;
  network: ClassNetworkMode;
  students: StudentJson[];
  /** the latest broadcasts, oldest first */
  broadcasts: BroadcastJson[];
}

export interface StudentJson {
  id: string;
  /** plain text: render with textContent, never as HTML */
  name: string;
  joinedAt: string;
  /** the student has the page open (its stats stream or a terminal attached) */
  connected: boolean;
  /** last input typed on any of its terminals (ISO), null: never */
  lastInputAt: string | null;
  containers: ContainerJson[];
  /** the latest sample of each running container */
  latest: Record<string, StatsSample>;
  progress: LessonProgressJson | null;
}

/** Filled in by lessons; null while the class has none. */
export interface LessonProgressJson {
  lesson: string;
  step: number;
  steps: number;
  /** when the student reached its current step (ISO) */
  stepSince: string;
  done: boolean;
}

/** POST /api/join → 201 JoinJson; the response sets a new session cookie for the student. */
export interface JoinBody {
  code: string;
  /** 1 to 40 characters of text */
  name: string;
}

export type JoinJson = { role: 'student'; student: StudentSelfJson };

/** POST /api/classes/:id/broadcast */
export interface BroadcastBody {
  message: string;
  /** shown with a copy button; never typed into any terminal */
  command?: string;
}

export interface BroadcastJson {
  id: number;
  at: string;
  message: string;
  command: string | null;
}

/** The live miniature of a student's terminal: its visible rows as plain text. */
export interface ScreenJson {
  containerId: string;
  terminalId: number;
  cols: number;
  rows: number;
  lines: string[];
  cursor: { x: number; y: number };
}

// Teacher routes: POST /api/classes → 201 ClassJson; GET /api/classes → ClassJson[];
// GET /api/classes/:id → ClassJson; DELETE /api/classes/:id → 204 (ends it);
// POST /api/classes/:id/code → ClassJson (a new join code, the old one stops working);
// POST /api/classes/:id/broadcast → 201 BroadcastJson;
// POST /api/classes/:id/students/:sid/reset → ContainerJson (a fresh container).

// ---- WebSocket /api/classes/:id/events (teacher) ----
// First `class` (the whole class), then changes. `screen` comes at most once a second per
// student, only when its terminal changed. The socket closes with NORMAL after `ended`.
export type ClassEventMessage =
  | { type: 'class'; class: ClassJson }
  | { type: 'student'; student: StudentJson }
  | { type: 'left'; studentId: string }
  | { type: 'container'; studentId: string; container: ContainerJson }
  | { type: 'sample'; studentId: string; containerId: string; sample: StatsSample }
  | { type: 'screen'; studentId: string; screen: ScreenJson }
  | { type: 'input'; studentId: string; at: string }
  | { type: 'progress'; studentId: string; progress: LessonProgressJson }
  | { type: 'broadcast'; broadcast: BroadcastJson }
  | { type: 'ended'; class: ClassJson }
  /** this node drains (or serves again): as the students' stats stream says it */
  | { type: 'node'; node: NodeNoticeJson };

// ---- recordings ----
// GET /api/containers/:id/terminals/:tid/recording (owner, or the teacher of its class):
// asciicast v2 (application/x-asciicast). Markers ("m") name cgroup events: "oom-kill",
// "pids-limit" (a fork refused), "recording-truncated" (the size cap was reached).
// GET /api/containers/:id/recording-stats: the samples kept with the recording, oldest first.
// GET /api/classes/:id/recordings (teacher): every recording of the class's students,
// those of removed containers included, until the retention time.
export interface RecordingJson {
  containerId: string;
  terminalId: number;
  studentId: string | null;
  startedAt: string;
  /** null while the terminal runs */
  endedAt: string | null;
  bytes: number;
  truncated: boolean;
}

export interface RecordingStatsJson {
  containerId: string;
  samples: StatsSample[];
}

/** A terminal attach as the teacher: ?mode=watch (input and resizes dropped) or ?mode=control. */
export type AttachMode = 'watch' | 'control';

/** WebSocket close codes. Errors close with the code of their ErrorJson `code`
 * (server/src/http/errors.ts maps them: 4000 + the HTTP status). */
export const WS_CLOSE = {
  /** the terminal or container ended; an `exit` message came first */
  NORMAL: 1000,
  /** the server is shutting down */
  GOING_AWAY: 1001,
  /** a frame larger than the server's maxPayload */
  MESSAGE_TOO_BIG: 1009,
  /** the client left the terminal paused too long without acking (reattach to catch up), or
   * pushed input past what the program reads (the queue's cap, or on after a stall) */
  TOO_SLOW: 4008,
  INVALID_ARGUMENT: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  NOT_FOUND: 4404,
  CONFLICT: 4409,
  TOO_LARGE: 4413,
  RATE_LIMITED: 4429,
  INTERNAL: 4500,
  UNSUPPORTED: 4501,
  UNAVAILABLE: 4503,
  TIMEOUT: 4504,
  /** the session's node is gone or restarted: start again (a new session) */
  NODE_GONE: 4421,
} as const;

/** Flow control: the server pauses a terminal while any attached client has more than
 * HIGH unacknowledged bytes, and resumes it below LOW. Clients ack every ACK_EVERY. */
export const FLOW_HIGH_WATER_BYTES = 512 * 1024;
export const FLOW_LOW_WATER_BYTES = 128 * 1024;
export const FLOW_ACK_EVERY_BYTES = 32 * 1024;
