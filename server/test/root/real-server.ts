/**
 * Playground servers on real containers for root tests. In this process: a state root
 * and a data directory of its own, both removed when it closes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { pino } from 'pino';
import { resolveServeConfig, type ServeOptions } from '../../src/http/config.js';
import { startServer, type RunningServer } from '../../src/http/server.js';
import { cliPath } from './helpers.js';

export interface RealServer {
  server: RunningServer;
  /** its state root (removed by close) */
  stateRoot: string;
  /** http://127.0.0.1:PORT/ */
  base: string;
  close(): Promise<void>;
}

export async function startRealServer(name: string, options: ServeOptions = {}): Promise<RealServer> {
  const stateRoot = mkdtempSync(`/run/mdocker-${name}-`);
  const cleanUp = (): void => {
    rmSync(stateRoot, { recursive: true, force: true });
    rmSync(`${stateRoot}-data`, { recursive: true, force: true });
  };
  try {
    const config = resolveServeConfig(
      { port: 0, stateRoot, dataDir: `${stateRoot}-data`, webDir: '/nonexistent', statsInterval: '250ms', ...options },
      {},
    );
    const server = await startServer(config, {
      logger: pino({ level: 'silent' }),
      handleSignals: false,
      printUrl: false,
    });
    return {
      server,
      stateRoot,
      base: `http://127.0.0.1:${server.port}/`,
      close: async () => {
        await server.close();
        cleanUp();
      },
    };
  } catch (err) {
    cleanUp();
    throw err;
  }
}

export interface SpawnedServer {
  child: ChildProcess;
  /** the URL it printed */
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `mdocker serve` as a process of its own (for tests that kill it), with generous caps,
 * on `stateRoot` and its `-data` sibling. It goes into `children` at once, so the caller
 * can end it even when it never serves.
 */
export async function spawnServer(
  stateRoot: string,
  children: ChildProcess[],
  extra: string[] = [],
): Promise<SpawnedServer> {
  const child = spawn(
    process.execPath,
    [
      cliPath,
      'serve',
      '--port',
      '0',
      '--state-root',
      stateRoot,
      '--data-dir',
      `${stateRoot}-data`,
      '--web-dir',
      '/nonexistent',
      '--log-level',
      'warn',
      '--max-containers-per-session',
      '200',
      '--max-containers',
      '500',
      '--create-rate-per-session',
      '10000',
      '--create-rate-per-ip',
      '10000',
      '--api-rate-per-ip',
      '100000',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /mdocker playground: (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`the server exited before serving:\n${output}`)));
    setTimeout(() => reject(new Error(`the server did not start:\n${output}`)), 20_000).unref();
  });
  return { child, url, exited };
}
