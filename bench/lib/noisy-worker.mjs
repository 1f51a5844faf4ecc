// The noisy neighbours' browsers, on a thread of their own so that reading their output
// does not delay the keystroke probe's event loop: each attaches to its container's
// terminal and acknowledges output as the web page does.
import { parentPort, workerData } from 'node:worker_threads';
import { Browser } from './server.mjs';

const terminals = [];
for (const { id, cookie } of workerData.neighbours) {
  const browser = new Browser(new URL(workerData.url));
  browser.cookie = cookie;
  const term = browser.attach(id);
  term.keepText = false;
  term.answerCursorQueries = false;
  terminals.push(term);
}
await Promise.allSettled(terminals.map((t) => t.opened));
parentPort.postMessage({ attached: terminals.filter((t) => t.closed === null).length });

parentPort.on('message', (msg) => {
  if (msg === 'report') {
    parentPort.postMessage({
      bytes: terminals.reduce((sum, t) => sum + t.bytes, 0),
      frames: terminals.reduce((sum, t) => sum + t.frames, 0),
      attached: terminals.filter((t) => t.closed === null).length,
    });
  } else if (msg === 'stop') {
    for (const t of terminals) t.terminate();
    parentPort.close();
  }
});
