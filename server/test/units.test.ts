import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMdockerError } from '../src/runtime/errors.js';
import {
  cmdSchema,
  containerNameSchema,
  containerSpecInputSchema,
  envEntrySchema,
  hostnameSchema,
  limitsInputSchema,
  limitsSchema,
  limitsUpdateSchema,
  validateInput,
} from '../src/runtime/spec.js';
import { formatBytes, parseCpus, parseLimits, parseMemoryBytes, parsePidsLimit } from '../src/runtime/units.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function assertInvalid(run: () => unknown, message: string | RegExp): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(isMdockerError(err), `expected an MdockerError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('parseMemoryBytes', () => {
  it('reads docker units as binary multiples, case-insensitively', () => {
    const cases: [string | number, number][] = [
      ['64m', 64 * MiB],
      ['64M', 64 * MiB],
      ['64mb', 64 * MiB],
      ['64MiB', 64 * MiB],
      ['1g', GiB],
      ['1.5g', 1.5 * GiB],
      ['8192k', 8 * MiB],
      ['1t', 1024 * GiB],
      ['7340032b', 7 * MiB],
      ['7340032', 7 * MiB],
      [7 * MiB, 7 * MiB],
      [' 6m ', 6 * MiB],
      ['6.0001m', Math.floor(6.0001 * MiB)],
    ];
    for (const [input, bytes] of cases) assert.equal(parseMemoryBytes(input), bytes, String(input));
  });

  it('rejects malformed input with one line naming the value', () => {
    assertInvalid(
      () => parseMemoryBytes('abc'),
      'invalid memory "abc": expected bytes or a number with b, k, m, g or t',
    );
    for (const input of ['', 'm', '64x', '-64m', '1.2.3g', '64 mm', '0x40m', 'NaN', 'Infinity', '64m!', '.5g']) {
      assertInvalid(() => parseMemoryBytes(input), /^invalid memory ".*": expected bytes/);
    }
    assertInvalid(() => parseMemoryBytes(Number.NaN), /^invalid memory "NaN"/);
    assertInvalid(() => parseMemoryBytes(1.5 * MiB + 0.5), /whole bytes/);
  });

  it("rejects zero, negatives, the absurd and less than docker's 6 MiB minimum", () => {
    assertInvalid(() => parseMemoryBytes('0'), 'invalid memory "0": must be greater than zero');
    assertInvalid(() => parseMemoryBytes(-MiB), 'invalid memory "-1048576": must be greater than zero');
    assertInvalid(() => parseMemoryBytes('5m'), 'invalid memory "5m": minimum memory limit allowed is 6MB');
    assertInvalid(() => parseMemoryBytes(6 * MiB - 1), /minimum memory limit allowed is 6MB/);
    assertInvalid(() => parseMemoryBytes('9000t'), 'invalid memory "9000t": too large');
    assertInvalid(() => parseMemoryBytes(2 ** 53), /too large/);
    assertInvalid(() => parseMemoryBytes(Number.POSITIVE_INFINITY), /whole bytes/);
  });
});

describe('parseCpus', () => {
  it('reads fractions of CPUs from strings and numbers', () => {
    assert.equal(parseCpus('0.5', 4), 0.5);
    assert.equal(parseCpus(1.5, 4), 1.5);
    assert.equal(parseCpus('2', 4), 2);
    assert.equal(parseCpus('.25', 4), 0.25);
    assert.equal(parseCpus('0.01', 4), 0.01);
  });

  it('rejects malformed, zero, tiny and more CPUs than the host has, like docker', () => {
    assertInvalid(() => parseCpus('abc', 4), 'invalid cpus "abc": expected a number of CPUs such as 0.5 or 2');
    assertInvalid(() => parseCpus('', 4), /expected a number of CPUs/);
    assertInvalid(() => parseCpus('-1', 4), /expected a number of CPUs/);
    assertInvalid(() => parseCpus(Number.NaN, 4), /expected a number of CPUs/);
    assertInvalid(() => parseCpus('0', 4), 'invalid cpus "0": must be greater than zero');
    assertInvalid(
      () => parseCpus('0.001', 4),
      'invalid cpus "0.001": range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available',
    );
    assertInvalid(() => parseCpus(5, 4), /range of CPUs is from 0.01 to 4.00/);
    assertInvalid(() => parseCpus(2, 1), /as there is only 1 CPU available/);
    assertInvalid(() => parseCpus('1e999', 4), 'invalid cpus "1e999": too large');
  });
});

describe('parsePidsLimit', () => {
  it('accepts positive whole numbers up to the kernel maximum', () => {
    assert.equal(parsePidsLimit(100), 100);
    assert.equal(parsePidsLimit('64'), 64);
    assert.equal(parsePidsLimit(4194304), 4194304);
  });

  it('rejects the rest', () => {
    assertInvalid(() => parsePidsLimit(0), 'invalid pids limit "0": must be greater than zero');
    assertInvalid(() => parsePidsLimit(-1), 'invalid pids limit "-1": must be greater than zero');
    assertInvalid(() => parsePidsLimit(1.5), 'invalid pids limit "1.5": expected a whole number');
    assertInvalid(() => parsePidsLimit('ten'), /expected a whole number/);
    assertInvalid(() => parsePidsLimit(Number.NaN), /expected a whole number/);
    assertInvalid(() => parsePidsLimit(4194305), 'invalid pids limit "4194305": the kernel allows at most 4194304');
  });
});

describe('parseLimits', () => {
  it('turns absent fields into null and parses the rest', () => {
    assert.deepEqual(parseLimits({}), { memoryBytes: null, cpus: null, pidsLimit: null });
    assert.deepEqual(parseLimits({ memory: '64m', cpus: '0.5', pidsLimit: 50 }, 2), {
      memoryBytes: 64 * MiB,
      cpus: 0.5,
      pidsLimit: 50,
    });
  });
});

describe('formatBytes', () => {
  it('prints like docker stats', () => {
    assert.equal(formatBytes(0), '0B');
    assert.equal(formatBytes(512), '512B');
    assert.equal(formatBytes(1024), '1KiB');
    assert.equal(formatBytes(12.3 * MiB), '12.3MiB');
    assert.equal(formatBytes(2.805 * MiB), '2.805MiB');
    assert.equal(formatBytes(1.9453 * GiB), '1.945GiB');
    assert.equal(formatBytes(64 * MiB), '64MiB');
    assert.equal(formatBytes(1023 * KiB + 1000), '1024KiB');
  });
});

describe('spec schemas', () => {
  it('accepts docker container names and refuses others', () => {
    for (const name of ['web', 'Web_1', 'a.b-c', '0abc'])
      assert.equal(containerNameSchema.safeParse(name).success, true, name);
    for (const name of ['', '-web', '.hidden', 'a/b', 'a b', 'é', 'x'.repeat(129)]) {
      assert.equal(containerNameSchema.safeParse(name).success, false, name);
    }
  });

  it('accepts RFC 1123 hostnames', () => {
    for (const hostname of ['box', 'my-box', 'a.b.c', 'x'.repeat(63), `${'a'.repeat(31)}.${'b'.repeat(32)}`]) {
      assert.equal(hostnameSchema.safeParse(hostname).success, true, hostname);
    }
    for (const hostname of [
      '',
      '-box',
      'box-',
      'a..b',
      'under_score',
      'x'.repeat(64),
      `${'a'.repeat(32)}.${'b'.repeat(32)}`,
      'dot.',
    ]) {
      assert.equal(hostnameSchema.safeParse(hostname).success, false, hostname);
    }
  });

  it('accepts KEY=VALUE environment entries', () => {
    for (const entry of ['A=1', 'PATH=/bin:/usr/bin', 'EMPTY=', '_X=a=b'])
      assert.equal(envEntrySchema.safeParse(entry).success, true, entry);
    for (const entry of ['A', '=1', '1A=x', 'A B=1', 'A=\0'])
      assert.equal(envEntrySchema.safeParse(entry).success, false, entry);
  });

  it('accepts non-empty commands without NUL', () => {
    assert.equal(cmdSchema.safeParse(['/bin/sh', '-c', '']).success, true);
    assert.equal(cmdSchema.safeParse([]).success, false);
    assert.equal(cmdSchema.safeParse(['']).success, false);
    assert.equal(cmdSchema.safeParse(['sh', 'a\0b']).success, false);
    assert.equal(cmdSchema.safeParse('sh').success, false);
  });

  it('limitsInputSchema is strict', () => {
    assert.equal(limitsInputSchema.safeParse({ memory: '64m', cpus: 1, pidsLimit: '10' }).success, true);
    assert.equal(limitsInputSchema.safeParse({ memory: '64m', swap: '1g' }).success, false);
  });

  it('validateInput turns schema failures into one INVALID_ARGUMENT line', () => {
    assert.deepEqual(validateInput(limitsSchema, { memory: '64m' }), {
      memoryBytes: 64 * MiB,
      cpus: null,
      pidsLimit: null,
    });
    assertInvalid(
      () => validateInput(limitsSchema, { memory: 'lots' }),
      'invalid memory "lots": expected bytes or a number with b, k, m, g or t',
    );
    assertInvalid(() => validateInput(limitsSchema, { memory: '64m', swap: '1g' }), 'unknown field "swap"');
    assertInvalid(() => validateInput(limitsSchema, { pidsLimit: true }), /^invalid pidsLimit: /);
    assertInvalid(
      () => validateInput(limitsUpdateSchema, {}),
      'invalid update: expected at least one of memory, cpus, pidsLimit',
    );
    assert.deepEqual(validateInput(limitsUpdateSchema, { pidsLimit: 5 }), { pidsLimit: 5 });
  });

  it('containerSpecInputSchema gathers the limits and checks every field', () => {
    assert.deepEqual(
      validateInput(containerSpecInputSchema, { image: 'busybox', hostname: 'box', cmd: ['sh'], memory: '64m' }),
      {
        image: 'busybox',
        hostname: 'box',
        cmd: ['sh'],
        limits: { memoryBytes: 64 * MiB, cpus: null, pidsLimit: null },
      },
    );
    assertInvalid(() => validateInput(containerSpecInputSchema, { image: '../etc' }), /^invalid image name/);
    assertInvalid(
      () => validateInput(containerSpecInputSchema, { hostname: 'bad_host' }),
      /^invalid hostname "bad_host"/,
    );
    assertInvalid(
      () => validateInput(containerSpecInputSchema, { env: ['NOEQUALS'] }),
      /^invalid environment entry "NOEQUALS"/,
    );
    assertInvalid(
      () => validateInput(containerSpecInputSchema, { cmd: [] }),
      'invalid command: expected at least the program to run',
    );
  });
});
