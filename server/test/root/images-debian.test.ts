/**
 * The debian image that `npm run build:images` makes (rootfs/build-debian.sh): the tools
 * the lessons use are there and run, and Debian's ping works for a user of the container
 * through its file capability. Skipped, with the reason, where the image was not built
 * (CI does not build it: mmdebstrap downloads from Debian and takes minutes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mdocker, mdockerSync, rootOnly } from './helpers.js';

function skipReason(): string | false {
  const root = rootOnly();
  if (root) return root;
  const images = mdockerSync(['images']);
  if (!/^debian\s+latest\s/m.test(images.stdout)) return 'the debian image is not built (npm run build:images)';
  return false;
}

describe('the debian image', { skip: skipReason() }, () => {
  it("has the lessons' tools: unshare, nsenter, lsns, ip, ps, ping, less, nano", async () => {
    const r = await mdocker(
      [
        'run',
        '--rm',
        'debian',
        'bash',
        '-c',
        'unshare --version; nsenter --version; lsns --version; ip -V; ps --version; ping -V | head -1; less --version | head -1; nano --version | head -1',
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    for (const tool of [/^unshare from util-linux/m, /^nsenter/m, /^lsns/m, /iproute2/, /procps-ng/, /iputils/]) {
      assert.match(r.stdout, tool);
    }
    assert.match(r.stdout, /^less \d+/m);
    assert.match(r.stdout, /GNU nano/);
  });

  it("pings as a user through ping's cap_net_raw once execve may grant it, and not under no_new_privs", async () => {
    const ping = ['ping', '-c', '1', '-W', '2', '127.0.0.1'];
    const granted = await mdocker(
      [
        'run',
        '--rm',
        '-u',
        'nobody',
        '--cap-add',
        'NET_RAW',
        '--security-opt',
        'no-new-privileges=false',
        'debian',
        ...ping,
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(granted.code, 0, granted.stdout + granted.stderr);
    assert.match(granted.stdout, /1 received/);
    const refused = await mdocker(['run', '--rm', '-u', 'nobody', '--cap-add', 'NET_RAW', 'debian', ...ping], {
      timeoutMs: 60_000,
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr + refused.stdout, /cap_net_raw|Operation not permitted/);
  });
});
