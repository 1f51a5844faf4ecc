import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SERVE_NODE_FLAGS, missingServeFlags } from '../src/cli/serve.js';

test("serve asks Node for its young generation's size, unless Node was started with one", () => {
  assert.deepEqual(SERVE_NODE_FLAGS, ['--max-semi-space-size=64']);
  // What the command's shebang and `node main.js serve` give it: none.
  assert.deepEqual(missingServeFlags([]), ['--max-semi-space-size=64']);
  assert.deepEqual(missingServeFlags(['--enable-source-maps'], '--trace-warnings'), ['--max-semi-space-size=64']);
  // npm start, the systemd unit, the Dockerfile, the bench: already there.
  assert.deepEqual(missingServeFlags(['--max-semi-space-size=64']), []);
  // Someone's own value is theirs, however they spell it or wherever they put it.
  assert.deepEqual(missingServeFlags(['--max-semi-space-size=32']), []);
  assert.deepEqual(missingServeFlags(['--max_semi_space_size=128']), []);
  assert.deepEqual(missingServeFlags([], '--inspect  --max-semi-space-size=16'), []);
  // A flag that merely starts with the name is another flag.
  assert.deepEqual(missingServeFlags(['--max-semi-space-size-x=1']), ['--max-semi-space-size=64']);
});
