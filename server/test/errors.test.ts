// One error model from C to HTTP: the launcher's codes are the TypeScript side's codes,
// each has an HTTP status and a WebSocket close code, and a launcher's error keeps its
// code, errno and syscall on the way.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_STATUS, httpStatusFor } from '../src/http/errors.js';
import { parseLaunchError } from '../src/runtime/containers.js';
import { ERROR_CODES, launcherError } from '../src/runtime/errors.js';

// server/dist/test → the repository root.
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const launcherDir = join(repo, 'native/src/launcher');

function launcherCodes(): Map<string, string> {
  const header = readFileSync(join(launcherDir, 'error.h'), 'utf8');
  return new Map([...header.matchAll(/^#define (MD_E_\w+) "([A-Z_]+)"/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

describe('the error model', () => {
  it('knows every code the launcher can report, under the same name', () => {
    const codes = launcherCodes();
    assert.ok(codes.size >= 8, `error.h lists ${codes.size} codes`);
    for (const [macro, code] of codes) {
      assert.equal(macro, `MD_E_${code}`);
      assert.ok((ERROR_CODES as readonly string[]).includes(code), `${code} (error.h) is not an ErrorCode`);
    }
  });

  it('finds no error code spelt as a string in the launcher outside error.h', () => {
    for (const file of readdirSync(launcherDir).filter((name) => /\.[ch]$/.test(name) && name !== 'error.h')) {
      const source = readFileSync(join(launcherDir, file), 'utf8');
      const literal = /md_make_error_code \(\s*\w+,\s*"|sizeof \(err\S*code\), "[A-Z_]+"/.exec(source);
      assert.equal(literal, null, `${file}: ${literal?.[0] ?? ''}`);
    }
  });

  it('gives every code an HTTP status, bad input a 4xx', () => {
    for (const code of ERROR_CODES) assert.ok(ERROR_STATUS[code], code);
    assert.equal(httpStatusFor('INVALID_ARGUMENT'), 400);
    assert.equal(httpStatusFor('COMMAND_NOT_FOUND'), 400);
    assert.equal(httpStatusFor('CANNOT_EXECUTE'), 400);
    assert.equal(httpStatusFor('UNAVAILABLE'), 503);
    assert.equal(httpStatusFor('SYSCALL'), 500);
  });

  it("keeps the launcher's code, errno and syscall", () => {
    const parsed = parseLaunchError(
      '{"code":"SYSCALL","errno":22,"syscall":"pivot_root","message":"cannot pivot into the root"}\n',
    );
    assert.deepEqual(parsed, {
      code: 'SYSCALL',
      errno: 22,
      syscall: 'pivot_root',
      message: 'cannot pivot into the root',
    });
    const error = launcherError(parsed ?? { code: '', message: '' }, 'the container failed to start');
    assert.equal(error.code, 'SYSCALL');
    assert.equal(error.message, 'the container failed to start: cannot pivot into the root');
    assert.deepEqual(error.details, { launcherCode: 'SYSCALL', errno: 22, syscall: 'pivot_root' });
  });

  it('reads a code this side does not know as RUNTIME, keeping the original', () => {
    const error = launcherError({ code: 'SOMETHING_NEW', message: 'm' });
    assert.equal(error.code, 'RUNTIME');
    assert.equal(error.details?.['launcherCode'], 'SOMETHING_NEW');
  });

  it('drops an errno of 0 and an empty syscall (no system call failed)', () => {
    assert.deepEqual(parseLaunchError('{"code":"INVALID_ARGUMENT","errno":0,"syscall":"","message":"bad"}'), {
      code: 'INVALID_ARGUMENT',
      message: 'bad',
    });
  });
});
