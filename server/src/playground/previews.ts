/**
 * The previews' registry: which TCP ports each container listens on (checked on every
 * stats sample while its owner's page has the stats stream open, pushed to that page when
 * the set changes), the unguessable token that names each container's port in a preview
 * host, and how many preview connections each container has open. The proxying itself
 * is HTTP's (http/preview.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { PortJson } from '../protocol/index.js';
import { listeningTcpPorts, type ProcessRef } from '../runtime/native.js';
import type { Playground } from './playground.js';

/** 128 bits: a preview host cannot be guessed, even at many requests a second for years. */
const TOKEN_BYTES = 16;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, no padding: a DNS label's characters (16 bytes: 26). */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export function newPreviewToken(): string {
  return base32(randomBytes(TOKEN_BYTES));
}

/** The shape of a token in a host name (newPreviewToken's). */
export const PREVIEW_TOKEN_PATTERN = /^[a-z2-7]{26}$/;

export interface PreviewsOptions {
  playground: Playground;
  logger: Logger;
  /** The preview URL of a token and port (the HTTP layer knows the domain and port). */
  urlOf: (token: string, port: number) => string;
  /** Preview connections (HTTP requests in flight and WebSockets) open at once per container. */
  maxConnectionsPerContainer: number;
}

/** What a preview host names: a running container's init and the port. */
export interface PreviewTarget {
  containerId: string;
  port: number;
  init: ProcessRef;
}

interface ContainerPreviews {
  /** port → token; kept when the port closes, so a link stays the same when it reopens */
  tokens: Map<number, string>;
  /** the listening ports last seen, ascending */
  ports: number[];
  connections: number;
}

export class Previews {
  readonly #playground: Playground;
  readonly #logger: Logger;
  readonly #urlOf: (token: string, port: number) => string;
  readonly #maxConnections: number;
  readonly #containers = new Map<string, ContainerPreviews>();
  readonly #byToken = new Map<string, { containerId: string; port: number }>();

  constructor(options: PreviewsOptions) {
    this.#playground = options.playground;
    this.#logger = options.logger;
    this.#urlOf = options.urlOf;
    this.#maxConnections = options.maxConnectionsPerContainer;
    this.#playground.observe({
      message: (sessionId, message) => {
        if (message.type === 'sample') this.#scan(sessionId, message.containerId);
      },
      input: () => undefined,
      connection: () => undefined,
      removed: (_sessionId, containerId) => this.#forget(containerId),
    });
  }

  /**
   * The container's listening ports with their preview URLs, read now. The caller has
   * checked that the session may read the container (the routes' readerOf).
   */
  ports(sessionId: string, containerId: string): PortJson[] {
    const init = this.#playground.initOf(containerId);
    if (init === null) return [];
    const ports = listeningTcpPorts(init);
    if (ports === null) return [];
    this.#update(sessionId, containerId, ports);
    return this.#json(containerId, ports);
  }

  /** The container and port a preview host's token names, while the container runs. */
  resolve(token: string, port: number): PreviewTarget | null {
    const named = this.#byToken.get(token);
    if (named === undefined || named.port !== port) return null;
    const init = this.#playground.initOf(named.containerId);
    return init === null ? null : { containerId: named.containerId, port, init };
  }

  /** Counts one preview connection; the release function, or null at the container's cap. */
  acquire(containerId: string): (() => void) | null {
    const state = this.#containers.get(containerId);
    if (!state || state.connections >= this.#maxConnections) return null;
    state.connections++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      state.connections--;
    };
  }

  get maxConnectionsPerContainer(): number {
    return this.#maxConnections;
  }

  #scan(sessionId: string, containerId: string): void {
    // The warm pool's containers have no owner to tell yet, and a page that is not
    // connected hears nothing: it reads the ports when it shows the container again.
    if (sessionId === '' || !this.#playground.isConnected(sessionId)) return;
    const init = this.#playground.initOf(containerId);
    if (init === null) return;
    let ports: number[] | null;
    try {
      ports = listeningTcpPorts(init);
    } catch (err) {
      this.#logger.warn({ err, containerId }, 'reading the listening ports failed');
      return;
    }
    if (ports !== null) this.#update(sessionId, containerId, ports);
  }

  #update(sessionId: string, containerId: string, ports: number[]): void {
    // A container removed while its ports were read is not brought back.
    if (this.#playground.initOf(containerId) === null) return;
    const state = this.#state(containerId);
    if (ports.length === state.ports.length && ports.every((port, i) => port === state.ports[i])) return;
    state.ports = ports;
    this.#playground.tell(sessionId, { type: 'ports', containerId, ports: this.#json(containerId, ports) });
  }

  #json(containerId: string, ports: number[]): PortJson[] {
    const state = this.#state(containerId);
    return ports.map((port) => {
      let token = state.tokens.get(port);
      if (token === undefined) {
        token = newPreviewToken();
        state.tokens.set(port, token);
        this.#byToken.set(token, { containerId, port });
      }
      return { port, protocol: 'tcp', previewUrl: this.#urlOf(token, port) };
    });
  }

  #state(containerId: string): ContainerPreviews {
    let state = this.#containers.get(containerId);
    if (!state) {
      state = { tokens: new Map(), ports: [], connections: 0 };
      this.#containers.set(containerId, state);
    }
    return state;
  }

  /** Its tokens die with it: a stale preview host answers 404 from now on. */
  #forget(containerId: string): void {
    const state = this.#containers.get(containerId);
    if (!state) return;
    for (const token of state.tokens.values()) this.#byToken.delete(token);
    this.#containers.delete(containerId);
  }
}
