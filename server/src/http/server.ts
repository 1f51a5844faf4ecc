/**
 * Starts the playground server (`mdocker serve`, tests): reaps a previous run's leftovers,
 * serves HTTP and WebSockets, prints its URL, and on SIGINT/SIGTERM removes every
 * container it started and exits.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { raiseOpenFilesLimit } from '../runtime/native.js';
import { createApp } from './app.js';
import { PREVIEW_MAX_CONNECTIONS_PER_CONTAINER, PreviewProxy, previewUrl, routeUpgradesByHost } from './preview.js';
import { Previews } from '../playground/previews.js';
import { serverUrl, type ServeConfig } from './config.js';
import { ServerMetrics } from './metrics.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Classes } from '../playground/classes.js';
import { Lessons } from '../playground/lessons/engine.js';
import { loadLessons, type LessonSource } from '../playground/lessons/loader.js';
import { Playground, sessionLabel, type PlaygroundRuntime } from '../playground/playground.js';
import { ImageCatalog, type ImageBackend } from '../playground/image-catalog.js';
import { runtimeImageBackend } from '../playground/image-backend.js';
import { MdockerError } from '../runtime/errors.js';
import type { CommitContainerOptions } from '../runtime/images.js';
import { Recordings } from '../playground/recording.js';
import { WS_CLOSE } from '../protocol/index.js';
import { LONE_NODE, SessionKeeper, loadSessionKey } from './sessions.js';
import { startAgent, type AgentServer } from './agent.js';
import { ClusterNode } from './node.js';
import { delay, settlesWithin } from '../playground/timing.js';
import { WebSockets } from './websocket.js';

export interface StartServerOptions {
  /** default: Runtime.open() (needs root) */
  runtime?: PlaygroundRuntime;
  logger?: Logger;
  /** exit on SIGINT/SIGTERM after removing the containers; default true */
  handleSignals?: boolean;
  /** print the URL on stdout; default true */
  printUrl?: boolean;
  /** default: the runtime's images (built-in trees and the store) */
  imageBackend?: ImageBackend;
}

export interface RunningServer {
  /** with ?token= when the server has one */
  url: string;
  port: number;
  /** Stops accepting, tells clients, removes every container this server started. */
  close(): Promise<void>;
  readonly playground: Playground;
  readonly classes: Classes;
  readonly lessons: Lessons;
  readonly images: ImageCatalog;
  readonly metrics: ServerMetrics;
  readonly http: Server;
  /** readiness, headroom and drain */
  readonly node: ClusterNode;
  /** HAProxy's agent-check port, or null */
  readonly agentPort: number | null;
}

/** The built-in lessons: lessons/ of the repository (server/dist/src/http/ → four levels up). */
export const BUILTIN_LESSONS_DIR = fileURLToPath(new URL('../../../../lessons', import.meta.url));

/** Open files the server holds per container, roughly (see startServer). */
const FDS_PER_CONTAINER = 12;

/** Expired recordings and forgotten classes are swept this often. */
const SWEEP_PERIOD_MS = 10 * 60 * 1000;

/** Sockets that did not close by themselves after shutdown are cut after this. */
const SOCKET_CLOSE_GRACE_MS = 500;

export async function startServer(config: ServeConfig, options: StartServerOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'mdocker-serve' } });
  const files = raiseOpenFilesLimit();
  // About 9 per container: a pty master and our slave copy, 6-7 cgroup files, a socket.
  if (files.soft < config.maxContainers * FDS_PER_CONTAINER) {
    logger.warn(
      { event: 'server.fd-limit', openFilesLimit: files.soft, maxContainers: config.maxContainers },
      `the open files limit (${files.soft}) is low for --max-containers ${config.maxContainers}: raise the hard limit (ulimit -Hn)`,
    );
  }
  // A bad lesson stops the start with its file and line, before anything is touched.
  const lessonDirs: { dir: string; source: LessonSource }[] = [{ dir: BUILTIN_LESSONS_DIR, source: 'builtin' }];
  if (config.lessonsDir !== null) lessonDirs.push({ dir: config.lessonsDir, source: 'lessons-dir' });
  const catalog = loadLessons(lessonDirs);
  logger.info({ event: 'server.lessons', lessons: [...catalog.keys()] }, `${catalog.size} lessons loaded`);
  const runtime = options.runtime ?? (await openRuntime(config, logger));
  const reaped = await runtime.reapLeftovers();
  if (reaped.length > 0)
    logger.info(
      { event: 'server.reaped', containerIds: reaped },
      `removed ${reaped.length} leftover containers of an earlier run`,
    );

  // Read before anything is served: a missing or short key stops the start.
  const sessionKey =
    config.sessionKeyFile === null
      ? undefined
      : loadSessionKey(config.sessionKeyFile, (message) => logger.warn({ event: 'server.session-key' }, message));
  let node: ClusterNode | null = null;
  const sessions = new SessionKeeper({
    ...(sessionKey === undefined ? {} : { key: sessionKey }),
    node: config.nodeId ?? LONE_NODE,
    accepting: () => node?.acceptsNewSessions ?? false,
  });
  let webSockets: WebSockets | null = null;
  let playground: Playground | null = null;
  const metrics = new ServerMetrics({
    containersByState: () => playground?.containersByState() ?? { created: 0, running: 0, exited: 0, removed: 0 },
    terminals: () => playground?.terminalCount() ?? 0,
    webSocketClients: () => webSockets?.clientCounts ?? { terminal: 0, stats: 0 },
  });
  const recordings = new Recordings({
    dir: join(config.dataDir, 'recordings'),
    maxBytes: config.recordingMaxBytes,
    retentionMs: config.recordingRetentionMs,
    logger,
  });
  playground = new Playground({
    runtime,
    config,
    logger,
    metrics,
    recordings,
  });
  const classes = new Classes({
    playground,
    groups: runtime,
    config,
    logger,
    recordings,
    ...(config.nodeId === null ? {} : { node: config.nodeId }),
  });
  const livePlayground = playground;
  node = new ClusterNode({
    id: sessions.node,
    maxContainers: config.maxContainers,
    drainGraceMs: config.drainGraceMs,
    containerCount: () => livePlayground.containerCount,
    userContainerCount: () => livePlayground.sessionContainerCount,
    tell: (notice) => {
      livePlayground.tellEverySession({ type: 'node', node: notice });
      classes.tellEveryClass({ type: 'node', node: notice });
    },
    onDrained: () => stopAfterDrain(),
    logger,
  });
  const clusterNode = node;
  const images = new ImageCatalog({
    backend:
      options.imageBackend ??
      runtimeImageBackend({ removeImage: removeImageOf(runtime), runtime: containerReaderOf(runtime) }),
    allowed: config.allowImages,
    node: config.nodeId ?? 'local',
    logger,
    idleMs: config.idleTimeoutMs,
    hasContainers: (sessionId) => livePlayground.hasContainers(sessionId),
    isStudent: (sessionId) => classes.isStudent(sessionId),
    label: sessionLabel,
  });
  await images.start();
  playground.setImageGate(
    (sessionId, image, trusted) => images.resolve({ sessionId, teacher: false, trusted }, image),
    (sessionId, image) => images.isOwnSaved(sessionId, image),
  );
  playground.observe({
    message: (sessionId, message) => images.message(sessionId, message),
    input() {},
    connection() {},
  });
  const lessons = new Lessons({ catalog, logger });
  lessons.attach(playground);
  // The default preview URL names the server's port, known once it listens.
  let boundPort = config.port;
  const previews = new Previews({
    playground,
    logger,
    urlOf: (token, port) => previewUrl(config, boundPort, token, port),
    maxConnectionsPerContainer: PREVIEW_MAX_CONNECTIONS_PER_CONTAINER,
  });
  const previewProxy = new PreviewProxy({ previews, config, logger });
  const sweep = (): void => {
    classes.sweep();
    recordings.sweep().catch((err: unknown) => logger.warn({ err }, 'sweeping recordings failed'));
  };
  sweep();
  const sweeper = setInterval(sweep, SWEEP_PERIOD_MS);
  sweeper.unref();
  const app = createApp({
    config,
    playground,
    classes,
    recordings,
    sessions,
    metrics,
    logger,
    lessons,
    previews,
    node: clusterNode,
    images,
  });
  // A preview host never reaches the app: not its routes, sessions, token or cookies.
  const server = createServer((req, res) =>
    previewProxy.handles(req) ? previewProxy.request(req, res) : app(req, res),
  );
  webSockets = new WebSockets({ server, config, sessions, playground, classes, logger, node: clusterNode, images });
  routeUpgradesByHost(server, previewProxy);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  playground.start();
  let agent: AgentServer | null = null;
  if (config.agentPort !== null) {
    try {
      agent = await startAgent(config.host, config.agentPort, () => clusterNode.agentLine());
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
  }
  clusterNode.serving();
  const port = (server.address() as AddressInfo).port;
  boundPort = port;
  const url = serverUrl(config, port);
  logger.info(
    {
      event: 'server.listening',
      host: config.host,
      port,
      tokenRequired: config.token !== null,
      node: sessions.node,
      agentPort: agent?.port ?? null,
    },
    'serving the playground',
  );
  if (options.printUrl ?? true) {
    process.stdout.write(`mdocker playground: ${url}\n`);
    if (config.host === '0.0.0.0' || config.host === '::') {
      // Listening on every interface: other machines need this host's name, not loopback.
      const remote = new URL(url);
      remote.hostname = hostname();
      process.stdout.write(`  from other machines: ${remote.toString()}\n`);
    }
  }

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      clusterNode.stopping();
      logger.info({ event: 'server.stopping', containers: playground.containerCount }, 'stopping: removing containers');
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Clients learn it from their terminals' `exit` (reason "shutdown") as containers go.
      clearInterval(sweeper);
      // The classes' cgroups go once their containers have.
      // Saved images go once no container uses them.
      const removed = playground.shutdown().then(() => Promise.all([classes.shutdown(), images.close()]));
      void removed.finally(() => lessons.close());
      const timedOut = !(await settlesWithin(removed, config.shutdownTimeoutMs));
      if (timedOut)
        logger.warn(
          { event: 'server.shutdown-timeout' },
          'some containers were not removed in time; the next start reaps them',
        );
      webSockets.close(WS_CLOSE.GOING_AWAY, 'server shutting down');
      await delay(SOCKET_CLOSE_GRACE_MS);
      webSockets.terminateAll();
      server.closeAllConnections();
      await serverClosed;
      await agent?.close();
      await recordings.close();
      if (signalHandler) {
        process.off('SIGINT', signalHandler);
        process.off('SIGTERM', signalHandler);
      }
      logger.info({ event: 'server.stopped' }, 'stopped');
    })();
    return closing;
  };

  const handleSignals = options.handleSignals ?? true;
  const stop = (): void => {
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // The end of a drain (its deadline, no user container left, or a second signal) is a
  // stop: containers removed as on SIGTERM, and a process of `mdocker serve` exits so its
  // supervisor (Kubernetes, systemd) starts it afresh.
  function stopAfterDrain(): void {
    if (handleSignals) stop();
    else void close();
  }

  let signalHandler: ((signal: NodeJS.Signals) => void) | null = null;
  if (handleSignals) {
    signalHandler = (signal) => {
      if (closing) {
        logger.warn({ signal }, 'second signal: exiting now; the next start reaps what is left');
        process.exit(1);
      }
      logger.info({ event: 'server.signal', signal }, 'signal received');
      if (clusterNode.state === 'draining') {
        logger.info({ event: 'server.signal', signal }, 'second signal while draining: stopping now');
        clusterNode.finishDrain();
        return;
      }
      // With a grace, users are told and given it; without, the stop is at once, as ever.
      if (config.drainGraceMs > 0) clusterNode.drain();
      else stop();
    };
    process.on('SIGINT', signalHandler);
    process.on('SIGTERM', signalHandler);
  }

  return {
    url,
    port,
    close,
    playground,
    classes,
    lessons,
    images,
    metrics,
    http: server,
    node: clusterNode,
    agentPort: agent?.port ?? null,
  };
}

/** rmi through the runtime, which knows the containers that use an image. */
function removeImageOf(runtime: PlaygroundRuntime): (name: string, force: boolean) => Promise<unknown> {
  const withImages = runtime as Partial<{ removeImage(name: string, force: boolean): Promise<unknown> }>;
  return (name, force) =>
    withImages.removeImage === undefined
      ? Promise.reject(new MdockerError('UNSUPPORTED', 'this runtime has no image store'))
      : withImages.removeImage.call(runtime, name, force);
}

/** Runtime.get, for a commit (a test's runtime may have none). */
function containerReaderOf(runtime: PlaygroundRuntime): CommitContainerOptions['runtime'] | null {
  const withGet = runtime as Partial<CommitContainerOptions['runtime']>;
  return withGet.get === undefined ? null : { get: (idOrName) => withGet.get!.call(runtime, idOrName) };
}

/** The real runtime, with the host it found logged (on cgroup v2 it takes its delegated cgroup now). */
async function openRuntime(config: ServeConfig, logger: Logger): Promise<PlaygroundRuntime> {
  const { Runtime } = await import('../runtime/containers.js');
  const runtime = await Runtime.open({
    ...(config.stateRoot === undefined ? {} : { stateRoot: config.stateRoot }),
    ...(config.networkRange === undefined ? {} : { networkRange: config.networkRange }),
    warn: (message) => logger.warn({ event: 'runtime.warning' }, message),
  });
  const host = await runtime.info();
  logger.info(
    { event: 'server.host', ...host },
    `cgroup v${host.cgroupVersion} (${host.cgroupDriver}): containers below ${host.cgroupParents.join(', ')}`,
  );
  if (config.networkEgress) {
    const { hostForwardingProblem } = await import('../runtime/networks.js');
    const problem = hostForwardingProblem();
    if (problem) logger.warn({ event: 'server.egress' }, `--egress: ${problem}`);
  }
  if (!host.idmappedMounts.supported) {
    logger.warn(
      { event: 'server.no-idmap', dir: host.idmappedMounts.dir, reason: host.idmappedMounts.reason },
      `${host.idmappedMounts.reason ?? 'no idmapped mounts'}: containers run without a user namespace (SECURITY.md)`,
    );
  }
  return runtime;
}
