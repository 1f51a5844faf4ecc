/**
 * `pull` over the OCI distribution protocol: manifests and blobs by GET, the anonymous
 * bearer-token flow (and basic auth from the credentials file) on a 401, a multi-platform
 * index resolved to the host's platform, every document and blob verified by its digest
 * before the store keeps it. HTTPS always, except for loopback registries (as Docker) and
 * those named insecure, which may answer in plain HTTP and with any certificate.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { MdockerError } from '../errors.js';
import { readCredentials, type Credentials } from './credentials.js';
import {
  INDEX_MEDIA_TYPES,
  MANIFEST_MEDIA_TYPES,
  indexSchema,
  parseDocument,
  selectPlatform,
  type Descriptor,
} from './oci.js';
import {
  DEFAULT_REGISTRY,
  formatReference,
  isLoopbackRegistry,
  parseReference,
  type ImageReference,
} from './reference.js';
import type { BlobSource, ImageRecord, ImageStore, ProgressListener } from './store.js';

const MANIFEST_ACCEPT = [...MANIFEST_MEDIA_TYPES, ...INDEX_MEDIA_TYPES].join(', ');
const MAX_REDIRECTS = 5;
const REQUEST_TIMEOUT_MS = 60_000;
const MAX_TOKEN_BYTES = 1024 * 1024;

export interface PullOptions {
  /** Registries (host[:port]) that may use plain HTTP or an unverified certificate. */
  insecureRegistries?: string[];
  onProgress?: ProgressListener;
  /** The credentials file (default: <data dir>/auth.json). */
  authFile?: string;
}

export interface PullResult {
  image: ImageRecord;
  reference: string;
  /** The digest of the manifest pulled (the platform's, for an index). */
  digest: string;
}

interface Response {
  status: number;
  headers: IncomingMessage['headers'];
  body: IncomingMessage;
}

/** A `WWW-Authenticate` challenge: scheme and its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  const re = /([a-zA-Z_]+)="([^"]*)"/g;
  for (let m = re.exec(header); m !== null; m = re.exec(header)) params[m[1]!.toLowerCase()] = m[2]!;
  return { scheme, params };
}

async function readBody(body: Readable, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      body.destroy();
      throw new MdockerError('LIMIT_EXCEEDED', `${what} is over ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

class RegistryClient {
  private authorization: string | null = null;
  private scheme: 'https' | 'http' = 'https';
  private readonly insecure: boolean;
  private readonly host: string;

  constructor(
    private readonly reference: ImageReference,
    private readonly credentials: Credentials | null,
    insecureRegistries: string[],
  ) {
    this.insecure = isLoopbackRegistry(reference.registry) || insecureRegistries.includes(reference.registry);
    // Docker Hub's API lives on its own host.
    this.host = reference.registry === DEFAULT_REGISTRY ? 'registry-1.docker.io' : reference.registry;
  }

  private raw(url: URL, headers: Record<string, string>): Promise<Response> {
    return new Promise((resolve, reject) => {
      const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
      const req = request(
        url,
        {
          method: 'GET',
          headers: { 'user-agent': 'mdocker', ...headers },
          timeout: REQUEST_TIMEOUT_MS,
          ...(url.protocol === 'https:' && this.insecure ? { rejectUnauthorized: false } : {}),
        },
        (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
      );
      req.on('timeout', () => req.destroy(new MdockerError('TIMEOUT', `no answer from ${url.host} in time`)));
      req.on('error', reject);
      req.end();
    });
  }

  /** GET, following redirects (a blob's storage): credentials go only to the registry itself. */
  private async get(path: string, accept?: string): Promise<Response> {
    let url = new URL(`${this.scheme}://${this.host}${path}`);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = {};
      if (accept !== undefined) headers['accept'] = accept;
      if (this.authorization !== null && url.host === this.host) headers['authorization'] = this.authorization;
      const response = await this.raw(url, headers);
      const location = response.headers.location;
      if ([301, 302, 303, 307, 308].includes(response.status) && location !== undefined) {
        response.body.resume();
        const next = new URL(location, url);
        if (next.protocol !== 'https:' && !(next.protocol === 'http:' && this.insecure)) {
          throw new MdockerError('FORBIDDEN', `the registry redirected to ${next.protocol} ${next.host}`);
        }
        url = next;
        continue;
      }
      return response;
    }
    throw new MdockerError('RUNTIME', `too many redirects from ${this.host}`);
  }

  /** Finds the scheme (a loopback or insecure registry may be plain HTTP) and authenticates. */
  async connect(): Promise<void> {
    let response: Response;
    try {
      response = await this.get('/v2/');
    } catch (err) {
      if (!this.insecure || err instanceof MdockerError) throw this.unreachable(err);
      this.scheme = 'http';
      try {
        response = await this.get('/v2/');
      } catch (again) {
        throw this.unreachable(again);
      }
    }
    response.body.resume();
    if (response.status === 401) {
      await this.authenticate(response.headers['www-authenticate']);
      // A token without a repository scope, or basic auth, must open /v2/ itself.
      if (this.reference.repository === '' || this.authorization?.startsWith('Basic ')) {
        const again = await this.get('/v2/');
        again.body.resume();
        if (again.status !== 200) {
          throw new MdockerError('UNAUTHORIZED', `${this.host} refused the credentials (${again.status})`);
        }
      }
    } else if (response.status !== 200) {
      throw new MdockerError('RUNTIME', `${this.host} is not a registry (GET /v2/ answered ${response.status})`);
    }
  }

  private unreachable(err: unknown): MdockerError {
    const message = err instanceof Error ? err.message : String(err);
    const hint = this.insecure
      ? ''
      : ` (a registry without HTTPS needs --insecure-registry ${this.reference.registry})`;
    return new MdockerError('UNAVAILABLE', `cannot reach ${this.host}: ${message}${hint}`, undefined, { cause: err });
  }

  private async authenticate(header: string | string[] | undefined): Promise<void> {
    const challenge = parseChallenge(Array.isArray(header) ? (header[0] ?? '') : (header ?? ''));
    const basic =
      this.credentials === null
        ? null
        : `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    if (challenge.scheme === 'basic') {
      if (basic === null)
        throw new MdockerError('UNAUTHORIZED', `${this.host} needs a login (mdocker login ${this.reference.registry})`);
      this.authorization = basic;
      return;
    }
    if (challenge.scheme !== 'bearer' || challenge.params['realm'] === undefined) {
      throw new MdockerError('UNAUTHORIZED', `${this.host} asks for an unsupported authentication`);
    }
    const realm = new URL(challenge.params['realm']);
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.insecure)) {
      throw new MdockerError('FORBIDDEN', `the registry's token service is not HTTPS: ${realm.host}`);
    }
    if (challenge.params['service'] !== undefined) realm.searchParams.set('service', challenge.params['service']);
    if (this.reference.repository !== '') {
      realm.searchParams.set('scope', `repository:${this.reference.repository}:pull`);
    }
    const response = await this.raw(realm, basic === null ? {} : { authorization: basic });
    const body = await readBody(response.body, MAX_TOKEN_BYTES, 'the token');
    if (response.status !== 200) {
      throw new MdockerError('UNAUTHORIZED', `the token service of ${this.host} answered ${response.status}`);
    }
    let token: unknown;
    try {
      const json = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = json.token ?? json.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) {
      throw new MdockerError('UNAUTHORIZED', `the token service of ${this.host} gave no token`);
    }
    this.authorization = `Bearer ${token}`;
  }

  private notFound(what: string, status: number): MdockerError {
    if (status === 401 || status === 403) {
      return new MdockerError(
        'UNAUTHORIZED',
        `${formatReference(this.reference)}: access denied (${status}); it may not exist or need mdocker login`,
      );
    }
    if (status === 404) return new MdockerError('NOT_FOUND', `${what} not found in ${this.reference.registry}`);
    return new MdockerError('RUNTIME', `${this.reference.registry} answered ${status} for ${what}`);
  }

  /** A manifest or index by tag or digest, verified: its bytes, media type and digest. */
  async manifest(tagOrDigest: string, maxBytes: number): Promise<{ bytes: Buffer; mediaType: string; digest: string }> {
    const what = `manifest ${this.reference.repository}:${tagOrDigest}`;
    const response = await this.get(`/v2/${this.reference.repository}/manifests/${tagOrDigest}`, MANIFEST_ACCEPT);
    if (response.status !== 200) {
      response.body.resume();
      throw this.notFound(what, response.status);
    }
    const bytes = await readBody(response.body, maxBytes, what);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const claimed = response.headers['docker-content-digest'];
    if (
      (tagOrDigest.startsWith('sha256:') && digest !== tagOrDigest) ||
      (typeof claimed === 'string' && claimed !== digest)
    ) {
      throw new MdockerError('INVALID_ARGUMENT', `${what} does not match its digest: refused`);
    }
    let mediaType = (response.headers['content-type'] ?? '').split(';')[0]!.trim();
    try {
      const declared = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
      if (typeof declared === 'string') mediaType = declared;
    } catch {
      throw new MdockerError('INVALID_ARGUMENT', `${what} is not JSON`);
    }
    return { bytes, mediaType, digest };
  }

  async blob(descriptor: Descriptor): Promise<Readable> {
    const response = await this.get(`/v2/${this.reference.repository}/blobs/${descriptor.digest}`);
    if (response.status !== 200) {
      response.body.resume();
      throw this.notFound(`blob ${descriptor.digest}`, response.status);
    }
    return response.body;
  }
}

/** Pulls an image into the store and tags it with the reference (when it has a tag). */
export async function pullImage(store: ImageStore, name: string, options: PullOptions = {}): Promise<PullResult> {
  const reference = parseReference(name);
  const credentials = await readCredentials(reference.registry, options.authFile);
  const client = new RegistryClient(reference, credentials, options.insecureRegistries ?? []);
  await client.connect();
  let top = await client.manifest(reference.digest ?? reference.tag ?? 'latest', store.limits.maxDocumentBytes);
  if (INDEX_MEDIA_TYPES.includes(top.mediaType)) {
    const index = parseDocument(indexSchema, top.bytes, `index of ${formatReference(reference)}`);
    await store.putBlobBytes(top.bytes);
    const chosen = selectPlatform(index);
    top = await client.manifest(chosen.digest, store.limits.maxDocumentBytes);
  }
  if (!MANIFEST_MEDIA_TYPES.includes(top.mediaType)) {
    throw new MdockerError('UNSUPPORTED', `unsupported manifest type ${JSON.stringify(top.mediaType.slice(0, 100))}`);
  }
  await store.putBlobBytes(top.bytes);
  const source: BlobSource = { open: (descriptor) => client.blob(descriptor) };
  const image = await store.importImage(
    { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length },
    source,
    reference.tag !== null ? [reference] : [],
    options.onProgress,
  );
  return { image, reference: formatReference(reference), digest: top.digest };
}

/**
 * Checks credentials against a registry (GET /v2/ and, when asked, its token service), as
 * docker login does before keeping them.
 */
export async function verifyLogin(
  registry: string,
  credentials: Credentials,
  options: PullOptions = {},
): Promise<void> {
  const reference: ImageReference = { registry, repository: '', tag: null, digest: null };
  await new RegistryClient(reference, credentials, options.insecureRegistries ?? []).connect();
}
