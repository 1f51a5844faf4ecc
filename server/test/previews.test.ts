// Previews without a kernel: preview host names, tokens, the headers a preview passes on
// either way, --preview-domain, the playground's Host and Origin checks against preview
// hosts.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { checkHost, checkOrigin } from '../src/http/auth.js';
import { resolveServeConfig } from '../src/http/config.js';
import {
  isPreviewHost,
  isPreviewSetCookieAllowed,
  parsePreviewHost,
  previewUrl,
  proxiedRequestHeaders,
  proxiedResponseHeaders,
  withoutPlaygroundCookies,
} from '../src/http/preview.js';
import { PREVIEW_TOKEN_PATTERN, base32, newPreviewToken } from '../src/playground/previews.js';
import { MdockerError } from '../src/runtime/errors.js';

const TOKEN = 'abcdefghijklmnopqrstuvwxyz';
const DOMAIN = 'preview.localhost';

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

describe('preview tokens', () => {
  it('are 128 random bits in lower-case base32, 26 characters, different each time', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => newPreviewToken()));
    assert.equal(tokens.size, 1000);
    for (const token of tokens) assert.match(token, PREVIEW_TOKEN_PATTERN);
  });

  it('base32 follows RFC 4648 (lower case, no padding)', () => {
    assert.equal(base32(Buffer.from('foobar')), 'mzxw6ytboi');
    assert.equal(base32(Buffer.from('f')), 'my');
    assert.equal(base32(new Uint8Array(16)), 'a'.repeat(26));
  });
});

describe('preview hosts', () => {
  it('parses <token>-<port>.<domain> with or without the server port, in any case', () => {
    assert.deepEqual(parsePreviewHost(`${TOKEN}-8000.${DOMAIN}:8080`, DOMAIN), { token: TOKEN, port: 8000 });
    assert.deepEqual(parsePreviewHost(`${TOKEN.toUpperCase()}-1.PREVIEW.LOCALHOST`, DOMAIN), { token: TOKEN, port: 1 });
    assert.deepEqual(parsePreviewHost(`${TOKEN}-65535.${DOMAIN}.`, DOMAIN), { token: TOKEN, port: 65535 });
  });

  it('refuses anything else: other domains, deeper names, short or foreign tokens, bad ports', () => {
    for (const host of [
      `${TOKEN}-8000.evil.example`,
      `${TOKEN}-8000.${DOMAIN}.evil.example`,
      `x.${TOKEN}-8000.${DOMAIN}`,
      `${TOKEN}-8000x.${DOMAIN}`,
      `${TOKEN.slice(1)}-8000.${DOMAIN}`,
      `${TOKEN}1-8000.${DOMAIN}`,
      `${TOKEN}-0.${DOMAIN}`,
      `${TOKEN}-08000.${DOMAIN}`,
      `${TOKEN}-65536.${DOMAIN}`,
      `${TOKEN}.${DOMAIN}`,
      DOMAIN,
      '127.0.0.1:8080',
    ]) {
      assert.equal(parsePreviewHost(host, DOMAIN), null, host);
    }
    assert.equal(parsePreviewHost(undefined, DOMAIN), null);
  });

  it('takes every name under the preview domain (a bad one answers 404 there), and nothing else', () => {
    assert.ok(isPreviewHost(`anything.${DOMAIN}:1234`, DOMAIN));
    assert.ok(isPreviewHost(DOMAIN, DOMAIN));
    assert.ok(!isPreviewHost('localhost:8080', DOMAIN));
    assert.ok(!isPreviewHost(`evilpreview.localhost`, DOMAIN));
    assert.ok(!isPreviewHost(undefined, DOMAIN));
  });

  it('builds URLs: the server port for the default domain, https for a given one, an origin as given', () => {
    const fallback = resolveServeConfig({}, {});
    assert.equal(previewUrl(fallback, 8080, TOKEN, 8000), `http://${TOKEN}-8000.preview.localhost:8080/`);
    const given = resolveServeConfig({ previewDomain: 'previews.example.net' }, {});
    assert.equal(previewUrl(given, 8080, TOKEN, 3000), `https://${TOKEN}-3000.previews.example.net/`);
    const origin = resolveServeConfig({ previewDomain: 'http://previews.example.net:9000' }, {});
    assert.equal(previewUrl(origin, 8080, TOKEN, 3000), `http://${TOKEN}-3000.previews.example.net:9000/`);
  });

  it("--preview-domain must be a DNS name that covers none of the playground's names", () => {
    const invalid = (value: string, message: RegExp): void =>
      assert.throws(
        () => resolveServeConfig({ previewDomain: value }, {}),
        (err: unknown) => err instanceof MdockerError && message.test(err.message),
      );
    invalid('localhost', /expected a DNS name/);
    assert.throws(
      () => resolveServeConfig({ previewDomain: 'example.com', host: '0.0.0.0', allowedHosts: 'example.com' }, {}),
      /covers example\.com/,
    );
    invalid('not a name', /expected a DNS name/);
    invalid('https://previews.example.net/path', /nothing after it/);
    assert.throws(
      () => resolveServeConfig({ previewDomain: 'example.com', allowedHosts: 'play.example.com' }, {}),
      /covers play\.example\.com/,
    );
    assert.equal(
      resolveServeConfig({ previewDomain: 'Previews.Example.NET' }, {}).previewDomain,
      'previews.example.net',
    );
  });
});

describe('what a preview passes on', () => {
  it("forwards the preview's own cookies, never the playground's", () => {
    assert.equal(withoutPlaygroundCookies('mdocker_session=abc.def; a=1; mdocker_token=xyz;b=2'), 'a=1; b=2');
    assert.equal(withoutPlaygroundCookies('mdocker_session=abc'), null);
    const headers = proxiedRequestHeaders(
      [
        'Host',
        'h',
        'Cookie',
        'mdocker_session=s',
        'Connection',
        'keep-alive, X-Secret',
        'X-Secret',
        '1',
        'Accept',
        '*/*',
      ],
      '10.0.0.9',
    );
    assert.deepEqual(headers, ['Host', 'h', 'Accept', '*/*', 'X-Forwarded-For', '10.0.0.9']);
  });

  it('drops a client-given X-Forwarded-For and Proxy-* headers; an upgrade keeps Connection and Upgrade', () => {
    const headers = proxiedRequestHeaders(
      ['Upgrade', 'websocket', 'Connection', 'Upgrade', 'X-Forwarded-For', '1.2.3.4', 'Proxy-Authorization', 'x'],
      '127.0.0.1',
      true,
    );
    assert.deepEqual(headers, ['Upgrade', 'websocket', 'Connection', 'Upgrade', 'X-Forwarded-For', '127.0.0.1']);
  });

  it("passes host-only cookies back, never one with a Domain or the playground's names", () => {
    assert.ok(isPreviewSetCookieAllowed('a=1; Path=/; HttpOnly'));
    assert.ok(!isPreviewSetCookieAllowed('a=1; Domain=preview.localhost'));
    assert.ok(!isPreviewSetCookieAllowed('a=1; path=/; DOMAIN=.localhost'));
    assert.ok(!isPreviewSetCookieAllowed('mdocker_session=x; Path=/'));
    assert.ok(!isPreviewSetCookieAllowed('mdocker_token=x'));
    const headers = proxiedResponseHeaders([
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2; Domain=localhost',
      'Location',
      'http://elsewhere.example/',
      'Transfer-Encoding',
      'chunked',
      'Content-Type',
      'text/html',
    ]);
    assert.deepEqual(headers, [
      'Set-Cookie',
      'a=1',
      'Location',
      'http://elsewhere.example/',
      'Content-Type',
      'text/html',
    ]);
  });
});

describe("the playground's checks against preview hosts", () => {
  const config = { token: null, allowedHosts: ['localhost', '127.0.0.1'], previewDomain: DOMAIN };

  it('never serves the playground on a preview host, token or not', () => {
    assert.ok(checkHost(request({ host: `${TOKEN}-8000.${DOMAIN}:8080` }), config) instanceof MdockerError);
    assert.ok(checkHost(request({ host: `${TOKEN}-8000.${DOMAIN}` }), { ...config, token: 'secret-token' }));
    assert.equal(checkHost(request({ host: '127.0.0.1:8080' }), config), null);
  });

  it('keeps refusing rebound names on a token-less server', () => {
    assert.ok(checkHost(request({ host: `${TOKEN}-8000.evil.example` }), config) instanceof MdockerError);
  });

  it("refuses a write from a preview's origin", () => {
    const refused = checkOrigin(request({ host: '127.0.0.1:8080', origin: `http://${TOKEN}-8000.${DOMAIN}:8080` }));
    assert.ok(refused instanceof MdockerError && refused.code === 'FORBIDDEN');
  });
});
