/**
 * The server's caps on what a session may ask for: how many containers and terminals,
 * the largest limits, and the limits given when a request names none. A refusal says
 * which cap and its value.
 */
import { MdockerError } from '../runtime/errors.js';
import { formatBytes, type Limits } from '../runtime/units.js';
import type { PlaygroundConfig } from './config.js';

type CapsConfig = Pick<
  PlaygroundConfig,
  | 'maxContainersPerSession'
  | 'maxContainersPerAddress'
  | 'maxExecs'
  | 'maxExecsPerAddress'
  | 'maxContainers'
  | 'maxTerminalsPerContainer'
  | 'maxMemoryBytes'
  | 'maxCpus'
  | 'maxPidsLimit'
  | 'defaultMemoryBytes'
  | 'defaultCpus'
  | 'defaultPidsLimit'
>;

function capError(
  cap: string,
  flag: string,
  limit: number | string,
  message: string,
  extra: Record<string, unknown> = {},
): MdockerError {
  return new MdockerError('LIMIT_EXCEEDED', `${message} (this server's cap, ${flag} ${limit})`, {
    cap,
    limit,
    ...extra,
  });
}

export function checkContainerCounts(
  config: CapsConfig,
  sessionCount: number,
  totalCount: number,
  addressCount: number,
): void {
  if (sessionCount >= config.maxContainersPerSession) {
    throw capError(
      'containersPerSession',
      '--max-containers-per-session',
      config.maxContainersPerSession,
      `you already have ${sessionCount} containers, the most allowed: delete one first`,
    );
  }
  // Sessions are free to make: the client's address carries a cap of its own.
  if (addressCount >= config.maxContainersPerAddress) {
    throw capError(
      'containersPerAddress',
      '--max-containers-per-address',
      config.maxContainersPerAddress,
      `your address already has ${addressCount} containers, the most allowed: delete one first`,
    );
  }
  if (totalCount >= config.maxContainers) {
    throw capError('containers', '--max-containers', config.maxContainers, 'the server is full: try again later');
  }
}

/** Execs running at once: on the whole server, and from one client address. */
export function checkExecCounts(config: CapsConfig, running: number, fromAddress: number): void {
  if (fromAddress >= config.maxExecsPerAddress) {
    throw capError(
      'execsPerAddress',
      '--max-execs-per-address',
      config.maxExecsPerAddress,
      `${fromAddress} execs from your address are running, the most allowed: wait for one to finish`,
    );
  }
  if (running >= config.maxExecs) {
    throw capError('execs', '--max-execs', config.maxExecs, `${running} execs are running: try again shortly`);
  }
}

export function checkTerminalCount(config: CapsConfig, count: number): void {
  if (count >= config.maxTerminalsPerContainer) {
    throw capError(
      'terminalsPerContainer',
      '--max-terminals-per-container',
      config.maxTerminalsPerContainer,
      `this container already has ${count} terminals, the most allowed: close one first`,
    );
  }
}

/** Checks the limits given against the caps; absent ones are left absent. */
export function checkLimits(config: CapsConfig, limits: Partial<Limits>): void {
  const { memoryBytes, cpus, pidsLimit } = limits;
  if (config.maxMemoryBytes !== null) {
    if (memoryBytes === null)
      throw capError('memory', '--max-memory', formatBytes(config.maxMemoryBytes), 'a memory limit is required', {
        maxBytes: config.maxMemoryBytes,
      });
    if (memoryBytes !== undefined && memoryBytes > config.maxMemoryBytes) {
      throw capError(
        'memory',
        '--max-memory',
        formatBytes(config.maxMemoryBytes),
        `memory ${formatBytes(memoryBytes)} is more than allowed`,
        {
          maxBytes: config.maxMemoryBytes,
          requestedBytes: memoryBytes,
        },
      );
    }
  }
  if (config.maxCpus !== null) {
    if (cpus === null)
      throw capError('cpus', '--max-cpus', config.maxCpus, 'a CPU limit is required', { max: config.maxCpus });
    if (cpus !== undefined && cpus > config.maxCpus) {
      throw capError('cpus', '--max-cpus', config.maxCpus, `cpus ${cpus} is more than allowed`, {
        max: config.maxCpus,
        requested: cpus,
      });
    }
  }
  if (config.maxPidsLimit !== null) {
    if (pidsLimit === null)
      throw capError('pidsLimit', '--max-pids-limit', config.maxPidsLimit, 'a pids limit is required', {
        max: config.maxPidsLimit,
      });
    if (pidsLimit !== undefined && pidsLimit > config.maxPidsLimit) {
      throw capError(
        'pidsLimit',
        '--max-pids-limit',
        config.maxPidsLimit,
        `pids limit ${pidsLimit} is more than allowed`,
        {
          max: config.maxPidsLimit,
          requested: pidsLimit,
        },
      );
    }
  }
}

/** The limits a new container gets: what was asked for, else the defaults; then capped. */
export function resolveCreateLimits(config: CapsConfig, requested: Limits): Limits {
  const limits: Limits = {
    memoryBytes: requested.memoryBytes ?? config.defaultMemoryBytes,
    cpus: requested.cpus ?? config.defaultCpus,
    pidsLimit: requested.pidsLimit ?? config.defaultPidsLimit,
  };
  checkLimits(config, limits);
  return limits;
}
