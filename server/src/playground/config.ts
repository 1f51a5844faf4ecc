/** The playground's settings: caps, defaults, reaping, terminals, stats, the warm pool. */
export interface PlaygroundConfig {
  maxContainersPerSession: number;
  maxContainersPerAddress: number;
  /** execs running at once, on the server and per client address */
  maxExecs: number;
  maxExecsPerAddress: number;
  maxContainers: number;
  maxTerminalsPerContainer: number;
  maxMemoryBytes: number | null;
  maxCpus: number | null;
  maxPidsLimit: number | null;
  defaultImage: string;
  defaultMemoryBytes: number | null;
  defaultCpus: number | null;
  defaultPidsLimit: number | null;
  /** 0: never */
  idleTimeoutMs: number;
  /** 0: never */
  maxLifetimeMs: number;
  /** how long a session's network outlives its last container, for the next one (0: not at all) */
  networkGraceMs: number;
  execDefaultTimeoutMs: number;
  execMaxTimeoutMs: number;
  execMaxOutputBytes: number;
  scrollbackLines: number;
  flowStallTimeoutMs: number;
  statsIntervalMs: number;
  statsHistorySamples: number;
  warmPool: number;
  /** recordings and other kept data: `<dataDir>/recordings/<container id>/` */
  dataDir: string;
  /** per terminal; output past it is not recorded (a marker says so) */
  recordingMaxBytes: number;
  /** how long recordings of a class outlive its end (and a container's outside a class) */
  recordingRetentionMs: number;
  maxClasses: number;
  maxStudentsPerClass: number;
  /** sessions' and classes' networks reach public addresses through NAT (runtime/networks.ts) */
  networkEgress: boolean;
}

/** The counters the playground feeds; the HTTP layer's Prometheus registry has them. */
export interface PlaygroundMetrics {
  readonly createSeconds: { observe(labels: { outcome: string }, seconds: number): void };
  readonly bytesStreamed: { inc(labels: { direction: string }, bytes: number): void };
  readonly containersRemoved: { inc(labels: { reason: string }): void };
}
