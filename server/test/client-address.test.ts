// The client address of a WebSocket upgrade, as Express's numeric "trust proxy" takes req.ip.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { clientAddress } from '../src/http/client-address.js';

function request(peer: string, forwardedFor?: string): IncomingMessage {
  return {
    socket: { remoteAddress: peer },
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  } as unknown as IncomingMessage;
}

describe('client address', () => {
  it('is the peer when no proxy is trusted, whatever X-Forwarded-For claims', () => {
    assert.equal(clientAddress(request('10.0.0.9', '203.0.113.1'), 0), '10.0.0.9');
  });

  it('is that many hops back along X-Forwarded-For, never further than it goes', () => {
    const req = request('10.0.0.2', '203.0.113.7, 10.0.0.1');
    assert.equal(clientAddress(req, 1), '10.0.0.1');
    assert.equal(clientAddress(req, 2), '203.0.113.7');
    assert.equal(clientAddress(req, 5), '203.0.113.7');
    assert.equal(clientAddress(request('10.0.0.2'), 1), '10.0.0.2');
  });

  it('cannot be chosen by the client behind one trusted proxy: the proxy appends the real one', () => {
    // The client sent "X-Forwarded-For: 1.2.3.4"; the ingress appended the address it saw.
    assert.equal(clientAddress(request('10.0.0.2', '1.2.3.4, 198.51.100.20'), 1), '198.51.100.20');
  });
});
