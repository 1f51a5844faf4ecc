/**
 * The containers' state machine, in one place: created → running → exited → removed,
 * with why it was removed and its exit status. Runtime.start() feeds it from the
 * launcher's start and exit, Runtime.remove() from removals; owners only read it.
 */
import type { ContainerRecord } from './state.js';

/** Why a container was removed: it exited and was removed, or an owner's policy ended it. */
export type RemovalReason = 'exit' | 'kill' | 'idle' | 'lifetime' | 'shutdown';

export interface ContainerLifecycle {
  readonly record: ContainerRecord;
  status: 'created' | 'running' | 'exited' | 'removed';
  initPid: number | null;
  exitCode: number | null;
  finishedAt: string | null;
  /** Why it was removed, once it is. */
  removedReason: RemovalReason | null;
}

/** A removed container's lifecycle is kept this long, and at most this many of them. */
const REMOVED_RETENTION_MS = 60 * 60_000;
const MAX_REMOVED_KEPT = 1000;

export class Lifecycles {
  readonly #byId = new Map<string, ContainerLifecycle>();
  /** Removal times, oldest first. */
  readonly #removedAtMs = new Map<string, number>();

  /** Follows a launched container: running once its init is placed, exited when it ends. */
  track(
    record: ContainerRecord,
    started: Promise<ContainerRecord>,
    exited: Promise<{ code: number }>,
  ): ContainerLifecycle {
    const lifecycle: ContainerLifecycle = {
      record,
      status: 'created',
      initPid: null,
      exitCode: null,
      finishedAt: null,
      removedReason: null,
    };
    this.#byId.set(record.id, lifecycle);
    void started.then((placed) => {
      if (placed.init && lifecycle.status === 'created') {
        lifecycle.status = 'running';
        lifecycle.initPid = placed.init.pid;
      }
    });
    void exited.then(({ code }) => {
      if (lifecycle.status === 'removed') return;
      lifecycle.status = 'exited';
      lifecycle.exitCode = code;
      lifecycle.finishedAt = new Date().toISOString();
    });
    return lifecycle;
  }

  get(id: string): Readonly<ContainerLifecycle> | null {
    return this.#byId.get(id) ?? null;
  }

  removed(id: string, reason: RemovalReason): void {
    const lifecycle = this.#byId.get(id);
    if (lifecycle === undefined || lifecycle.status === 'removed') return;
    // Removed before its exit was recorded: it was killed (SIGKILL, as Docker reports it).
    lifecycle.exitCode ??= 137;
    lifecycle.finishedAt ??= new Date().toISOString();
    lifecycle.status = 'removed';
    lifecycle.removedReason = reason;
    const now = Date.now();
    this.#removedAtMs.set(id, now);
    for (const [oldId, atMs] of this.#removedAtMs) {
      if (now - atMs < REMOVED_RETENTION_MS && this.#removedAtMs.size <= MAX_REMOVED_KEPT) break;
      this.#removedAtMs.delete(oldId);
      this.#byId.delete(oldId);
    }
  }
}
