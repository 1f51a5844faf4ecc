// The serve configuration (flags over environment over defaults, the token rule) and the
// one table from error codes to HTTP and WebSocket statuses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, MdockerError } from '../src/runtime/errors.js';
import {
  SERVE_OPTIONS,
  isLoopbackHost,
  parseDurationMs,
  parseSizeBytes,
  resolveServeConfig,
  serveOptionsFromEnv,
  serverUrl,
} from '../src/http/config.js';
import {
  ERROR_STATUS,
  closeReason,
  errorJson,
  fromBodyParserError,
  httpStatusFor,
  wsCloseCodeFor,
} from '../src/http/errors.js';
import { WS_CLOSE } from '../src/protocol/index.js';

function throwsInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) => err instanceof MdockerError && err.code === 'INVALID_ARGUMENT' && message.test(err.message),
  );
}

describe('resolveServeConfig', () => {
  it('defaults to loopback on 8080 without a token, with caps and defaults set', () => {
    const config = resolveServeConfig({}, {});
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 8080);
    assert.equal(config.token, null);
    assert.equal(config.maxContainersPerSession, 5);
    assert.equal(config.maxMemoryBytes, 1024 ** 3);
    assert.equal(config.defaultMemoryBytes, 256 * 1024 ** 2);
    assert.equal(config.defaultCpus, 0.5);
    assert.equal(config.defaultPidsLimit, 256);
    assert.equal(config.idleTimeoutMs, 30 * 60_000);
    assert.equal(config.maxLifetimeMs, 4 * 3_600_000);
    assert.equal(config.statsHistorySamples, 600, '10 minutes at 1 Hz');
    assert.equal(config.jsonBodyLimitBytes, 16 * 1024);
    assert.equal(config.wsMaxPayloadBytes, 64 * 1024);
    assert.equal(config.networkEgress, false);
  });

  it('takes --egress as a switch, and on/off words from MDOCKER_EGRESS', () => {
    assert.equal(resolveServeConfig({ egress: true }, {}).networkEgress, true);
    assert.equal(resolveServeConfig(serveOptionsFromEnv({ MDOCKER_EGRESS: 'on' }), {}).networkEgress, true);
    assert.equal(resolveServeConfig(serveOptionsFromEnv({ MDOCKER_EGRESS: '0' }), {}).networkEgress, false);
    assert.throws(
      () => resolveServeConfig(serveOptionsFromEnv({ MDOCKER_EGRESS: 'maybe' }), {}),
      (e) => e instanceof MdockerError && e.code === 'INVALID_ARGUMENT' && /--egress/.test(e.message),
    );
  });

  it('takes flags over MDOCKER_* variables over defaults', () => {
    const env = {
      MDOCKER_PORT: '9000',
      MDOCKER_MAX_MEMORY: '512m',
      MDOCKER_IDLE_TIMEOUT: '90s',
      MDOCKER_HOST: '127.0.0.2',
    };
    assert.deepEqual(serveOptionsFromEnv(env), {
      host: '127.0.0.2',
      port: '9000',
      maxMemory: '512m',
      idleTimeout: '90s',
    });
    const config = resolveServeConfig({ port: '9100' }, env);
    assert.equal(config.port, 9100);
    assert.equal(config.host, '127.0.0.2');
    assert.equal(config.maxMemoryBytes, 512 * 1024 ** 2);
    assert.equal(config.idleTimeoutMs, 90_000);
  });

  it('generates a token when bound beyond loopback, and keeps a given one', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'playground.example']) {
      const config = resolveServeConfig({ host }, {});
      assert.match(config.token ?? '', /^[A-Za-z0-9_-]{32}$/, host);
    }
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) {
      assert.equal(resolveServeConfig({ host }, {}).token, null, host);
    }
    assert.equal(resolveServeConfig({ host: '0.0.0.0', token: 'my-class-token' }, {}).token, 'my-class-token');
    assert.equal(resolveServeConfig({ token: 'loopback-but-wanted' }, {}).token, 'loopback-but-wanted');
    throwsInvalid(() => resolveServeConfig({ token: 'short' }, {}), /--token/);
    throwsInvalid(() => resolveServeConfig({ token: 'has spaces in it' }, {}), /--token/);
  });

  it('prints a URL a browser can open, with the token', () => {
    assert.equal(serverUrl({ host: '127.0.0.1', token: null }, 8080), 'http://127.0.0.1:8080/');
    assert.equal(serverUrl({ host: '0.0.0.0', token: 'abc-123_x' }, 8888), 'http://127.0.0.1:8888/?token=abc-123_x');
    assert.equal(serverUrl({ host: '::1', token: null }, 8080), 'http://[::1]:8080/');
  });

  it('names the flag that is wrong', () => {
    throwsInvalid(() => resolveServeConfig({ port: '70000' }, {}), /--port/);
    throwsInvalid(() => resolveServeConfig({ maxMemory: 'lots' }, {}), /--max-memory/);
    throwsInvalid(() => resolveServeConfig({ idleTimeout: 'soon' }, {}), /--idle-timeout/);
    throwsInvalid(() => resolveServeConfig({ logLevel: 'loud' }, {}), /--log-level/);
    throwsInvalid(() => resolveServeConfig({}, { MDOCKER_MAX_PIDS_LIMIT: '-3' }), /--max-pids-limit/);
    throwsInvalid(
      () => resolveServeConfig({ defaultMemory: '2g' }, {}),
      /--default-memory must be set and at most --max-memory/,
    );
    throwsInvalid(() => resolveServeConfig({ defaultPidsLimit: 'none' }, {}), /--default-pids-limit/);
  });

  it('allows no cap with "none", and then no default', () => {
    const config = resolveServeConfig({ maxMemory: 'none', defaultMemory: 'none' }, {});
    assert.equal(config.maxMemoryBytes, null);
    assert.equal(config.defaultMemoryBytes, null);
  });

  it('lowers the exec default timeout with a lower maximum', () => {
    assert.equal(resolveServeConfig({ execMaxTimeout: '5s' }, {}).execDefaultTimeoutMs, 5000);
    throwsInvalid(
      () => resolveServeConfig({ execMaxTimeout: '5s', execDefaultTimeout: '6s' }, {}),
      /--exec-default-timeout/,
    );
  });

  it('has one flag and one environment variable per option', () => {
    const flags = SERVE_OPTIONS.map((option) => option.flag.split(' ')[0]);
    const envs = SERVE_OPTIONS.map((option) => option.env);
    assert.equal(new Set(flags).size, flags.length);
    assert.equal(new Set(envs).size, envs.length);
    for (const option of SERVE_OPTIONS) {
      // commander turns --max-pids-limit into maxPidsLimit: the key must be that name.
      const camel = option.flag
        .split(' ')[0]!
        .slice(2)
        .replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
      assert.equal(camel, option.key);
      assert.match(option.env, /^MDOCKER_[A-Z_]+$/);
    }
  });

  it('takes --trust-proxy as a hop count, refusing "true" (any client would pick its address)', () => {
    assert.equal(resolveServeConfig({}, {}).trustProxy, 0);
    assert.equal(resolveServeConfig({ trustProxy: '1' }, {}).trustProxy, 1);
    assert.equal(resolveServeConfig({ trustProxy: 'false' }, {}).trustProxy, 0);
    throwsInvalid(() => resolveServeConfig({ trustProxy: 'true' }, {}), /number of proxies in front/);
    throwsInvalid(() => resolveServeConfig({ trustProxy: '99' }, {}), /--trust-proxy/);
  });

  it('parses durations and sizes', () => {
    assert.equal(parseDurationMs('500ms', 'x'), 500);
    assert.equal(parseDurationMs('30m', 'x'), 1_800_000);
    assert.equal(parseDurationMs('45', 'x'), 45_000);
    assert.equal(parseDurationMs('0', 'x'), 0);
    assert.equal(parseSizeBytes('16k', 'x'), 16384);
    assert.equal(parseSizeBytes('1MiB', 'x'), 1024 * 1024);
    throwsInvalid(() => parseSizeBytes('0', 'x'), /positive/);
  });

  it('recognises loopback addresses', () => {
    assert.equal(isLoopbackHost('127.0.0.1'), true);
    assert.equal(isLoopbackHost('::ffff:127.0.0.1'), true);
    assert.equal(isLoopbackHost('0:0:0:0:0:0:0:1'), true);
    assert.equal(isLoopbackHost('128.0.0.1'), false);
    assert.equal(isLoopbackHost('localhost.evil.example'), false);
  });
});

describe('error table', () => {
  const codes = ERROR_CODES;

  it('maps every code to an HTTP status and a WebSocket close code of 4000 + that status', () => {
    assert.deepEqual(Object.keys(ERROR_STATUS).sort(), [...codes].sort());
    assert.ok(codes.length >= 17, "the launcher's codes are in the list");
    for (const code of codes) {
      const http = httpStatusFor(code);
      assert.ok(http >= 400 && http < 600, code);
      assert.equal(wsCloseCodeFor(code), 4000 + http, code);
      assert.ok(Object.values(WS_CLOSE).includes(wsCloseCodeFor(code) as never), `${code} has a named close code`);
    }
    assert.equal(httpStatusFor('NOT_FOUND'), 404);
    assert.equal(httpStatusFor('INVALID_ARGUMENT'), 400);
    assert.equal(httpStatusFor('RATE_LIMITED'), 429);
    assert.equal(httpStatusFor('LIMIT_EXCEEDED'), 403);
  });

  it('renders an error as { error: { code, message, details } }', () => {
    assert.deepEqual(errorJson(new MdockerError('LIMIT_EXCEEDED', 'too many', { cap: 'containers', limit: 3 })), {
      error: { code: 'LIMIT_EXCEEDED', message: 'too many', details: { cap: 'containers', limit: 3 } },
    });
    assert.deepEqual(errorJson(new MdockerError('NOT_FOUND', 'gone')), {
      error: { code: 'NOT_FOUND', message: 'gone' },
    });
  });

  it('turns body-parser failures into INVALID_ARGUMENT', () => {
    assert.equal(fromBodyParserError({ type: 'entity.parse.failed' })?.code, 'INVALID_ARGUMENT');
    assert.match(fromBodyParserError({ type: 'entity.too.large', limit: 16384 })?.message ?? '', /16384/);
    assert.equal(fromBodyParserError(new Error('other')), null);
  });

  it('keeps close reasons within 123 bytes', () => {
    assert.ok(Buffer.byteLength(closeReason('é'.repeat(200))) <= 123);
  });
});
