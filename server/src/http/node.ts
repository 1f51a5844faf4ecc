/**
 * This server as one node of a cluster sees it: whether it takes new sessions
 * (readiness), how much room it has (headroom, HAProxy's weight for it) and its drain.
 */
import { readFileSync } from 'node:fs';
import { totalmem, freemem } from 'node:os';
import type { Logger } from 'pino';
import { MdockerError } from '../runtime/errors.js';
import type { HeadroomJson, NodeNoticeJson, NodeState, ReadyJson } from '../protocol/index.js';

/** Below this much available memory the node takes no new sessions. */
export const LOW_MEMORY_BYTES = 128 * 1024 * 1024;

/** How often a drain looks whether its containers are all gone already. */
const DRAIN_CHECK_MS = 500;

/** /proc/meminfo is read at most this often (HAProxy polls every second, per proxy). */
const MEMORY_CACHE_MS = 500;

export interface MemoryReading {
  availableBytes: number;
  totalBytes: number;
}

export interface ClusterNodeOptions {
  id: string;
  maxContainers: number;
  drainGraceMs: number;
  /** containers of this node (the warm pool's included: they take slots) */
  containerCount: () => number;
  /** containers that belong to users: a drain ends early once none is left */
  userContainerCount: () => number;
  /** tells every user's page (the stats stream's `node` message) */
  tell: (notice: NodeNoticeJson) => void;
  /** the drain is over: remove the containers and stop */
  onDrained: () => void;
  logger: Logger;
  memory?: () => MemoryReading;
}

/** MemAvailable, as the kernel estimates it (page cache that can go counts as free). */
export function hostMemory(): MemoryReading {
  try {
    const text = readFileSync('/proc/meminfo', 'utf8');
    const kib = (name: string): number | null => {
      const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
      return match ? Number(match[1]) * 1024 : null;
    };
    const available = kib('MemAvailable');
    const total = kib('MemTotal');
    if (available !== null && total !== null) return { availableBytes: available, totalBytes: total };
  } catch {
    // not Linux's /proc: Node's own figures
  }
  return { availableBytes: freemem(), totalBytes: totalmem() };
}

export class ClusterNode {
  readonly id: string;
  readonly #options: ClusterNodeOptions;
  #state: NodeState = 'starting';
  #deadlineMs: number | null = null;
  #timer: NodeJS.Timeout | null = null;
  #memory: { at: number; reading: MemoryReading } | null = null;

  constructor(options: ClusterNodeOptions) {
    this.id = options.id;
    this.#options = options;
  }

  get state(): NodeState {
    return this.#state;
  }

  /** New sessions, classes and joins are welcome (not starting, draining or stopping). */
  get acceptsNewSessions(): boolean {
    return this.#state === 'serving';
  }

  /** The server listens and has reaped the previous run's leftovers. */
  serving(): void {
    if (this.#state === 'starting') this.#state = 'serving';
  }

  /** The server is stopping (SIGTERM without a grace, or the end of a drain). */
  stopping(): void {
    this.#clearTimer();
    this.#state = 'stopping';
  }

  readiness(): ReadyJson {
    const containers = this.#options.containerCount();
    const maxContainers = this.#options.maxContainers;
    const memory = this.#readMemory();
    const reasons: string[] = [];
    if (this.#state === 'starting') reasons.push('starting');
    if (this.#state === 'draining' || this.#state === 'stopping') reasons.push('draining');
    if (containers >= maxContainers) reasons.push('at-capacity');
    if (memory.availableBytes < LOW_MEMORY_BYTES) reasons.push('low-memory');
    const freeSlots = Math.max(0, maxContainers - containers);
    const ready = reasons.length === 0;
    // Slots and memory both bound how many more users fit; their product keeps the slots'
    // proportions between nodes of one host (same memory share) and shrinks a node whose
    // host is short of memory. At least 1 while ready: weight 0 is HAProxy's drain.
    const share = (freeSlots / maxContainers) * Math.min(1, memory.availableBytes / memory.totalBytes);
    const headroom: HeadroomJson = {
      containers,
      maxContainers,
      freeSlots,
      memoryAvailableBytes: memory.availableBytes,
      memoryTotalBytes: memory.totalBytes,
      weightPercent: ready ? Math.max(1, Math.min(100, Math.round(share * 100))) : 0,
    };
    return { ready, node: this.id, state: this.#state, reasons, headroom };
  }

  /**
   * HAProxy's agent-check answer (one line): `ready N%` sets the server's weight to N%
   * of its configured weight; `drain` sends it no new sessions while the ones that stick
   * to it (its cookie) still reach it. Never `down`: that would cut its users off.
   */
  agentLine(): string {
    const ready = this.readiness();
    return ready.ready ? `ready ${ready.headroom.weightPercent}%\n` : 'drain\n';
  }

  /**
   * Starts (or shortens) a drain: no new sessions, every user told when their containers
   * go, then `onDrained` at the deadline or once no user container is left. A drain never
   * lengthens: a second call with a later deadline keeps the first.
   */
  drain(graceMs: number = this.#options.drainGraceMs): NodeNoticeJson {
    if (this.#state === 'stopping') return this.notice();
    const deadlineMs = Date.now() + graceMs;
    if (this.#state === 'draining' && this.#deadlineMs !== null && this.#deadlineMs <= deadlineMs) return this.notice();
    this.#state = 'draining';
    this.#deadlineMs = deadlineMs;
    const notice = this.notice();
    this.#options.logger.info(
      { event: 'node.draining', node: this.id, deadline: notice.deadline, containers: this.#options.containerCount() },
      'draining: no new sessions',
    );
    this.#options.tell(notice);
    this.#clearTimer();
    this.#timer = setInterval(() => this.#check(), DRAIN_CHECK_MS);
    this.#timer.unref();
    this.#check();
    return notice;
  }

  /** Ends a drain before its deadline: the node takes new sessions again. */
  undrain(): NodeNoticeJson {
    if (this.#state === 'stopping') throw new MdockerError('CONFLICT', 'the node is stopping already');
    if (this.#state !== 'draining') return this.notice();
    this.#clearTimer();
    this.#state = 'serving';
    this.#deadlineMs = null;
    const notice = this.notice();
    this.#options.logger.info({ event: 'node.undrained', node: this.id }, 'serving again');
    this.#options.tell(notice);
    return notice;
  }

  /** The drain's deadline is now (a second SIGTERM). */
  finishDrain(): void {
    if (this.#state === 'draining') this.#finish();
  }

  notice(): NodeNoticeJson {
    const deadline = this.#state === 'draining' && this.#deadlineMs !== null ? new Date(this.#deadlineMs) : null;
    let message: string;
    if (this.#state === 'draining' && deadline !== null) {
      const minutes = Math.max(0, Math.ceil((deadline.getTime() - Date.now()) / 60_000));
      message =
        `This node (${this.id}) is shutting down for maintenance: your containers will be removed ` +
        `in ${minutes <= 1 ? 'about a minute' : `${minutes} minutes`}. Save what you need; afterwards, ` +
        'reload the page to start again on another node.';
    } else if (this.#state === 'stopping') {
      message = `This node (${this.id}) is stopping: reload the page to start again on another node.`;
    } else {
      message = `This node (${this.id}) is serving.`;
    }
    return { node: this.id, state: this.#state, deadline: deadline?.toISOString() ?? null, message };
  }

  close(): void {
    this.#clearTimer();
  }

  #check(): void {
    if (this.#state !== 'draining' || this.#deadlineMs === null) return;
    if (Date.now() >= this.#deadlineMs || this.#options.userContainerCount() === 0) this.#finish();
  }

  #finish(): void {
    this.#clearTimer();
    this.#state = 'stopping';
    this.#options.logger.info({ event: 'node.drained', node: this.id }, 'drain over: removing containers');
    this.#options.onDrained();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #readMemory(): MemoryReading {
    const now = Date.now();
    if (this.#memory === null || now - this.#memory.at > MEMORY_CACHE_MS) {
      this.#memory = { at: now, reading: (this.#options.memory ?? hostMemory)() };
    }
    return this.#memory.reading;
  }
}
