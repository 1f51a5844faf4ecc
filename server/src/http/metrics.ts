/**
 * The server's Prometheus metrics: one registry per server (tests run several), gauges
 * read from the live state at scrape time, counters and a histogram fed as things happen.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ContainerState } from '../protocol/index.js';

export interface MetricsSource {
  containersByState(): Record<ContainerState, number>;
  terminals(): number;
  webSocketClients(): { terminal: number; stats: number };
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly bytesStreamed: Counter<'direction'>;
  readonly createSeconds: Histogram<'outcome'>;
  readonly containersRemoved: Counter<'reason'>;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mdocker_' });
    new Gauge({
      name: 'mdocker_containers',
      help: 'Containers of this server by state',
      labelNames: ['state'] as const,
      registers,
      collect() {
        for (const [state, count] of Object.entries(source.containersByState())) this.set({ state }, count);
      },
    });
    new Gauge({
      name: 'mdocker_terminals',
      help: 'Open terminals (ptys), container init terminals included',
      registers,
      collect() {
        this.set(source.terminals());
      },
    });
    new Gauge({
      name: 'mdocker_websocket_clients',
      help: 'Connected WebSocket clients by endpoint',
      labelNames: ['endpoint'] as const,
      registers,
      collect() {
        const clients = source.webSocketClients();
        this.set({ endpoint: 'terminal' }, clients.terminal);
        this.set({ endpoint: 'stats' }, clients.stats);
      },
    });
    this.bytesStreamed = new Counter({
      name: 'mdocker_terminal_bytes_total',
      help: 'Terminal bytes streamed: out of ptys (to the screen and clients), in from clients',
      labelNames: ['direction'] as const,
      registers,
    });
    this.createSeconds = new Histogram({
      name: 'mdocker_container_create_seconds',
      help: 'Time from a create request to a running container (or its failure)',
      labelNames: ['outcome'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.containersRemoved = new Counter({
      name: 'mdocker_containers_removed_total',
      help: 'Containers removed, by why',
      labelNames: ['reason'] as const,
      registers,
    });
  }
}
