/**
 * Run by escape-web.test.ts as a child process, so that what it buffers is not counted
 * in the server's memory: attaches a terminal and pushes input as fast as the socket
 * takes it, up to a total or until the server closes it. Prints one JSON line:
 * `{ "flushedBytes": N, "code": C }` (bytes handed to the kernel; the close code or null).
 *
 *   node input-flooder.js <ws url> <cookie> <origin> <total bytes>
 */
import { WebSocket } from 'ws';

const [url, cookie, origin, totalArg] = process.argv.slice(2);
if (url === undefined || cookie === undefined || origin === undefined || totalArg === undefined) {
  throw new Error('usage: input-flooder <ws url> <cookie> <origin> <total bytes>');
}
const totalBytes = Number(totalArg);
/** Under the server's default 64 KiB maxPayload. */
const CHUNK = Buffer.alloc(32 * 1024, 0x78);
/** Sends not yet flushed to the kernel: the flooder's own memory stays small. */
const MAX_IN_FLIGHT = 32;

const ws = new WebSocket(url, { headers: { cookie }, origin });
let queuedBytes = 0;
let flushedBytes = 0;
let inFlight = 0;
let done = false;

function report(code: number | null): void {
  if (done) return;
  done = true;
  process.stdout.write(`${JSON.stringify({ flushedBytes, code })}\n`);
  process.exit(0);
}

function pump(): void {
  while (inFlight < MAX_IN_FLIGHT && queuedBytes < totalBytes && ws.readyState === WebSocket.OPEN) {
    inFlight++;
    queuedBytes += CHUNK.length;
    ws.send(CHUNK, (err) => {
      inFlight--;
      if (err) return;
      flushedBytes += CHUNK.length;
      if (flushedBytes >= totalBytes) setTimeout(() => report(null), 2000);
      else pump();
    });
  }
}

ws.on('message', (_data, isBinary) => {
  // The screen frame follows `attached`: the terminal is ready for input.
  if (isBinary) pump();
});
ws.on('close', (code) => report(code));
ws.on('error', () => undefined);
