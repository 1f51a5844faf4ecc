/**
 * A child that the addon's spawner thread is starting (pty.ts, process.ts, helper.ts): its
 * pid once known, a promise of it, and signals that wait for it. A signal sent before the
 * pid is known is sent once it is; none after the reap (the pid may be another process's
 * by then) or after a spawn that failed (never to -1).
 */
export class SpawningChild {
  #pid = -1;
  #reaped = false;
  #pending: (NodeJS.Signals | string)[] = [];
  readonly spawned: Promise<number>;
  #resolve!: (pid: number) => void;
  #reject!: (err: Error) => void;

  constructor() {
    this.spawned = new Promise<number>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The exit tells of a failed spawn too: nobody has to wait for this.
    this.spawned.catch(() => undefined);
  }

  /** -1 until spawned, and for good if the spawn failed. */
  get pid(): number {
    return this.#pid;
  }

  /** The spawner's answer; false when there is no child (the caller reports its exit). */
  settle(error: Error | null, pid: number | null): boolean {
    if (error !== null || pid === null) {
      this.#reaped = true;
      this.#pending = [];
      this.#reject(error ?? new Error('spawn failed'));
      return false;
    }
    this.#pid = pid;
    this.#resolve(pid);
    const pending = this.#pending;
    this.#pending = [];
    for (const signal of pending) this.kill(signal);
    return true;
  }

  /** The child was reaped: no signal is sent from now on. */
  reaped(): void {
    this.#reaped = true;
  }

  kill(signal: NodeJS.Signals | string): void {
    if (this.#reaped) return;
    if (this.#pid > 0) process.kill(this.#pid, signal);
    else this.#pending.push(signal);
  }
}
