import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomHex } from '../src/runtime/random.js';

test('randomHex gives twice as many lowercase hex characters as bytes, and no two alike', () => {
  for (const bytes of [1, 3, 16, 64]) assert.match(randomHex(bytes), new RegExp(`^[0-9a-f]{${bytes * 2}}$`));
  const seen = new Set(Array.from({ length: 1000 }, () => randomHex(16)));
  assert.equal(seen.size, 1000);
  // Every hex digit turns up among 32 000 characters: the bytes are not stuck.
  assert.equal(new Set([...seen].join('')).size, 16);
});
