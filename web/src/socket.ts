/**
 * A WebSocket that comes back: after a network drop or a server restart it reconnects
 * with exponential backoff and jitter (so a classroom of browsers does not reconnect in
 * lockstep), immediately when the browser reports it is online again, and never after
 * its owner closed it or decided the closing was final.
 */

export type SocketState = 'connecting' | 'open' | 'waiting' | 'closed';

export interface ReconnectingSocketOptions {
  url: string | (() => string);
  /** Called on every (re)connection; the server starts each one afresh. */
  onOpen?: (socket: WebSocket) => void;
  onMessage: (event: MessageEvent) => void;
  /** Called on every close; return false to stop reconnecting (say, the terminal ended). */
  shouldReconnect?: (event: CloseEvent) => boolean;
  onStateChange?: (
    state: SocketState,
    detail: { attempt: number; retryInMs?: number; closeEvent?: CloseEvent },
  ) => void;
  /** Runs before each reconnection attempt, e.g. a plain HTTP request that renews the
   * session cookie: a restarted server refuses upgrades from sessions it does not know,
   * and only an HTTP response can set a new cookie. Failures are ignored. */
  beforeReconnect?: () => Promise<unknown>;
  minDelayMs?: number;
  maxDelayMs?: number;
}

/** Close codes after which trying again cannot help. 1008: policy (origin, session);
 * 4400-4499: the server's "client error" range (not found, forbidden, bad request). */
export function isFinalClose(event: CloseEvent): boolean {
  if (event.code === 1000 || event.code === 1008) return true;
  return event.code >= 4400 && event.code < 4500;
}

export class ReconnectingSocket {
  private socket: WebSocket | null = null;
  private retryTimer: number | null = null;
  private attempt = 0;
  private closedByOwner = false;
  private currentState: SocketState = 'connecting';
  private readonly onlineListener = (): void => this.retryNow();

  constructor(private readonly options: ReconnectingSocketOptions) {
    window.addEventListener('online', this.onlineListener);
    this.connect();
  }

  get state(): SocketState {
    return this.currentState;
  }

  /** Sends when connected; returns false (and drops the data) otherwise. */
  send(data: string | ArrayBufferLike | ArrayBufferView): boolean {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(data as string | ArrayBuffer);
    return true;
  }

  /** Bytes queued in the browser but not yet handed to the network. */
  get bufferedAmount(): number {
    return this.socket?.bufferedAmount ?? 0;
  }

  close(code = 1000, reason = ''): void {
    this.closedByOwner = true;
    window.removeEventListener('online', this.onlineListener);
    if (this.retryTimer !== null) window.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(code, reason);
    this.setState('closed');
  }

  /** Skips the remaining backoff, e.g. when the user asks to reconnect. */
  retryNow(): void {
    if (this.closedByOwner || this.currentState !== 'waiting') return;
    if (this.retryTimer !== null) window.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    this.setState('connecting');
    if (this.options.beforeReconnect) {
      try {
        await this.options.beforeReconnect();
      } catch {
        /* the connection attempt below fails too, and backs off */
      }
    }
    if (this.closedByOwner || this.socket !== null) return;
    this.connect();
  }

  private connect(): void {
    const url = typeof this.options.url === 'function' ? this.options.url() : this.options.url;
    const socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    this.setState('connecting');
    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      this.attempt = 0;
      this.setState('open');
      this.options.onOpen?.(socket);
    });
    socket.addEventListener('message', (event) => {
      if (this.socket !== socket) return;
      this.options.onMessage(event);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const again = !this.closedByOwner && (this.options.shouldReconnect?.(event) ?? !isFinalClose(event));
      if (!again) {
        this.closedByOwner = true;
        window.removeEventListener('online', this.onlineListener);
        this.setState('closed', { closeEvent: event });
        return;
      }
      this.scheduleRetry(event);
    });
    // An 'error' event is always followed by 'close', which decides what happens next.
  }

  private scheduleRetry(closeEvent: CloseEvent): void {
    const min = this.options.minDelayMs ?? 500;
    const max = this.options.maxDelayMs ?? 10_000;
    const ceiling = Math.min(max, min * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt += 1;
    this.setState('waiting', { closeEvent, retryInMs: delay });
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = null;
      void this.reconnect();
    }, delay);
  }

  private setState(state: SocketState, detail: { retryInMs?: number; closeEvent?: CloseEvent } = {}): void {
    this.currentState = state;
    this.options.onStateChange?.(state, { attempt: this.attempt, ...detail });
  }
}
