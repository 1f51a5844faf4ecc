// An image backend for tests without root: built-in busybox, a store of references held
// in memory, pulls that move through their layers on timers, commits and removals that
// remember what they did.
import { MdockerError } from '../src/runtime/errors.js';
import { parseReference } from '../src/runtime/images/reference.js';
import type { BuiltinImage, ImageBackend, ImageDetails } from '../src/playground/image-catalog.js';
import type { ImagePullLayerJson } from '../src/protocol/index.js';

export class FakeImageBackend implements ImageBackend {
  readonly store = new Map<string, ImageDetails>();
  /** what a pull of a reference makes (else it fails as a registry's 404) */
  readonly registry = new Map<string, ImageDetails>();
  readonly pulls: string[] = [];
  readonly commits: Array<{ containerId: string; reference: string }> = [];
  readonly removals: Array<{ reference: string; force: boolean }> = [];
  /** references a container uses: their removal is refused unless forced */
  readonly inUse = new Set<string>();
  /** how long each pull's layer takes */
  layerMs = 30;

  async builtins(): Promise<BuiltinImage[]> {
    return [{ name: 'busybox', sizeBytes: 1, description: 'BusyBox (test)', exposedPorts: [] }];
  }

  async stored(reference: string): Promise<ImageDetails | null> {
    return this.store.get(reference) ?? null;
  }

  async references(): Promise<string[]> {
    return [...this.store.keys()];
  }

  async pull(reference: string, onProgress: (layer: ImagePullLayerJson) => void): Promise<void> {
    this.pulls.push(reference);
    const ref = parseReference(reference);
    if (ref.registry !== 'docker.io' && !/^(127\.|localhost)/.test(ref.registry)) {
      throw new MdockerError(
        'UNAVAILABLE',
        `cannot reach ${ref.registry}: connection refused (a registry without HTTPS needs --insecure-registry ${ref.registry})`,
      );
    }
    const image = this.registry.get(reference);
    if (!image)
      throw new MdockerError('NOT_FOUND', `manifest ${ref.repository}:${ref.tag ?? ''} not found in ${ref.registry}`);
    for (const digest of ['sha256:' + 'a'.repeat(64), 'sha256:' + 'b'.repeat(64)]) {
      onProgress({ digest, totalBytes: 100, doneBytes: 0, status: 'downloading' });
      await new Promise((resolve) => setTimeout(resolve, this.layerMs));
      onProgress({ digest, totalBytes: 100, doneBytes: 100, status: 'done' });
    }
    this.store.set(reference, image);
  }

  async commit(containerId: string, reference: string): Promise<void> {
    this.commits.push({ containerId, reference });
    this.store.set(parseReferenceString(reference), { sizeBytes: 4096, description: null, exposedPorts: [] });
  }

  async remove(reference: string, force: boolean): Promise<void> {
    this.removals.push({ reference, force });
    if (!this.store.has(reference)) throw new MdockerError('NOT_FOUND', `no such image: ${reference}`);
    if (this.inUse.has(reference) && !force) throw new MdockerError('CONFLICT', `image ${reference} is in use`);
    this.store.delete(reference);
  }
}

function parseReferenceString(reference: string): string {
  const ref = parseReference(reference);
  return `${ref.registry}/${ref.repository}:${ref.tag ?? 'latest'}`;
}
