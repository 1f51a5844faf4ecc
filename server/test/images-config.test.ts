/**
 * The pure parts of images: references, registry challenges, how an image's config and a
 * run's flags combine, users resolved in an image's accounts, zstd frame headers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ZstdFrameWalker } from '../src/runtime/images/decompress.js';
import type { RunConfig } from '../src/runtime/images/oci.js';
import { familiarName, formatReference, isLoopbackRegistry, parseReference } from '../src/runtime/images/reference.js';
import { parseChallenge } from '../src/runtime/images/registry.js';
import { mergeEnv, runSettings } from '../src/runtime/images/run-config.js';
import { entryComponents, isFileCapability, paxXattrs } from '../src/runtime/images/unpack.js';
import { resolveUser } from '../src/runtime/images/user.js';

describe('image references', () => {
  it('normalizes as Docker does', () => {
    assert.equal(formatReference(parseReference('busybox')), 'docker.io/library/busybox:latest');
    assert.equal(formatReference(parseReference('team/app:1.2')), 'docker.io/team/app:1.2');
    assert.equal(formatReference(parseReference('127.0.0.1:5000/a/b')), '127.0.0.1:5000/a/b:latest');
    assert.equal(formatReference(parseReference('localhost/app')), 'localhost/app:latest');
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseReference(`ghcr.io/x/y@${digest}`), {
      registry: 'ghcr.io',
      repository: 'x/y',
      tag: null,
      digest,
    });
    assert.equal(familiarName(parseReference('busybox')), 'busybox');
    assert.equal(familiarName(parseReference('host:1/a')), 'host:1/a');
  });

  it('refuses what is not a reference: paths, uppercase, bad tags and digests', () => {
    for (const bad of [
      '',
      '/etc/passwd',
      '../x',
      'a/../b',
      'UPPER',
      'a:b c',
      'a@sha256:xyz',
      'a//b',
      'host:99999/a',
      'a:',
    ]) {
      assert.throws(() => parseReference(bad), /invalid reference/, bad);
    }
  });

  it('knows the loopback registries that may speak plain HTTP', () => {
    assert.ok(isLoopbackRegistry('127.0.0.1:5000'));
    assert.ok(isLoopbackRegistry('localhost:5000'));
    assert.ok(!isLoopbackRegistry('registry.example:5000'));
    assert.ok(!isLoopbackRegistry('10.0.0.1:5000'));
  });
});

describe('registry challenges', () => {
  it('parses a bearer challenge', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
      ),
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
      },
    );
    assert.equal(parseChallenge('Basic realm="x"').scheme, 'basic');
  });
});

describe('run settings from an image config', () => {
  const config: RunConfig = {
    entrypoint: ['/entry'],
    cmd: ['default'],
    env: ['A=1', 'B=2', 'EMPTYKEY'],
    workdir: '/app',
    user: '',
    exposedPorts: [],
  };

  it('joins Entrypoint and Cmd; a command replaces Cmd; --entrypoint resets Cmd', async () => {
    assert.deepEqual((await runSettings(config, {}, [])).cmd, ['/entry', 'default']);
    assert.deepEqual((await runSettings(config, { cmd: ['x'] }, [])).cmd, ['/entry', 'x']);
    assert.deepEqual((await runSettings(config, { entrypoint: ['/other'] }, [])).cmd, ['/other']);
    assert.deepEqual((await runSettings(config, { entrypoint: [], cmd: ['/bin/ls'] }, [])).cmd, ['/bin/ls']);
    await assert.rejects(runSettings({ ...config, entrypoint: [], cmd: [] }, {}, []), /no command specified/);
  });

  it('puts -e over the image Env, and -w over WorkingDir', async () => {
    const settings = await runSettings(config, { env: ['B=3', 'C=4'], workdir: '/w' }, []);
    assert.deepEqual(settings.env, ['A=1', 'B=3', 'C=4']);
    assert.equal(settings.workdir, '/w');
    assert.equal((await runSettings(config, {}, [])).workdir, '/app');
    assert.deepEqual(mergeEnv(['A=1'], ['A=2']), ['A=2']);
  });
});

describe('users in an image', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\nbob:x:1001:1002:Bob:/home/bob:/bin/sh\n';
  const group = 'root:x:0:\nstaff:x:50:\nwheel:x:10:alice,bob\nbig:x:70000:carol\n';

  it('resolves names and numbers as Docker does', () => {
    assert.deepEqual(resolveUser('bob', passwd, group), { uid: 1001, gid: 1002, home: '/home/bob', groups: [10] });
    assert.deepEqual(resolveUser('bob:staff', passwd, group), {
      uid: 1001,
      gid: 50,
      home: '/home/bob',
      groups: [10],
    });
    assert.deepEqual(resolveUser('1001', passwd, group), { uid: 1001, gid: 1002, home: '/home/bob', groups: [10] });
    assert.deepEqual(resolveUser('4242:7', passwd, group), { uid: 4242, gid: 7, home: '/', groups: [] });
    assert.throws(() => resolveUser('alice', passwd, group), /unable to find user alice/);
    assert.throws(() => resolveUser('bob:nogroup', passwd, group), /unable to find group nogroup/);
    assert.throws(() => resolveUser('70000', passwd, group), /must be 0\.\.65535/);
  });

  it('adds --group-add by name or gid, once each, and refuses a gid over 65535', () => {
    assert.deepEqual(resolveUser('bob', passwd, group, ['staff', '10', '7']).groups, [10, 50, 7]);
    assert.throws(() => resolveUser('bob', passwd, group, ['big']), /group big \(gid 70000\) of user bob lies outside/);
    assert.throws(() => resolveUser('root', passwd, group, ['nope']), /unable to find group nope/);
  });
});

describe('layer entry names', () => {
  it('makes names relative and refuses ..', () => {
    assert.deepEqual(entryComponents('/etc//passwd'), ['etc', 'passwd']);
    assert.deepEqual(entryComponents('./'), []);
    assert.throws(() => entryComponents('a/../../b'), /climbs out/);
  });
});

describe('pax xattr records', () => {
  const record = (key: string, value: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    return Buffer.concat([Buffer.from(String(length)), body]);
  };
  // CAP_SETUID (bit 7) is the byte 0x80, which a UTF-8 decode would mangle.
  const setuidEp = Buffer.from([1, 0, 0, 2, 0x80, 0, 0, 0, ...new Array<number>(12).fill(0)]);

  it('keeps the raw bytes of SCHILY.xattr values and ignores other records', () => {
    const header = Buffer.concat([
      record('path', Buffer.from('bin/x')),
      record('SCHILY.xattr.security.capability', setuidEp),
      record('SCHILY.xattr.user.a', Buffer.from('b=c')),
    ]);
    const xattrs = paxXattrs(header);
    assert.deepEqual([...xattrs.keys()], ['security.capability', 'user.a']);
    assert.deepEqual(xattrs.get('security.capability'), setuidEp);
    assert.equal(xattrs.get('user.a')?.toString(), 'b=c');
    assert.equal(paxXattrs(Buffer.from('99 SCHILY.xattr.a=b\n')).size, 0, 'a length past the end stops');
  });

  it('takes v2 and v3 file capabilities only', () => {
    assert.equal(isFileCapability(setuidEp), true);
    assert.equal(
      isFileCapability(Buffer.concat([Buffer.from([1, 0, 0, 3]), setuidEp.subarray(4), Buffer.alloc(4)])),
      true,
    );
    assert.equal(isFileCapability(setuidEp.subarray(0, 12)), false, 'v1 or short');
    assert.equal(isFileCapability(Buffer.concat([Buffer.from([1, 0, 0, 3]), setuidEp.subarray(4)])), false);
    assert.equal(isFileCapability(Buffer.concat([Buffer.from([3, 0, 0, 2]), setuidEp.subarray(4)])), false);
  });
});

describe('zstd frames', () => {
  it('refuses a window over the limit and a truncated stream', () => {
    assert.throws(() => new ZstdFrameWalker().walk(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8])), /window/);
    const walker = new ZstdFrameWalker();
    walker.walk(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    assert.throws(() => walker.finish(), /truncated/);
    assert.throws(() => new ZstdFrameWalker().walk(Buffer.from([1, 2, 3, 4])), /not a zstd stream/);
  });
});
