/**
 * Image references as Docker writes them (`busybox`, `alpine:3.20`,
 * `127.0.0.1:5000/team/app@sha256:...`): parsed by the distribution grammar into
 * registry, repository, tag and digest, and normalized (`docker.io/library/busybox:latest`).
 * A reference is only ever data: the store keys it by hash and never turns it into a path.
 */
import { MdockerError } from '../errors.js';

export interface ImageReference {
  /** host[:port], e.g. docker.io, 127.0.0.1:5000. */
  registry: string;
  /** Slash-separated path components, e.g. library/busybox. */
  repository: string;
  tag: string | null;
  digest: string | null;
}

export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';
/** The distribution spec's limit on a repository name with its registry. */
const MAX_NAME_LENGTH = 255;
const MAX_REFERENCE_LENGTH = 512;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST_LABEL = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

/** A built-in image's name is a directory name below the images dir: never a path. */
export const IMAGE_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;
export const MAX_IMAGE_NAME_LENGTH = 128;

function invalid(input: string, why: string): MdockerError {
  return new MdockerError('INVALID_ARGUMENT', `invalid reference ${JSON.stringify(input.slice(0, 80))}: ${why}`);
}

function isRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
}

function validRegistry(registry: string): boolean {
  const colon = registry.lastIndexOf(':');
  const host = colon === -1 ? registry : registry.slice(0, colon);
  const port = colon === -1 ? null : registry.slice(colon + 1);
  if (port !== null && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) return false;
  return host.length > 0 && host.length <= 253 && host.split('.').every((label) => HOST_LABEL.test(label));
}

export function parseReference(input: string): ImageReference {
  if (input.length === 0 || input.length > MAX_REFERENCE_LENGTH) throw invalid(input, 'empty or too long');
  let rest = input;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_PATTERN.test(digest)) throw invalid(input, 'a digest is sha256: and 64 lowercase hex digits');
  }
  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, 'a tag is up to 128 letters, digits, "_", "." or "-"');
  }
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  if (parts.length > 1 && isRegistry(parts[0]!)) {
    registry = parts.shift()!;
    if (!validRegistry(registry)) throw invalid(input, `bad registry ${JSON.stringify(registry)}`);
  }
  if (parts.length === 0 || !parts.every((part) => COMPONENT.test(part))) {
    throw invalid(input, 'repository names are lowercase letters and digits, separated by ".", "_", "__", "-" or "/"');
  }
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) throw invalid(input, 'name longer than 255');
  if (tag === null && digest === null) tag = DEFAULT_TAG;
  return { registry, repository, tag, digest };
}

/** registry/repository, e.g. docker.io/library/busybox. */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The normalized reference: registry/repository[:tag][@digest]. */
export function formatReference(ref: ImageReference): string {
  return repositoryName(ref) + (ref.tag !== null ? `:${ref.tag}` : '') + (ref.digest !== null ? `@${ref.digest}` : '');
}

/** The repository as Docker shows it: docker.io and library/ left out. */
export function familiarName(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  if (ref.registry !== DEFAULT_REGISTRY) return `${ref.registry}/${ref.repository}`;
  return ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
}

/** A registry that may be spoken to in plain HTTP without --insecure-registry (Docker's rule). */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '');
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
