/**
 * A playground server on real containers for a root test, in this process: a state root
 * and a data directory of its own, both removed when it closes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { pino } from 'pino';
import { resolveServeConfig, type ServeOptions } from '../../src/http/config.js';
import { startServer, type RunningServer } from '../../src/http/server.js';

export interface RealServer {
  server: RunningServer;
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
