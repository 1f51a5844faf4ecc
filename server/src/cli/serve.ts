/** `mdocker serve [OPTIONS]`: hands its arguments to the server's entry, loaded only now. */
import type { Command } from 'commander';
import { replaceProcess } from '../runtime/native.js';

/**
 * Node's flags for the server. --max-semi-space-size=64 (MiB; Node 20's default is 16) is
 * its young generation: a class's terminals printing at once allocate fast, and with the
 * default size V8's scavenges stall every keystroke's echo behind them (bench/PROFILE.md
 * §2). They are not in the command's shebang, where every verb would pay for them (a
 * short command 5-20 ms), and V8 takes them only when the heap is made: a serve started
 * without them runs Node again with them, by an exec in this process (the same pid, and
 * no parent left in front of the server). `npm start`, the systemd unit and the Dockerfile
 * pass them and skip that.
 */
export const SERVE_NODE_FLAGS = ['--max-semi-space-size=64'];

/**
 * Which of SERVE_NODE_FLAGS Node was not started with, by name: a value of one's own counts
 * (`--max-semi-space-size=32`), and V8 takes `_` for `-` (`--max_semi_space_size=64`).
 */
export function missingServeFlags(execArgv: readonly string[], nodeOptions = ''): string[] {
  const name = (flag: string): string => flag.split('=')[0]!.replace(/_/g, '-');
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(name));
  return SERVE_NODE_FLAGS.filter((flag) => !given.has(name(flag)));
}

/**
 * This process again with the SERVE_NODE_FLAGS it lacks; returns when it has them all, or
 * when the exec failed (Node's binary replaced or gone): then it serves without them.
 */
function restartWithServeFlags(): void {
  const missing = missingServeFlags(process.execArgv, process.env['NODE_OPTIONS']);
  if (missing.length === 0) return;
  const [node, script, ...args] = process.argv;
  try {
    replaceProcess(process.execPath, [node!, ...process.execArgv, ...missing, script!, ...args]);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    process.stderr.write(
      `mdocker serve: could not restart Node with ${missing.join(' ')} (${reason}); serving without\n`,
    );
  }
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the playground (API, WebSockets and the web UI); `mdocker serve --help` lists its options')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .passThroughOptions()
    .argument('[options...]')
    .action(async (args: string[]) => {
      restartWithServeFlags();
      const { serveFromArgs } = await import('../http/main.js');
      await serveFromArgs(args);
    });
}
