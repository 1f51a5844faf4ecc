/**
 * The playground server's configuration: every option with its flag, environment
 * variable and default in one table, resolved (flags over environment over defaults) into
 * a validated ServeConfig.
 */
import { randomBytes } from 'node:crypto';
import type { PlaygroundConfig } from '../playground/config.js';
import { parseSizeBytes } from '../runtime/units.js';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MdockerError } from '../runtime/errors.js';
import { storeReference } from '../playground/image-catalog.js';
import { parseCpus, parseMemoryBytes, parsePidsLimit } from '../runtime/units.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The resolved configuration. Limits of `null` mean "no cap" / "no limit". */
export interface ServeConfig extends PlaygroundConfig {
  host: string;
  port: number;
  /** null: no token (only allowed on a loopback address) */
  token: string | null;
  /** Host header values accepted without a token (DNS rebinding protection). */
  allowedHosts: string[];
  /**
   * How many proxies in front of the server append to X-Forwarded-For (Express's "trust
   * proxy" hop count): the client address is the one that many hops back. 0: the socket's.
   */
  trustProxy: number;
  webDir: string;
  stateRoot: string | undefined;
  /** where networks' subnets come from (the runtime checks it); undefined: the runtime's default */
  networkRange: string | undefined;
  logLevel: LogLevel;
  /** lessons beside the built-in ones (lessons/README.md); null: the built-in ones only */
  lessonsDir: string | null;
  /** Previews are served on <token>-<port>.<previewDomain> (never the playground's origin). */
  previewDomain: string;
  /** How a browser reaches a preview host: its scheme, and its port (null: the server's own
   * for the default domain, the scheme's default for a given one). */
  previewScheme: 'http' | 'https';
  previewPort: number | null;

  rateWindowMs: number;
  createRatePerSession: number;
  createRatePerIp: number;
  /** terminals and execs, per session */
  spawnRatePerSession: number;
  apiRatePerIp: number;

  jsonBodyLimitBytes: number;
  /** largest file a PUT …/files may write */
  maxUploadBytes: number;
  /** most bytes a GET …/files sends (a file's size, a directory tar's file data) */
  maxDownloadBytes: number;
  wsMaxPayloadBytes: number;
  /** WebSockets open at once from one client address. */
  maxSocketsPerAddress: number;
  /** WebSocket upgrades per client address per rate window. */
  upgradeRatePerIp: number;
  /** failed class joins (wrong codes) per client address per rate window */
  joinRatePerIp: number;
  shutdownTimeoutMs: number;

  /** this node's name in a cluster (HAProxy's server name, in every session it signs);
   * null: a lone server ("local") */
  nodeId: string | null;
  /** the key every node of a deployment signs sessions with; null: a random one per start */
  sessionKeyFile: string | null;
  /** how long a drain (SIGTERM, POST /api/node/drain) lets users finish before their
   * containers go; 0: SIGTERM stops at once */
  drainGraceMs: number;
  /** HAProxy's agent-check port (readiness and weight as one line); null: none */
  agentPort: number | null;
  /** store references (tags) every session may start, beside the built-in images and the teacher's pulls */
  allowImages: string[];
}

/** The options' names, in the user's units ("maxMemory": "512m", "idleTimeout": "30m"). */
export type ServeOptionKey =
  | 'host'
  | 'port'
  | 'token'
  | 'allowedHosts'
  | 'previewDomain'
  | 'trustProxy'
  | 'webDir'
  | 'stateRoot'
  | 'networkRange'
  | 'egress'
  | 'lessonsDir'
  | 'logLevel'
  | 'maxContainersPerSession'
  | 'maxContainersPerAddress'
  | 'maxSocketsPerAddress'
  | 'upgradeRatePerIp'
  | 'maxExecs'
  | 'maxExecsPerAddress'
  | 'maxContainers'
  | 'maxTerminalsPerContainer'
  | 'maxMemory'
  | 'maxCpus'
  | 'maxPidsLimit'
  | 'defaultImage'
  | 'allowImages'
  | 'defaultMemory'
  | 'defaultCpus'
  | 'defaultPidsLimit'
  | 'idleTimeout'
  | 'networkGrace'
  | 'maxLifetime'
  | 'rateWindow'
  | 'createRatePerSession'
  | 'createRatePerIp'
  | 'spawnRatePerSession'
  | 'apiRatePerIp'
  | 'execDefaultTimeout'
  | 'execMaxTimeout'
  | 'execMaxOutput'
  | 'jsonBodyLimit'
  | 'maxUpload'
  | 'maxDownload'
  | 'wsMaxPayload'
  | 'scrollbackLines'
  | 'flowStallTimeout'
  | 'shutdownTimeout'
  | 'statsInterval'
  | 'statsHistory'
  | 'warmPool'
  | 'dataDir'
  | 'recordingMaxSize'
  | 'recordingRetention'
  | 'maxClasses'
  | 'maxStudentsPerClass'
  | 'joinRatePerIp'
  | 'nodeId'
  | 'sessionKeyFile'
  | 'drainGrace'
  | 'agentPort';

/** What a caller may give: strings from flags or the environment, or typed values. */
export type ServeOptions = Partial<Record<ServeOptionKey, string | number | boolean | string[] | null>>;

export interface ServeOptionSpec {
  key: ServeOptionKey;
  /** commander syntax */
  flag: string;
  env: string;
  description: string;
  /** shown in --help and the README */
  defaultText: string;
}

const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../../../web/dist', import.meta.url));

/**
 * Every option. `mdocker serve` builds its flags from this table, so a new option needs
 * no CLI change; the README's table is this table.
 */
export const SERVE_OPTIONS: readonly ServeOptionSpec[] = [
  spec('host', '--host <address>', 'address to listen on; anything but loopback requires a token', '127.0.0.1'),
  spec('port', '--port <number>', 'TCP port (0: any free port)', '8080'),
  spec('token', '--token <token>', 'access token; generated when listening beyond loopback', 'none on loopback'),
  spec(
    'allowedHosts',
    '--allowed-hosts <list>',
    'comma-separated Host names accepted without a token',
    'localhost, loopback addresses',
  ),
  spec(
    'previewDomain',
    '--preview-domain <domain>',
    "previews of containers' ports are served on https://<token>-<port>.DOMAIN/ (a wildcard DNS name to this " +
      "server, never the playground's own domain); http://DOMAIN:PORT to say how browsers reach it",
    'http://preview.localhost:<server port>',
  ),
  spec(
    'trustProxy',
    '--trust-proxy <hops>',
    'proxies in front that append to X-Forwarded-For (behind an ingress: 1); the client address is that many hops back',
    '0',
  ),
  spec('webDir', '--web-dir <dir>', 'the built web UI to serve at /', 'web/dist'),
  spec('stateRoot', '--state-root <dir>', "the runtime's state directory", '/run/mdocker'),
  spec(
    'networkRange',
    '--network-range <cidr>',
    "private range the containers' networks take their subnets from (a /24 each: each session's, each class's)",
    '10.89.0.0/16',
  ),
  spec(
    'egress',
    '--egress',
    "the playground's networks reach public addresses, through NAT; never the host, private or link-local ones (SECURITY.md)",
    'off',
  ),
  spec(
    'lessonsDir',
    '--lessons-dir <dir>',
    'more lessons beside the built-in ones (lessons/README.md); they may ask for capabilities, as built-in ones do',
    'none',
  ),
  spec('logLevel', '--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info'),
  spec('maxContainersPerSession', '--max-containers-per-session <n>', 'containers one browser session may have', '5'),
  spec(
    'maxContainersPerAddress',
    '--max-containers-per-address <n>',
    'containers all sessions from one client address may have (a class behind one NAT shares it)',
    '100',
  ),
  spec('maxExecs', '--max-execs <n>', 'execs running at once on this server', '32'),
  spec(
    'maxSocketsPerAddress',
    '--max-sockets-per-address <n>',
    'WebSockets open at once from one client address',
    '512',
  ),
  spec('upgradeRatePerIp', '--upgrade-rate-per-ip <n>', 'WebSocket upgrades per client address per window', '600'),
  spec('maxExecsPerAddress', '--max-execs-per-address <n>', 'execs running at once from one client address', '8'),
  spec('maxContainers', '--max-containers <n>', 'containers on this server in total', '200'),
  spec('maxTerminalsPerContainer', '--max-terminals-per-container <n>', 'terminals per container, init included', '8'),
  spec('maxMemory', '--max-memory <size>', 'largest memory limit a user may ask for ("none": no cap)', '1g'),
  spec('maxCpus', '--max-cpus <cpus>', 'largest CPU limit a user may ask for ("none": no cap)', '1'),
  spec('maxPidsLimit', '--max-pids-limit <n>', 'largest pids limit a user may ask for ("none": no cap)', '1024'),
  spec('defaultImage', '--default-image <name>', 'image when the request names none', 'busybox'),
  spec(
    'allowImages',
    '--allow-images <list>',
    'comma-separated references of stored images (pulled or loaded) every session may start, e.g. alpine:3,127.0.0.1:5000/app:1',
    'none: the built-in images and what the teacher pulls',
  ),
  spec('defaultMemory', '--default-memory <size>', 'memory limit when the request gives none', '256m'),
  spec('defaultCpus', '--default-cpus <cpus>', 'CPU limit when the request gives none', '0.5'),
  spec('defaultPidsLimit', '--default-pids-limit <n>', 'pids limit when the request gives none', '256'),
  spec(
    'idleTimeout',
    '--idle-timeout <duration>',
    'remove a container no client watched for this long (0: never)',
    '30m',
  ),
  spec(
    'networkGrace',
    '--network-grace <duration>',
    "keep a session's network this long after its last container, for its next one (0: remove at once)",
    '60s',
  ),
  spec('maxLifetime', '--max-lifetime <duration>', 'remove a container this long after its creation (0: never)', '4h'),
  spec('rateWindow', '--rate-window <duration>', 'the window of the rate limits below', '1m'),
  spec('createRatePerSession', '--create-rate-per-session <n>', 'container creations per session per window', '10'),
  spec('createRatePerIp', '--create-rate-per-ip <n>', 'container creations per client address per window', '30'),
  spec('spawnRatePerSession', '--spawn-rate-per-session <n>', 'terminals and execs per session per window', '120'),
  spec('apiRatePerIp', '--api-rate-per-ip <n>', 'API requests per client address per window', '1200'),
  spec('execDefaultTimeout', '--exec-default-timeout <duration>', 'exec time limit when the request gives none', '10s'),
  spec('execMaxTimeout', '--exec-max-timeout <duration>', 'largest exec time limit a request may ask for', '60s'),
  spec('execMaxOutput', '--exec-max-output <size>', 'stdout and stderr kept per exec, each', '1m'),
  spec('jsonBodyLimit', '--json-body-limit <size>', 'largest JSON request body', '16k'),
  spec('maxUpload', '--max-upload <size>', 'largest file an upload may write into a container (then 413)', '64m'),
  spec(
    'maxDownload',
    '--max-download <size>',
    "largest file a download sends, and most file bytes in a directory's tar",
    '1g',
  ),
  spec('wsMaxPayload', '--ws-max-payload <size>', 'largest WebSocket frame a client may send', '64k'),
  spec(
    'scrollbackLines',
    '--scrollback-lines <n>',
    'lines of scrollback kept per terminal for reattaching clients',
    '2000',
  ),
  spec(
    'flowStallTimeout',
    '--flow-stall-timeout <duration>',
    'drop a client that holds its terminal paused without acking this long',
    '15s',
  ),
  spec('shutdownTimeout', '--shutdown-timeout <duration>', 'how long SIGTERM waits for containers to go', '10s'),
  spec('statsInterval', '--stats-interval <duration>', 'stats sampling period', '1s'),
  spec('statsHistory', '--stats-history <duration>', 'stats history kept per container', '10m'),
  spec(
    'warmPool',
    '--warm-pool <n>',
    'default containers kept started ahead of demand: a click takes one at once (a class: its size)',
    '0',
  ),
  spec('dataDir', '--data-dir <dir>', 'where recordings of terminals are kept', '/var/lib/mdocker'),
  spec('recordingMaxSize', '--recording-max-size <size>', 'output recorded per terminal', '8m'),
  spec(
    'recordingRetention',
    '--recording-retention <duration>',
    "how long recordings outlive their class's end (or their container, outside a class)",
    '24h',
  ),
  spec('maxClasses', '--max-classes <n>', 'classes open at once on this server', '20'),
  spec('maxStudentsPerClass', '--max-students-per-class <n>', 'students who may join one class', '100'),
  spec(
    'joinRatePerIp',
    '--join-rate-per-ip <n>',
    'failed class joins (wrong codes) per client address per window; right codes do not count',
    '20',
  ),
  spec(
    'nodeId',
    '--node-id <id>',
    "this node's name in a cluster (a DNS label: HAProxy's server name, carried in every session it signs)",
    'none (a lone server)',
  ),
  spec(
    'sessionKeyFile',
    '--session-key-file <file>',
    "the key (32 bytes or more) every node of a deployment signs sessions with, so any node reads another's cookie",
    'a random key per start',
  ),
  spec(
    'drainGrace',
    '--drain-grace <duration>',
    'on SIGTERM or POST /api/node/drain: take no new sessions, tell users, wait this long (or until no container is left), then stop',
    '0 (SIGTERM stops at once)',
  ),
  spec(
    'agentPort',
    '--agent-port <number>',
    "TCP port answering HAProxy's agent-check: this node's weight from its headroom, or drain",
    'none',
  ),
];

function spec(key: ServeOptionKey, flag: string, description: string, defaultText: string): ServeOptionSpec {
  const env = 'MDOCKER_' + key.replace(/[A-Z]/g, (letter) => '_' + letter).toUpperCase();
  return { key, flag, env, description, defaultText };
}

/** The options as given by `MDOCKER_*` environment variables. */
export function serveOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ServeOptions {
  const options: ServeOptions = {};
  for (const option of SERVE_OPTIONS) {
    const value = env[option.env];
    if (value !== undefined && value !== '') options[option.key] = value;
  }
  return options;
}

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost', 'ip6-loopback']);

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms; everything else may be reachable. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (LOOPBACK_NAMES.has(bare)) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) {
    if (bare === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(bare)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/** Generated tokens: 24 random bytes, URL-safe. */
export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "10s", "30m", "4h", "1d"; a plain number is seconds. */
export function parseDurationMs(input: string | number, what: string): number {
  const text = String(input).trim();
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text);
  if (!match) throw invalidOption(what, input, 'expected a duration such as 500ms, 10s, 30m or 4h');
  const ms = Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 's']!);
  if (!Number.isSafeInteger(ms)) throw invalidOption(what, input, 'too large');
  return ms;
}

export { parseSizeBytes };

function invalidOption(what: string, input: unknown, why: string): MdockerError {
  const shown = JSON.stringify(String(input).slice(0, 64));
  return new MdockerError('INVALID_ARGUMENT', `invalid ${what} ${shown}: ${why}`, { option: what });
}

function flagOf(key: ServeOptionKey): string {
  return SERVE_OPTIONS.find((option) => option.key === key)?.flag.split(' ')[0] ?? key;
}

/**
 * Flags (`options`) over environment (`env`) over defaults. On a non-loopback host a
 * token is generated when none is given, as Jupyter does; the URL printed carries it.
 */
export function resolveServeConfig(options: ServeOptions = {}, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const given: Record<string, unknown> = { ...serveOptionsFromEnv(env) };
  for (const [key, value] of Object.entries(options)) if (value !== undefined) given[key] = value;

  const raw = (key: ServeOptionKey): unknown => given[key];
  const text = (key: ServeOptionKey, fallback: string): string => {
    const value = raw(key);
    return value === undefined || value === null ? fallback : String(value);
  };
  const integer = (key: ServeOptionKey, fallback: number, min: number, max: number): number => {
    const value = raw(key);
    if (value === undefined || value === null) return fallback;
    const parsed = typeof value === 'number' ? value : Number(String(value).trim());
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw invalidOption(flagOf(key), value, `expected a whole number from ${min} to ${max}`);
    }
    return parsed;
  };
  // "true" (every proxy believed) let any client pick its address with X-Forwarded-For.
  const hops = (key: ServeOptionKey): number => {
    const value = raw(key);
    if (value === undefined || value === null || value === false) return 0;
    const lowered = String(value).trim().toLowerCase();
    if (['0', 'false', 'no', 'off'].includes(lowered)) return 0;
    if (['true', 'yes', 'on'].includes(lowered)) {
      throw invalidOption(flagOf(key), value, 'give the number of proxies in front (1 behind one ingress)');
    }
    return integer(key, 0, 0, 10);
  };
  const list = (key: ServeOptionKey): string[] => {
    const value = raw(key);
    const items = Array.isArray(value) ? value : String(value ?? '').split(',');
    return [...new Set(items.map((item) => String(item).trim()).filter((item) => item !== ''))];
  };
  const flag = (key: ServeOptionKey): boolean => {
    const value = raw(key);
    if (value === undefined || value === null || value === false) return false;
    if (value === true) return true;
    const lowered = String(value).trim().toLowerCase();
    if (['', '0', 'false', 'no', 'off'].includes(lowered)) return false;
    if (['1', 'true', 'yes', 'on'].includes(lowered)) return true;
    throw invalidOption(flagOf(key), value, 'expected on or off');
  };
  const duration = (key: ServeOptionKey, fallback: string): number => {
    const value = raw(key);
    return parseDurationMs(value === undefined || value === null ? fallback : String(value), flagOf(key));
  };
  const size = (key: ServeOptionKey, fallback: string): number => {
    const value = raw(key);
    return parseSizeBytes(value === undefined || value === null ? fallback : String(value), flagOf(key));
  };
  /** A limit given by the user: "none" (or null) is no limit, else units.ts parses it. */
  const limit = <T>(key: ServeOptionKey, fallback: string, parse: (input: string | number) => T): T | null => {
    const value = raw(key);
    const chosen = value === undefined ? fallback : value;
    if (chosen === null || String(chosen).trim().toLowerCase() === 'none') return null;
    try {
      return parse(typeof chosen === 'number' ? chosen : String(chosen));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new MdockerError('INVALID_ARGUMENT', `${flagOf(key)}: ${message}`, { option: flagOf(key) });
    }
  };

  const host = text('host', '127.0.0.1').trim();
  if (host === '') throw invalidOption('--host', host, 'must not be empty');
  const loopback = isLoopbackHost(host);
  const givenToken = raw('token');
  let token: string | null = null;
  if (givenToken !== undefined && givenToken !== null && String(givenToken) !== '') {
    token = String(givenToken);
    if (!/^[A-Za-z0-9._~-]{8,256}$/.test(token)) {
      throw invalidOption('--token', '<hidden>', 'expected 8 to 256 URL-safe characters (A-Z a-z 0-9 . _ ~ -)');
    }
  } else if (!loopback) {
    token = generateToken();
  }

  const allowedHostsRaw = raw('allowedHosts');
  const extraHosts = (Array.isArray(allowedHostsRaw) ? allowedHostsRaw : String(allowedHostsRaw ?? '').split(','))
    .map((name) => String(name).trim().toLowerCase())
    .filter((name) => name !== '');
  const allowedHosts = [...new Set(['localhost', '127.0.0.1', '::1', host.toLowerCase(), ...extraHosts])];

  const preview = parsePreviewDomain(raw('previewDomain'), allowedHosts);

  const hostCpus = availableParallelism();
  const levels: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  const logLevel = text('logLevel', 'info') as LogLevel;
  if (!levels.includes(logLevel)) throw invalidOption('--log-level', logLevel, `expected one of ${levels.join(', ')}`);

  const config: ServeConfig = {
    host,
    port: integer('port', 8080, 0, 65535),
    token,
    allowedHosts,
    previewDomain: preview.domain,
    previewScheme: preview.scheme,
    previewPort: preview.port,
    trustProxy: hops('trustProxy'),
    webDir: text('webDir', DEFAULT_WEB_DIR),
    stateRoot: raw('stateRoot') == null ? undefined : String(raw('stateRoot')),
    networkRange: raw('networkRange') == null ? undefined : String(raw('networkRange')),
    networkEgress: flag('egress'),
    lessonsDir: raw('lessonsDir') == null || String(raw('lessonsDir')) === '' ? null : String(raw('lessonsDir')),
    logLevel,
    maxContainersPerSession: integer('maxContainersPerSession', 5, 1, 10_000),
    maxContainersPerAddress: integer('maxContainersPerAddress', 100, 1, 100_000),
    maxExecs: integer('maxExecs', 32, 1, 10_000),
    maxSocketsPerAddress: integer('maxSocketsPerAddress', 512, 1, 1_000_000),
    upgradeRatePerIp: integer('upgradeRatePerIp', 600, 1, 1_000_000),
    maxExecsPerAddress: integer('maxExecsPerAddress', 8, 1, 10_000),
    maxContainers: integer('maxContainers', 200, 1, 100_000),
    maxTerminalsPerContainer: integer('maxTerminalsPerContainer', 8, 1, 1000),
    maxMemoryBytes: limit('maxMemory', '1g', parseMemoryBytes),
    maxCpus: limit('maxCpus', '1', (input) => parseCpus(input, hostCpus)),
    maxPidsLimit: limit('maxPidsLimit', '1024', parsePidsLimit),
    defaultImage: text('defaultImage', 'busybox'),
    defaultMemoryBytes: limit('defaultMemory', '256m', parseMemoryBytes),
    defaultCpus: limit('defaultCpus', '0.5', (input) => parseCpus(input, hostCpus)),
    defaultPidsLimit: limit('defaultPidsLimit', '256', parsePidsLimit),
    idleTimeoutMs: duration('idleTimeout', '30m'),
    networkGraceMs: duration('networkGrace', '60s'),
    maxLifetimeMs: duration('maxLifetime', '4h'),
    rateWindowMs: duration('rateWindow', '1m'),
    createRatePerSession: integer('createRatePerSession', 10, 1, 1_000_000),
    createRatePerIp: integer('createRatePerIp', 30, 1, 1_000_000),
    spawnRatePerSession: integer('spawnRatePerSession', 120, 1, 1_000_000),
    apiRatePerIp: integer('apiRatePerIp', 1200, 1, 10_000_000),
    execDefaultTimeoutMs: 0,
    execMaxTimeoutMs: duration('execMaxTimeout', '60s'),
    execMaxOutputBytes: size('execMaxOutput', '1m'),
    jsonBodyLimitBytes: size('jsonBodyLimit', '16k'),
    maxUploadBytes: size('maxUpload', '64m'),
    maxDownloadBytes: size('maxDownload', '1g'),
    wsMaxPayloadBytes: size('wsMaxPayload', '64k'),
    scrollbackLines: integer('scrollbackLines', 2000, 0, 100_000),
    flowStallTimeoutMs: duration('flowStallTimeout', '15s'),
    shutdownTimeoutMs: duration('shutdownTimeout', '10s'),
    statsIntervalMs: duration('statsInterval', '1s'),
    statsHistorySamples: 0,
    warmPool: integer('warmPool', 0, 0, 1000),
    dataDir: text('dataDir', '/var/lib/mdocker'),
    recordingMaxBytes: size('recordingMaxSize', '8m'),
    recordingRetentionMs: duration('recordingRetention', '24h'),
    maxClasses: integer('maxClasses', 20, 1, 10_000),
    maxStudentsPerClass: integer('maxStudentsPerClass', 100, 1, 10_000),
    joinRatePerIp: integer('joinRatePerIp', 20, 1, 1_000_000),
    nodeId: raw('nodeId') == null || String(raw('nodeId')) === '' ? null : String(raw('nodeId')),
    sessionKeyFile:
      raw('sessionKeyFile') == null || String(raw('sessionKeyFile')) === '' ? null : String(raw('sessionKeyFile')),
    drainGraceMs: duration('drainGrace', '0'),
    agentPort: raw('agentPort') == null || String(raw('agentPort')) === '' ? null : integer('agentPort', 0, 0, 65535),
    allowImages: list('allowImages'),
  };
  for (const reference of config.allowImages) {
    try {
      storeReference(reference, 'image');
    } catch (err) {
      throw invalidOption('--allow-images', reference, err instanceof Error ? err.message : String(err));
    }
  }
  if (config.nodeId !== null && !NODE_ID.test(config.nodeId)) {
    throw invalidOption('--node-id', config.nodeId, 'expected a DNS label: a-z, 0-9 and -, at most 63 characters');
  }
  if (config.warmPool >= config.maxContainers) {
    throw invalidOption('--warm-pool', raw('warmPool'), `must be below --max-containers (${config.maxContainers})`);
  }
  // Lowering the maximum lowers the default with it, unless a default is given.
  config.execDefaultTimeoutMs =
    raw('execDefaultTimeout') == null
      ? Math.min(10_000, config.execMaxTimeoutMs)
      : duration('execDefaultTimeout', '10s');
  const historyMs = duration('statsHistory', '10m');
  if (config.statsIntervalMs < 100) throw invalidOption('--stats-interval', raw('statsInterval'), 'at least 100ms');
  config.statsHistorySamples = Math.max(1, Math.ceil(historyMs / config.statsIntervalMs));
  if (config.execDefaultTimeoutMs <= 0 || config.execDefaultTimeoutMs > config.execMaxTimeoutMs) {
    throw invalidOption(
      '--exec-default-timeout',
      raw('execDefaultTimeout'),
      'must be above 0 and at most --exec-max-timeout',
    );
  }
  if (config.flowStallTimeoutMs <= 0)
    throw invalidOption('--flow-stall-timeout', raw('flowStallTimeout'), 'must be above 0');
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(config.defaultImage)) {
    throw invalidOption('--default-image', config.defaultImage, 'expected an image name such as busybox');
  }
  checkDefaultWithinCap(config.defaultMemoryBytes, config.maxMemoryBytes, '--default-memory', '--max-memory');
  checkDefaultWithinCap(config.defaultCpus, config.maxCpus, '--default-cpus', '--max-cpus');
  checkDefaultWithinCap(config.defaultPidsLimit, config.maxPidsLimit, '--default-pids-limit', '--max-pids-limit');
  return config;
}

/** A node id is a DNS label (a StatefulSet pod's name): it sits between dots in the
 * session cookie and is HAProxy's server name, so nothing else may appear in it. */
export const NODE_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const DEFAULT_PREVIEW_DOMAIN = 'preview.localhost';

const DNS_NAME = /^(?=.{1,200}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/**
 * --preview-domain: a DNS name (previews on https://<token>-<port>.NAME/) or an origin
 * http(s)://NAME[:PORT]. Browsers resolve *.localhost to loopback themselves, so the
 * default needs no DNS. It must not cover a name the playground answers to: a preview
 * would then share the playground's origin.
 */
function parsePreviewDomain(
  value: unknown,
  allowedHosts: string[],
): { domain: string; scheme: 'http' | 'https'; port: number | null } {
  if (value === undefined || value === null || String(value).trim() === '') {
    return { domain: DEFAULT_PREVIEW_DOMAIN, scheme: 'http', port: null };
  }
  const text = String(value).trim().toLowerCase();
  let domain = text;
  let scheme: 'http' | 'https' = 'https';
  let port: number | null = null;
  if (/^https?:\/\//.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalidOption('--preview-domain', value, 'expected a DNS name or http(s)://NAME[:PORT]');
    }
    if (url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '') {
      throw invalidOption('--preview-domain', value, 'expected http(s)://NAME[:PORT] with nothing after it');
    }
    domain = url.hostname;
    scheme = url.protocol === 'http:' ? 'http' : 'https';
    port = url.port === '' ? null : Number(url.port);
  }
  if (!DNS_NAME.test(domain))
    throw invalidOption('--preview-domain', value, 'expected a DNS name such as preview.example.com');
  for (const name of allowedHosts) {
    if (name === domain || name.endsWith(`.${domain}`)) {
      throw invalidOption('--preview-domain', value, `it covers ${name}, a name of the playground itself`);
    }
  }
  return { domain, scheme, port };
}

function checkDefaultWithinCap(value: number | null, cap: number | null, flag: string, capFlag: string): void {
  if (cap === null) return;
  // No default with a cap would let every container run unlimited unless it asked for less.
  if (value === null || value > cap) {
    throw new MdockerError('INVALID_ARGUMENT', `${flag} must be set and at most ${capFlag} (${cap})`, { option: flag });
  }
}

/** The URL to print: loopback for a wildcard bind, with the token if there is one. */
export function serverUrl(config: Pick<ServeConfig, 'host' | 'token'>, port: number): string {
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const shownHost = wildcard ? '127.0.0.1' : config.host;
  const hostPart = isIP(shownHost) === 6 ? `[${shownHost}]` : shownHost;
  const url = new URL(`http://${hostPart}:${port}/`);
  if (config.token !== null) url.searchParams.set('token', config.token);
  return url.toString();
}
