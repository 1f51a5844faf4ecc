/** `mdocker stats`: live CPU %, memory, pids and kernel events from the containers' cgroups. */
import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { shortId, table } from './format.js';
import { openRuntime } from './common.js';

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description("display a live stream of containers' resource usage, read from their cgroups")
    .argument('[containers...]')
    .option('--no-stream', 'print one sample and exit')
    .action(async (names: string[], flags: { stream: boolean }) => {
      const { formatBytes } = await import('../runtime/units.js');
      const { cpuPercent } = await import('../runtime/cgroups/driver.js');
      const runtime = await openRuntime();
      const pick = async () =>
        names.length > 0
          ? Promise.all(names.map((n) => runtime.get(n)))
          : (await runtime.list()).filter((c) => c.status === 'running');
      const previous = new Map<string, { usageUsec: number; atMs: number }>();
      const sample = async () => {
        const rows: string[][] = [];
        for (const c of await pick()) {
          if (c.status !== 'running') continue;
          const s = await runtime.stats(c.id).catch(() => null);
          if (!s) continue;
          const atMs = performance.now();
          const cpu = cpuPercent(previous.get(c.id) ?? null, s.cpuUsageUsec, atMs);
          previous.set(c.id, { usageUsec: s.cpuUsageUsec, atMs });
          rows.push([
            shortId(c.id),
            c.name,
            `${cpu.toFixed(2)}%`,
            `${formatBytes(s.memoryBytes)} / ${s.memoryLimitBytes === null ? 'unlimited' : formatBytes(s.memoryLimitBytes)}`,
            s.memoryLimitBytes ? `${((s.memoryBytes / s.memoryLimitBytes) * 100).toFixed(2)}%` : '--',
            s.pidsLimit === null ? String(s.pids) : `${s.pids} / ${s.pidsLimit}`,
            String(s.pidsLimitHits),
            String(s.oomKills),
            String(s.cpuThrottledPeriods),
          ]);
        }
        return table(
          [
            'CONTAINER ID',
            'NAME',
            'CPU %',
            'MEM USAGE / LIMIT',
            'MEM %',
            'PIDS',
            'PIDS LIMIT HITS',
            'OOM KILLS',
            'THROTTLED',
          ],
          rows,
        );
      };
      await sample();
      await sleep(500);
      if (!flags.stream) {
        process.stdout.write(await sample());
        return;
      }
      process.on('SIGINT', () => process.exit(0));
      for (;;) {
        const text = await sample();
        process.stdout.write('\x1b[2J\x1b[H' + text);
        await sleep(1000);
      }
    });
}
