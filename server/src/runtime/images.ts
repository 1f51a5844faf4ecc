/**
 * Images: the built-in ones, named read-only root filesystems, one directory each in the
 * images dir (rootfs/build.sh makes them), and the store's (images/store.ts: pulled or
 * loaded, in layers). Users pass names; only this module and the store turn them into paths.
 */
import { closeSync, constants as fsConstants, lstatSync, openSync, readFileSync } from 'node:fs';
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MdockerError } from './errors.js';
// The store, archives, commits, registries and credentials load when a call needs them:
// running a built-in image (every `mdocker run busybox`) needs none of their code.
import type { LoadedImage } from './images/archive.js';
import type { CommitLayer, IdRange } from './images/commit.js';
import type { RunConfig } from './images/oci.js';
import {
  familiarName,
  formatReference,
  IMAGE_NAME_PATTERN,
  MAX_IMAGE_NAME_LENGTH,
  parseReference,
} from './images/reference.js';
import type { ImageStore, ImportProgress } from './images/store.js';
import { isAlive, layerFileCalls, type ProcessRef } from './native.js';

export interface Image {
  name: string;
  /** Absolute path of the image's root directory. */
  path: string;
}

export interface ImageSummary extends Image {
  /** Apparent size of all files, symlinks counted as themselves. */
  sizeBytes: number;
}

export interface ImageOptions {
  /** Overrides MDOCKER_IMAGES and the default. */
  imagesDir?: string;
}

/** rootfs/build.sh writes this into every image it finishes; half-built trees lack it. */
export const IMAGE_MARKER_FILE = '.mdocker-image';

// This module runs from server/dist/src/runtime/; the images sit in <repo>/rootfs/images.
const DEFAULT_IMAGES_DIR = fileURLToPath(new URL('../../../../rootfs/images', import.meta.url));

export function imagesDir(options: ImageOptions = {}): string {
  return resolve(options.imagesDir ?? process.env['MDOCKER_IMAGES'] ?? DEFAULT_IMAGES_DIR);
}

export function isValidImageName(name: string): boolean {
  return name.length <= MAX_IMAGE_NAME_LENGTH && IMAGE_NAME_PATTERN.test(name);
}

/**
 * Synchronous: two or three lstat(2) calls on the local images dir cost microseconds, where
 * each promise lstat is a thread-pool round trip (and, in the CLI, node:fs/promises' load).
 */
function isImageDirectory(path: string): boolean {
  try {
    // lstat: an image must be a real directory, so no symlink in the images dir can point
    // a container's root at an arbitrary host path.
    if (!lstatSync(path).isDirectory()) return false;
  } catch {
    return false;
  }
  for (const probe of [IMAGE_MARKER_FILE, 'bin']) {
    try {
      const stats = lstatSync(join(path, probe));
      if (probe === IMAGE_MARKER_FILE ? stats.isFile() : stats.isDirectory()) return true;
    } catch {
      // try the next probe
    }
  }
  return false;
}

async function imageNames(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') return [];
    throw new MdockerError('INTERNAL', `cannot read images dir ${dir}: ${String(err)}`, { path: dir }, { cause: err });
  }
  const names: string[] = [];
  for (const name of entries.filter(isValidImageName).sort()) {
    if (isImageDirectory(join(dir, name))) names.push(name);
  }
  return names;
}

async function directorySizeBytes(path: string): Promise<number> {
  let total = 0;
  const entries = await readdir(path, { withFileTypes: true });
  for (const entry of entries) {
    const entryPath = join(path, entry.name);
    if (entry.isDirectory()) total += await directorySizeBytes(entryPath);
    else total += (await lstat(entryPath)).size;
  }
  return total;
}

export async function listImages(options: ImageOptions = {}): Promise<ImageSummary[]> {
  const dir = imagesDir(options);
  const names = await imageNames(dir);
  return Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      return { name, path, sizeBytes: await directorySizeBytes(path) };
    }),
  );
}

export async function resolveImage(name: string, options: ImageOptions = {}): Promise<Image> {
  if (!isValidImageName(name)) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `invalid image name ${JSON.stringify(name.slice(0, 64))}: expected a name of lowercase letters, digits, ".", "_" or "-"`,
    );
  }
  const dir = imagesDir(options);
  const path = join(dir, name);
  if (isImageDirectory(path)) return { name, path };
  const available = await imageNames(dir);
  throw new MdockerError(
    'NOT_FOUND',
    `unknown image ${JSON.stringify(name)} (available: ${available.length > 0 ? available.join(', ') : 'none; run npm run build:rootfs'})`,
    { image: name, available },
  );
}

/** An image as `mdocker images` lists it: a built-in tree or one of the store's. */
export interface ImageRow {
  repository: string;
  tag: string;
  /** The image id (its config's digest); null for a built-in image. */
  id: string | null;
  sizeBytes: number;
  created: string | null;
}

export interface StoreImageOptions {
  /** The data dir whose images/ is the store (MDOCKER_DATA_DIR, else /var/lib/mdocker). */
  dataDir?: string;
}

export async function openImageStore(options: StoreImageOptions = {}): Promise<ImageStore> {
  const { ImageStore } = await import('./images/store.js');
  return ImageStore.open(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
}

/** The store for reading: null when nothing was ever pulled or loaded. */
export async function existingImageStore(options: StoreImageOptions = {}): Promise<ImageStore | null> {
  const { ImageStore } = await import('./images/store.js');
  return ImageStore.openExisting(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
}

/** Every image: the built-in ones first, then the store's, newest first, one row per reference. */
export async function imageRows(options: ImageOptions & StoreImageOptions = {}): Promise<ImageRow[]> {
  const rows: ImageRow[] = [];
  for (const image of await listImages(options)) {
    let created: string | null = null;
    try {
      created = (await lstat(join(image.path, IMAGE_MARKER_FILE))).mtime.toISOString();
    } catch {
      // a hand-made tree: no build time
    }
    rows.push({ repository: image.name, tag: 'latest', id: null, sizeBytes: image.sizeBytes, created });
  }
  const store = await existingImageStore(options);
  for (const image of (await store?.list()) ?? []) {
    const common = { id: image.id, sizeBytes: image.sizeBytes, created: image.created };
    if (image.references.length === 0) rows.push({ repository: '<none>', tag: '<none>', ...common });
    for (const reference of image.references) {
      const parsed = parseReference(reference);
      rows.push({ repository: familiarName(parsed), tag: parsed.tag ?? '<none>', ...common });
    }
  }
  return rows;
}

/** Loads a docker save archive or an OCI layout (directory or tar) into the store. */
export async function loadImageArchive(path: string, options: StoreImageOptions = {}): Promise<LoadedImage[]> {
  const { loadImages } = await import('./images/archive.js');
  return loadImages(await openImageStore(options), path);
}

/** Writes a stored image as an OCI archive. */
export async function saveImageArchive(
  name: string,
  outPath: string,
  options: ImageOptions & StoreImageOptions = {},
): Promise<void> {
  const store = await existingImageStore(options);
  const image = store === null ? null : await store.find(name);
  if (store === null || image === null) {
    if (isValidImageName(name) && isImageDirectory(join(imagesDir(options), name))) {
      await saveBuiltinImage({ name, path: join(imagesDir(options), name) }, outPath);
      return;
    }
    throw new MdockerError('NOT_FOUND', `no such image: ${name}`);
  }
  const { saveImage } = await import('./images/archive.js');
  const references = (await store.list()).find((summary) => summary.id === image.id)?.references ?? [];
  let requested: string | null = null;
  try {
    const parsed = parseReference(name);
    if (parsed.digest === null) requested = formatReference(parsed);
  } catch {
    // an image id
  }
  await saveImage(
    store,
    image,
    requested !== null && references.includes(requested) ? [requested] : references,
    outPath,
  );
}

/**
 * A built-in image as a one-layer OCI archive, tagged with its name (docker save busybox).
 * The layer is made in a store of its own in a temporary directory, removed afterwards,
 * so the built-in name never becomes a stored image that would stand beside the tree.
 */
async function saveBuiltinImage(builtin: Image, outPath: string): Promise<void> {
  const [{ saveImage }, { commitTrees }] = await Promise.all([
    import('./images/archive.js'),
    import('./images/commit.js'),
  ]);
  const dataDir = await mkdtemp(join(tmpdir(), 'mdocker-save-'));
  const layer = builtinLayer(builtin);
  try {
    const store = await openImageStore({ dataDir });
    const reference = parseReference(builtin.name);
    const image = await commitTrees(store, [layer], null, builtinConfig(), reference);
    await saveImage(store, image, [formatReference(reference)], outPath);
  } finally {
    closeSync(layer.tree.dirFd);
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** What a container runs from a stored image: its layers, bottom first, and its config. */
export interface StoredImage {
  id: string;
  layerRoots: string[];
  config: RunConfig;
}

/**
 * A run's image: a built-in tree by its name (busybox stays the default), else the store's
 * image by reference or id.
 */
export async function resolveRunImage(
  name: string,
  options: ImageOptions & StoreImageOptions = {},
): Promise<{ builtin: Image } | { stored: StoredImage }> {
  if (isValidImageName(name) && isImageDirectory(join(imagesDir(options), name))) {
    return { builtin: { name, path: join(imagesDir(options), name) } };
  }
  const store = await existingImageStore(options);
  const image = store === null ? null : await store.find(name);
  if (store !== null && image !== null) {
    const { runConfigOf } = await import('./images/oci.js');
    return {
      stored: { id: image.id, layerRoots: store.layerRoots(image), config: runConfigOf(await store.readConfig(image)) },
    };
  }
  const available = (await imageRows(options)).map((row) =>
    row.id === null || row.repository === '<none>' ? row.repository : `${row.repository}:${row.tag}`,
  );
  throw new MdockerError(
    'NOT_FOUND',
    `unknown image ${JSON.stringify(name.slice(0, 128))} (available: ${available.length > 0 ? available.join(', ') : 'none'}; mdocker pull or load one)`,
    { image: name, available },
  );
}

export type { ImportProgress } from './images/store.js';

export interface PullImageOptions extends StoreImageOptions {
  insecureRegistries?: string[];
  onProgress?: (progress: ImportProgress) => void;
}

/** Pulls an image from its registry into the store. */
export async function pullImageReference(
  name: string,
  options: PullImageOptions = {},
): Promise<{ id: string; reference: string; digest: string }> {
  const { pullImage } = await import('./images/registry.js');
  const store = await openImageStore(options);
  const { image, reference, digest } = await pullImage(store, name, {
    ...(options.insecureRegistries === undefined ? {} : { insecureRegistries: options.insecureRegistries }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  return { id: image.id, reference, digest };
}

/** The registry part of a login argument: host[:port], docker.io when absent. */
function registryOf(server: string | undefined): string {
  if (server === undefined || server === '') return 'docker.io';
  const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  const parsed = parseReference(`${host}/x`);
  return parsed.registry;
}

/** Checks the credentials against the registry, then keeps them; returns the registry. */
export async function loginRegistry(
  server: string | undefined,
  username: string,
  password: string,
  options: { insecureRegistries?: string[] } = {},
): Promise<string> {
  const registry = registryOf(server);
  if (username === '' || username.includes(':') || password === '') {
    throw new MdockerError('INVALID_ARGUMENT', 'a login needs a username (without ":") and a password');
  }
  const [{ verifyLogin }, { writeCredentials }] = await Promise.all([
    import('./images/registry.js'),
    import('./images/credentials.js'),
  ]);
  await verifyLogin(registry, { username, password }, options);
  await writeCredentials(registry, { username, password });
  return registry;
}

export async function logoutRegistry(server: string | undefined): Promise<string> {
  const registry = registryOf(server);
  const { writeCredentials } = await import('./images/credentials.js');
  await writeCredentials(registry, null);
  return registry;
}

/** What a commit needs of a container (the runtime's view of it: Runtime.get). */
export interface CommittableContainer {
  id: string;
  name: string;
  status: string;
  image: string | null;
  imageId?: string | null;
  rootfs: string | null;
  launcher: ProcessRef | null;
  init: ProcessRef | null;
}

export interface CommitContainerOptions extends ImageOptions, StoreImageOptions {
  /** Finds the container by id, id prefix or name (the runtime's get). */
  runtime: { get(idOrName: string): Promise<CommittableContainer> };
  /** The new layer's history comment (docker commit -m). */
  message?: string;
}

const IDENTITY_MAP: IdRange[] = [{ inside: 0, outside: 0, count: 2 ** 32 - 1 }];

/** The text of init's uid_map or gid_map, read while it is the process pinned. */
function idMapText(init: ProcessRef, file: 'uid_map' | 'gid_map'): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${init.pid}/${file}`, 'utf8');
  } catch {
    text = '';
  }
  if (!isAlive(init)) throw new MdockerError('CONFLICT', 'the container stopped during the commit');
  return text;
}

/**
 * A built-in image's tree (made at install, the host's) as an image's first layer, its ids
 * as they are: a container sees them through an idmapped mount. dirFd is the caller's to close.
 */
function builtinLayer(builtin: Image): CommitLayer {
  const dirFd = openSync(builtin.path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW);
  return {
    tree: {
      dirFd,
      uidMap: IDENTITY_MAP,
      gidMap: IDENTITY_MAP,
      overlay: false,
      skipPaths: new Set([IMAGE_MARKER_FILE]),
    },
    createdBy: `mdocker: the built-in image ${builtin.name}`,
  };
}

/** A built-in image's config: a shell, as the playground and `mdocker run` start it. */
function builtinConfig(): Record<string, unknown> {
  return {
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

/**
 * A running container's writable layer as a new image on top of its image, tagged
 * reference (docker commit): changed and new files, symlinks as symlinks, deletions as
 * whiteouts; the image's config is kept, with a history entry. A container of a built-in
 * image gets the image's tree as its first layer. Its upper layer is a tmpfs that ends
 * with it: an exited container is refused. Returns the new image's id and its reference.
 */
export async function commitContainer(
  containerIdOrName: string,
  reference: string,
  options: CommitContainerOptions,
): Promise<{ id: string; reference: string }> {
  const parsed = parseReference(reference);
  if (parsed.digest !== null) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `commit names an image by a tag, not a digest: ${reference.slice(0, 128)}`,
    );
  }
  const formatted = formatReference(parsed);
  if (parsed.registry === 'docker.io' && parsed.repository.startsWith('library/')) {
    const name = parsed.repository.slice('library/'.length);
    if (isValidImageName(name) && isImageDirectory(join(imagesDir(options), name))) {
      throw new MdockerError('CONFLICT', `${name} is a built-in image's name: a committed image cannot take it`);
    }
  }
  const container = await options.runtime.get(containerIdOrName);
  const label = container.name;
  if (container.rootfs !== null) {
    throw new MdockerError(
      'UNSUPPORTED',
      `container ${label} runs on a --rootfs directory, which has no layer to commit`,
    );
  }
  if (container.status !== 'running' || container.launcher === null || container.init === null) {
    throw new MdockerError(
      'CONFLICT',
      `container ${label} is not running: its writable layer (a tmpfs) ended with it, and only a running container can be committed`,
    );
  }
  const [{ commitTrees, parseIdMap, UPPER_MOUNT_POINTS }, { MAX_IMAGE_LAYERS }] = await Promise.all([
    import('./images/commit.js'),
    import('./images/oci.js'),
  ]);
  const store = await openImageStore(options);
  let base: Awaited<ReturnType<typeof store.getImage>> = null;
  let baseConfig: Record<string, unknown>;
  const layers: CommitLayer[] = [];
  const opened: number[] = [];
  try {
    if (container.imageId) {
      base = await store.getImage(container.imageId);
      if (base === null) {
        throw new MdockerError(
          'NOT_FOUND',
          `container ${label}'s image ${container.imageId.slice(7, 19)} is no longer in the store`,
        );
      }
      if (base.layers.length >= MAX_IMAGE_LAYERS) {
        throw new MdockerError(
          'LIMIT_EXCEEDED',
          `the image has ${base.layers.length} layers already, the most an image may have`,
        );
      }
      // The raw config, kept whole: the schema's parse would drop what it does not name.
      baseConfig = JSON.parse((await store.readBlob(base.configDigest)).toString('utf8')) as Record<string, unknown>;
    } else {
      const name = container.image ?? '';
      const builtin = await resolveImage(name, options).catch(() => null);
      if (builtin === null) {
        throw new MdockerError('NOT_FOUND', `container ${label}'s image ${JSON.stringify(name)} is gone`);
      }
      const first = builtinLayer(builtin);
      opened.push(first.tree.dirFd);
      layers.push(first);
      baseConfig = builtinConfig();
    }
    const upper = layerFileCalls().takeContainerLayer(container.launcher.pid, container.launcher.startTime);
    if (upper === null) throw new MdockerError('CONFLICT', `container ${label} is not running`);
    opened.push(upper);
    layers.push({
      tree: {
        dirFd: upper,
        uidMap: parseIdMap(idMapText(container.init, 'uid_map')),
        gidMap: parseIdMap(idMapText(container.init, 'gid_map')),
        overlay: true,
        skipPaths: UPPER_MOUNT_POINTS,
      },
      createdBy: 'mdocker commit',
      ...(options.message === undefined ? {} : { comment: options.message }),
    });
    const image = await commitTrees(store, layers, base, baseConfig, parsed);
    return { id: image.id, reference: formatted };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBADF') {
      throw new MdockerError(
        'CONFLICT',
        `container ${label}'s layer is not reachable yet (its root is still being built)`,
      );
    }
    throw err;
  } finally {
    for (const fd of opened) closeSync(fd);
  }
}
