#!/usr/bin/env node
/**
 * The `mdocker` command: Docker's verbs and flag names over the runtime library, one file per
 * verb (run.ts, exec.ts, ...), each thin:
 * parse, call the runtime, print. Heavy modules load inside the verb that needs them,
 * so `mdocker ps` does not pay for the server.
 */
import { Command } from 'commander';
import { toMdockerError, type MdockerError } from '../runtime/errors.js';
import { openRuntime } from './common.js';
import { registerCommit } from './commit.js';
import { registerCp } from './cp.js';
import { registerExec } from './exec.js';
import { registerImages } from './images.js';
import { registerInfo } from './info.js';
import { registerInspect } from './inspect.js';
import { registerKill } from './kill.js';
import { registerLoad } from './load.js';
import { registerLogin } from './login.js';
import { registerLogout } from './logout.js';
import { registerNetwork } from './network.js';
import { registerPs } from './ps.js';
import { registerPull } from './pull.js';
import { registerRm } from './rm.js';
import { registerRmi } from './rmi.js';
import { registerRun } from './run.js';
import { registerSave } from './save.js';
import { registerServe } from './serve.js';
import { registerStats } from './stats.js';
import { registerUpdate } from './update.js';

const program = new Command('mdocker')
  .description('a container runtime and a web container playground')
  .enablePositionalOptions()
  .showHelpAfterError(false)
  .configureOutput({ outputError: (str, write) => write(`mdocker: ${str.replace(/^error: /, '')}`) });

/** Each verb's registration, in the order `mdocker --help` lists them. */
const verbs = new Map<string, (program: Command) => void>([
  ['run', registerRun],
  ['exec', registerExec],
  ['cp', registerCp],
  ['ps', registerPs],
  ['stats', registerStats],
  ['update', registerUpdate],
  ['kill', registerKill],
  ['rm', registerRm],
  ['inspect', registerInspect],
  ['network', registerNetwork],
  ['images', registerImages],
  ['pull', registerPull],
  ['load', registerLoad],
  ['save', registerSave],
  ['commit', registerCommit],
  ['rmi', registerRmi],
  ['login', registerLogin],
  ['logout', registerLogout],
  ['info', (p) => registerInfo(p, () => openRuntime({ reap: false }))],
  ['serve', registerServe],
]);

// A known verb is registered alone: commander parses only its options, and building the
// other verbs' (each Option made and checked against the rest) would only slow its start.
// Anything else (no verb, --help, help, a typo commander suggests a verb for) sees them all.
const verb = verbs.get(process.argv[2] ?? '');
if (verb) verb(program);
else for (const register of verbs.values()) register(program);

function exitCodeFor(err: MdockerError, verb: string | undefined): number {
  // docker run reports its own failures as 125; other verbs as 1.
  return verb === 'run' || verb === 'exec' ? 125 : 1;
}

// No top-level await: the built command runs this file as a CommonJS bundle (code-cache.ts).
program.parseAsync(process.argv).catch((err: unknown) => {
  const e = toMdockerError(err);
  process.stderr.write(`mdocker: ${e.message}\n`);
  process.exitCode = exitCodeFor(e, process.argv[2]);
});
