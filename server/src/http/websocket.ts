/**
 * The WebSocket endpoints (terminal attach, stats stream): upgrade checks (Host, Origin,
 * token, session), then each socket wired to the playground, with heartbeats and a
 * per-session cap on sockets.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { MdockerError, toMdockerError } from '../runtime/errors.js';
import { checkUpgrade, hasValidToken } from './auth.js';
import { clientAddress } from './client-address.js';
import type { ServeConfig } from './config.js';
import { closeReason, errorJson, httpStatusFor, wsCloseCodeFor } from './errors.js';
import type { Classes } from '../playground/classes.js';
import type { Playground } from '../playground/playground.js';
import {
  WS_CLOSE,
  type AttachMode,
  type ClassEventMessage,
  type ImagePullMessage,
  type StatsServerMessage,
  type TerminalServerMessage,
} from '../protocol/index.js';
import { nodeGone, type SessionKeeper } from './sessions.js';
import type { ClusterNode } from './node.js';
import type { ImageCatalog } from '../playground/image-catalog.js';

/** Enough for many tabs; a script opening thousands is refused. */
const MAX_SOCKETS_PER_SESSION = 64;
const HEARTBEAT_MS = 30_000;
/** A stats client this far behind misses samples (they come again in a second). */
const STATS_BACKLOG_BYTES = 1024 * 1024;

const TERMINAL_PATH = /^\/api\/containers\/([^/]+)\/terminals\/([^/]+)$/;
const CLASS_EVENTS_PATH = /^\/api\/classes\/([^/]+)\/events$/;
const IMAGE_PULL_PATH = /^\/api\/images\/pulls\/([^/]+)$/;
/** A teacher's event stream this far behind misses samples and screens (they come again). */
const EVENTS_BACKLOG_BYTES = 4 * 1024 * 1024;

type WebSocketsConfig = Pick<
  ServeConfig,
  | 'token'
  | 'allowedHosts'
  | 'wsMaxPayloadBytes'
  | 'trustProxy'
  | 'maxSocketsPerAddress'
  | 'upgradeRatePerIp'
  | 'rateWindowMs'
>;

export interface WebSocketsOptions {
  server: Server;
  config: WebSocketsConfig;
  sessions: SessionKeeper;
  playground: Playground;
  classes: Classes;
  logger: Logger;
  /** a stats stream opened while the node drains is told at once */
  node?: ClusterNode;
  /** the teacher's pulls' progress (/api/images/pulls/:id); none: no such endpoint */
  images?: ImageCatalog;
}

interface Tracked extends WebSocket {
  alive?: boolean;
}

export class WebSockets {
  readonly #wss: WebSocketServer;
  readonly #options: WebSocketsOptions;
  readonly #perSession = new Map<string, number>();
  readonly #perAddress = new Map<string, number>();
  /** Upgrades per address in the current rate window (a fixed window, as the API's limits). */
  #upgrades = new Map<string, number>();
  #upgradeWindowStart = Date.now();
  readonly #counts = { terminal: 0, stats: 0, classEvents: 0 };
  readonly #heartbeat: NodeJS.Timeout;
  #closing = false;

  constructor(options: WebSocketsOptions) {
    this.#options = options;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.config.wsMaxPayloadBytes,
      // Terminal output is mostly incompressible noise or tiny frames; deflate costs
      // memory per socket and opens compression side channels.
      perMessageDeflate: false,
    });
    options.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#onUpgrade(req, socket, head),
    );
    this.#heartbeat = setInterval(() => this.#ping(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  get clientCounts(): { terminal: number; stats: number; classEvents: number } {
    return { ...this.#counts };
  }

  /** Stops accepting upgrades and closes every socket with `code`. */
  close(code: number = WS_CLOSE.GOING_AWAY, reason = 'server shutting down'): void {
    this.#closing = true;
    clearInterval(this.#heartbeat);
    for (const client of this.#wss.clients) client.close(code, reason);
  }

  /** Drops sockets that did not close within the grace period. */
  terminateAll(): void {
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://placeholder');
    const terminalMatch = TERMINAL_PATH.exec(url.pathname);
    const eventsMatch = CLASS_EVENTS_PATH.exec(url.pathname);
    const pullMatch = this.#options.images ? IMAGE_PULL_PATH.exec(url.pathname) : null;
    if (url.pathname !== '/api/stats' && !terminalMatch && !eventsMatch && !pullMatch) {
      return rejectUpgrade(
        socket,
        new MdockerError('NOT_FOUND', `no WebSocket endpoint ${url.pathname.slice(0, 100)}`),
      );
    }
    if (this.#closing) return rejectUpgrade(socket, new MdockerError('CONFLICT', 'the server is shutting down'));
    // Refused before the handshake: a hijacking page or a token-less client gets no socket
    // (a student of a class comes without the token).
    const cookie = this.#options.sessions.read(req.headers.cookie);
    if (cookie.kind === 'foreign') return rejectUpgrade(socket, nodeGone(cookie.node, cookie.restarted));
    const sessionId = cookie.kind === 'local' ? cookie.id : null;
    const student = sessionId !== null && this.#options.classes.isStudent(sessionId);
    const denied = checkUpgrade(req, this.#options.config, student);
    if (denied) return rejectUpgrade(socket, denied);
    const teacher = !student && hasValidToken(req, this.#options.config);
    const mode = url.searchParams.get('mode');
    if (mode !== null && mode !== 'watch' && mode !== 'control') {
      return rejectUpgrade(socket, new MdockerError('INVALID_ARGUMENT', 'mode must be watch or control'));
    }
    // Teacher endpoints do not exist for anyone else.
    if ((eventsMatch || pullMatch || mode !== null) && !teacher) {
      return rejectUpgrade(
        socket,
        new MdockerError('NOT_FOUND', `no WebSocket endpoint ${url.pathname.slice(0, 100)}`),
      );
    }
    if (sessionId === null) {
      return rejectUpgrade(
        socket,
        new MdockerError('UNAUTHORIZED', 'no session: load the page (or any route) first to get the session cookie'),
      );
    }
    if ((this.#perSession.get(sessionId) ?? 0) >= MAX_SOCKETS_PER_SESSION) {
      return rejectUpgrade(
        socket,
        new MdockerError('RATE_LIMITED', `at most ${MAX_SOCKETS_PER_SESSION} WebSockets per session`),
      );
    }
    // Sessions are free: the client's address is capped too, in sockets and in upgrades.
    const { config } = this.#options;
    const address = clientAddress(req, config.trustProxy);
    if (!this.#takeUpgrade(address)) {
      return rejectUpgrade(
        socket,
        new MdockerError(
          'RATE_LIMITED',
          `too many WebSocket upgrades from your address: at most ${config.upgradeRatePerIp} per ` +
            `${Math.ceil(config.rateWindowMs / 1000)} s (this server's cap, --upgrade-rate-per-ip), try again shortly`,
          { cap: 'upgradeRatePerIp', limit: config.upgradeRatePerIp },
        ),
      );
    }
    if ((this.#perAddress.get(address) ?? 0) >= config.maxSocketsPerAddress) {
      return rejectUpgrade(
        socket,
        new MdockerError(
          'LIMIT_EXCEEDED',
          `your address has ${config.maxSocketsPerAddress} WebSockets open, the most allowed ` +
            `(this server's cap, --max-sockets-per-address ${config.maxSocketsPerAddress}): close a tab first`,
          { cap: 'socketsPerAddress', limit: config.maxSocketsPerAddress },
        ),
      );
    }
    this.#wss.handleUpgrade(req, socket, head, (ws: Tracked) => {
      this.#perSession.set(sessionId, (this.#perSession.get(sessionId) ?? 0) + 1);
      this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
      ws.once('close', () => {
        const left = (this.#perAddress.get(address) ?? 1) - 1;
        if (left <= 0) this.#perAddress.delete(address);
        else this.#perAddress.set(address, left);
      });
      ws.alive = true;
      ws.on('pong', () => {
        ws.alive = true;
      });
      ws.on('error', () => ws.terminate());
      ws.once('close', () => {
        const left = (this.#perSession.get(sessionId) ?? 1) - 1;
        if (left <= 0) this.#perSession.delete(sessionId);
        else this.#perSession.set(sessionId, left);
      });
      if (terminalMatch) {
        this.#attachTerminal(ws, sessionId, terminalMatch[1]!, terminalMatch[2]!, url.searchParams, mode);
      } else if (eventsMatch) {
        this.#subscribeClass(ws, eventsMatch[1]!);
      } else if (pullMatch) {
        this.#followPull(ws, pullMatch[1]!);
      } else {
        this.#subscribeStats(ws, sessionId);
      }
    });
  }

  /** Counts an upgrade from `address` against its rate; false once the window's quota is spent. */
  #takeUpgrade(address: string): boolean {
    const now = Date.now();
    if (now - this.#upgradeWindowStart >= this.#options.config.rateWindowMs) {
      this.#upgrades = new Map();
      this.#upgradeWindowStart = now;
    }
    const used = this.#upgrades.get(address) ?? 0;
    if (used >= this.#options.config.upgradeRatePerIp) return false;
    this.#upgrades.set(address, used + 1);
    return true;
  }

  #attachTerminal(
    ws: WebSocket,
    sessionId: string,
    containerId: string,
    terminalParam: string,
    query: URLSearchParams,
    mode: AttachMode | null,
  ): void {
    this.#counts.terminal++;
    ws.once('close', () => this.#counts.terminal--);
    try {
      if (!/^\d{1,6}$/.test(terminalParam))
        throw new MdockerError('NOT_FOUND', `no such terminal: ${terminalParam.slice(0, 16)}`);
      const size = {
        ...sizeParam(query, 'cols'),
        ...sizeParam(query, 'rows'),
      };
      const sink = {
        send: (data: Buffer | string) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(data);
        },
        close: (code: number, reason: string) => {
          ws.close(code, closeReason(reason));
          // A socket paused for input must read again to see the peer's closing frame;
          // what it reads meanwhile goes nowhere (the terminal has let go of the client).
          ws.resume();
        },
        pauseInput: () => ws.pause(),
        resumeInput: () => ws.resume(),
      };
      const attachment =
        mode === null
          ? this.#options.playground.attachTerminal(sessionId, containerId, Number(terminalParam), sink, size)
          : this.#options.classes.attachAsTeacher(containerId, Number(terminalParam), sink, mode);
      ws.on('message', (data: RawData, isBinary: boolean) => attachment.receive(toBuffer(data), isBinary));
      ws.once('close', () => attachment.detach());
    } catch (err) {
      closeWithError(ws, toMdockerError(err));
    }
  }

  #subscribeStats(ws: WebSocket, sessionId: string): void {
    this.#counts.stats++;
    const unsubscribe = this.#options.playground.subscribeStats(sessionId, {
      send: (message: StatsServerMessage) => {
        if (ws.readyState !== WebSocket.OPEN) return;
        if (message.type === 'sample' && ws.bufferedAmount > STATS_BACKLOG_BYTES) return;
        ws.send(JSON.stringify(message));
      },
    });
    const notice = this.#options.node?.notice();
    if (notice?.state === 'draining' || notice?.state === 'stopping') {
      const message: StatsServerMessage = { type: 'node', node: notice };
      ws.send(JSON.stringify(message));
    }
    // The stats stream is one-way; anything the client sends is ignored.
    ws.once('close', () => {
      this.#counts.stats--;
      unsubscribe();
    });
  }

  #subscribeClass(ws: WebSocket, classId: string): void {
    this.#counts.classEvents++;
    ws.once('close', () => this.#counts.classEvents--);
    try {
      const unsubscribe = this.#options.classes.subscribe(classId, {
        send: (message: ClassEventMessage) => {
          if (ws.readyState !== WebSocket.OPEN) return;
          const droppable = message.type === 'sample' || message.type === 'screen' || message.type === 'input';
          if (droppable && ws.bufferedAmount > EVENTS_BACKLOG_BYTES) return;
          ws.send(JSON.stringify(message));
        },
        close: () => ws.close(WS_CLOSE.NORMAL, 'class ended'),
      });
      const notice = this.#options.node?.notice();
      if (notice?.state === 'draining' || notice?.state === 'stopping') {
        const message: ClassEventMessage = { type: 'node', node: notice };
        ws.send(JSON.stringify(message));
      }
      // One-way, as the stats stream.
      ws.once('close', unsubscribe);
    } catch (err) {
      closeWithError(ws, toMdockerError(err));
    }
  }

  /** A pull's progress, one-way; closed normally once the pull has ended. */
  #followPull(ws: WebSocket, pullId: string): void {
    try {
      const stop = this.#options.images!.watchPull(
        pullId,
        (message: ImagePullMessage) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
        },
        () => ws.close(WS_CLOSE.NORMAL, 'pull ended'),
      );
      ws.once('close', stop);
    } catch (err) {
      closeWithError(ws, toMdockerError(err));
    }
  }

  #ping(): void {
    for (const client of this.#wss.clients as Set<Tracked>) {
      // A socket paused for input has its pong unread behind the input; the terminal
      // reads it again or closes it within its stall timeout.
      if (client.alive === false && !client.isPaused) {
        client.terminate();
        continue;
      }
      client.alive = false;
      client.ping();
    }
  }
}

function sizeParam(query: URLSearchParams, name: 'cols' | 'rows'): { cols?: number } | { rows?: number } {
  const value = query.get(name);
  if (value === null || !/^\d{1,5}$/.test(value)) return {};
  return { [name]: Number(value) };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function closeWithError(ws: WebSocket, err: MdockerError): void {
  const message: TerminalServerMessage = { type: 'error', code: err.code, message: err.message };
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  ws.close(wsCloseCodeFor(err.code), closeReason(err.message));
}

/** An HTTP answer on the raw socket: the handshake never happens. */
function rejectUpgrade(socket: Duplex, err: MdockerError): void {
  const status = httpStatusFor(err.code);
  const body = JSON.stringify(errorJson(err));
  const reasons: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    421: 'Misdirected Request',
    429: 'Too Many Requests',
  };
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reasons[status] ?? 'Error'}\r\n` +
        'Connection: close\r\n' +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        '\r\n' +
        body,
    );
  }
  socket.destroy();
}
