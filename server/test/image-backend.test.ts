import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exposedTcpPorts, shellOf } from '../src/playground/image-backend.js';

describe("the playground's reading of an image's config", () => {
  it("takes the Cmd as the terminals' shell only when it is a shell, alone or with -l/-i, and no Entrypoint", () => {
    assert.deepEqual(shellOf(undefined, ['bash']), ['bash']);
    assert.deepEqual(shellOf(null, ['/bin/bash', '-l']), ['/bin/bash', '-l']);
    assert.deepEqual(shellOf([], ['/bin/sh']), ['/bin/sh']);
    assert.equal(shellOf(undefined, ['nginx', '-g', 'daemon off;']), null);
    assert.equal(shellOf(undefined, ['bash', '-c', 'rm -rf /']), null);
    assert.equal(shellOf(['/entrypoint.sh'], ['bash']), null);
    assert.equal(shellOf(undefined, ['/usr/bin/python3']), null);
    assert.equal(shellOf(undefined, []), null);
    assert.equal(shellOf(undefined, undefined), null);
  });

  it("takes ExposedPorts' TCP ports, sorted, and nothing else", () => {
    const config = { config: { ExposedPorts: { '8080/tcp': {}, '53/udp': {}, '80': {}, '70000/tcp': {}, x: {} } } };
    assert.deepEqual(exposedTcpPorts(config as never), [80, 8080]);
  });
});
