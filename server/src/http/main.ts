/**
 * `mdocker serve`'s own command line: the CLI loads this module only for `serve`, so the
 * other verbs never load the HTTP layer. Every flag also reads MDOCKER_<NAME>.
 */
import { Command, Option } from 'commander';
import { SERVE_OPTIONS, resolveServeConfig, type ServeOptions } from './config.js';
import { startServer } from './server.js';

export async function serveFromArgs(args: string[]): Promise<void> {
  const serve = new Command('mdocker serve')
    .description('serve the playground (API, WebSockets and the web UI); every flag also reads MDOCKER_<NAME>')
    .configureOutput({ outputError: (str, write) => write(`mdocker serve: ${str.replace(/^error: /, '')}`) });
  for (const option of SERVE_OPTIONS) {
    serve.addOption(new Option(option.flag, `${option.description} (default: ${option.defaultText})`).env(option.env));
  }
  serve.parse(args, { from: 'user' });
  await startServer(resolveServeConfig(serve.opts<ServeOptions>()));
}
