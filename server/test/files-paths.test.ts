// The pure parsing behind files in and out of containers: `mdocker cp`'s arguments, the
// path a write makes, tar entry names, download names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCopyArg, parseCopyArgs } from '../src/cli/cp.js';
import { attachment, isFileUpload } from '../src/http/file-routes.js';
import { checkContainerPath, splitWritePath, tarEntryPath } from '../src/runtime/files.js';
import { MdockerError } from '../src/runtime/errors.js';

function invalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) => err instanceof MdockerError && err.code === 'INVALID_ARGUMENT' && pattern.test(err.message),
  );
}

describe('mdocker cp arguments', () => {
  it('reads CONTAINER:PATH, a host path and - as Docker does', () => {
    assert.deepEqual(parseCopyArg('web:/etc/passwd'), { kind: 'container', container: 'web', path: '/etc/passwd' });
    assert.deepEqual(parseCopyArg('0123abcd:tmp/x'), { kind: 'container', container: '0123abcd', path: 'tmp/x' });
    assert.deepEqual(parseCopyArg('web:/a:b'), { kind: 'container', container: 'web', path: '/a:b' });
    assert.deepEqual(parseCopyArg('-'), { kind: 'stdio' });
    assert.deepEqual(parseCopyArg('/tmp/a:b'), { kind: 'host', path: '/tmp/a:b' });
    assert.deepEqual(parseCopyArg('./a:b'), { kind: 'host', path: './a:b' });
    assert.deepEqual(parseCopyArg('dir/a:b'), { kind: 'host', path: 'dir/a:b' });
    assert.deepEqual(parseCopyArg('notes.txt'), { kind: 'host', path: 'notes.txt' });
  });

  it('refuses an empty container name or path with a one-line reason', () => {
    invalid(() => parseCopyArg(':/etc'), /missing container name/);
    invalid(() => parseCopyArg('web:'), /missing path after "web:"/);
    invalid(() => parseCopyArg(''), /empty path/);
  });

  it('needs exactly one container side; - only against a container', () => {
    assert.deepEqual(parseCopyArgs('web:/etc', '-').dest, { kind: 'stdio' });
    assert.deepEqual(parseCopyArgs('-', 'web:/tmp').src, { kind: 'stdio' });
    invalid(() => parseCopyArgs('a:/x', 'b:/y'), /between containers/);
    invalid(() => parseCopyArgs('/x', '/y'), /must be a container path/);
    invalid(() => parseCopyArgs('-', '/y'), /must be a container path/);
    invalid(() => parseCopyArgs('-', '-'), /must be a container path/);
  });
});

describe('container paths', () => {
  it('takes any path without NUL up to 4096 bytes, relative ones from the root', () => {
    assert.equal(checkContainerPath('../../../etc/passwd'), '../../../etc/passwd');
    invalid(() => checkContainerPath(''), /missing path/);
    invalid(() => checkContainerPath(undefined), /missing path/);
    invalid(() => checkContainerPath(['/a', '/b']), /missing path/);
    invalid(() => checkContainerPath('a\0b'), /NUL/);
    invalid(() => checkContainerPath('/' + 'a'.repeat(4096)), /4096/);
  });

  it('splits a write into its directory and a file name, refusing a path that names no file', () => {
    assert.deepEqual(splitWritePath('/tmp/x'), { dir: '/tmp', name: 'x' });
    assert.deepEqual(splitWritePath('x'), { dir: '/', name: 'x' });
    assert.deepEqual(splitWritePath('/x'), { dir: '/', name: 'x' });
    assert.deepEqual(splitWritePath('../../etc/x'), { dir: '../../etc', name: 'x' });
    invalid(() => splitWritePath('/tmp/'), /must end with a file name/);
    invalid(() => splitWritePath('/tmp/..'), /must end with a file name/);
    invalid(() => splitWritePath('.'), /must end with a file name/);
    invalid(() => splitWritePath('/' + 'n'.repeat(256)), /255/);
  });

  it('keeps tar entries below the destination', () => {
    assert.equal(tarEntryPath('./d/f'), 'd/f');
    assert.equal(tarEntryPath('/abs/f'), 'abs/f');
    assert.equal(tarEntryPath('d//e/./f'), 'd/e/f');
    assert.equal(tarEntryPath('./'), '');
    invalid(() => tarEntryPath('d/../../etc/passwd'), /leaves the destination/);
  });
});

describe('file routes', () => {
  it('names downloads with an ASCII fallback and the UTF-8 name', () => {
    assert.equal(attachment('notes.txt'), `attachment; filename="notes.txt"; filename*=UTF-8''notes.txt`);
    assert.equal(attachment('a"b\\é.txt'), `attachment; filename="a_b__.txt"; filename*=UTF-8''a%22b%5C%C3%A9.txt`);
  });

  it('knows the upload route, whose body no JSON parser may take', () => {
    assert.equal(isFileUpload({ method: 'PUT', path: '/api/containers/abc/files' }), true);
    assert.equal(isFileUpload({ method: 'GET', path: '/api/containers/abc/files' }), false);
    assert.equal(isFileUpload({ method: 'PUT', path: '/api/containers/abc' }), false);
  });
});
