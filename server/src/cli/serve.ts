/** `mdocker serve [OPTIONS]`: hands its arguments to the server's entry, loaded only now. */
import type { Command } from 'commander';

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
      const { serveFromArgs } = await import('../http/main.js');
      await serveFromArgs(args);
    });
}
