/**
 * Images: the built-in ones, named read-only root filesystems, one directory each in the
 * images dir (rootfs/build.sh makes them), and the store's (images/store.ts: pulled or
 * loaded, in layers). Users pass names; only this module and the store turn them into paths.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MdockerError } from './errors.js';
import { loadImages, saveImage, type LoadedImage } from './images/archive.js';
import { runConfigOf, type RunConfig } from './images/oci.js';
import { familiarName, formatReference, parseReference } from './images/reference.js';
import { writeCredentials } from './images/credentials.js';
import { pullImage, verifyLogin } from './images/registry.js';
import { ImageStore, type ImportProgress } from './images/store.js';
import { IMAGE_NAME_PATTERN, MAX_IMAGE_NAME_LENGTH } from './spec.js';

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

async function isImageDirectory(path: string): Promise<boolean> {
  try {
    // lstat: an image must be a real directory, so no symlink in the images dir can point
    // a container's root at an arbitrary host path.
    if (!(await lstat(path)).isDirectory()) return false;
  } catch {
    return false;
  }
  for (const probe of [IMAGE_MARKER_FILE, 'bin']) {
    try {
      const stats = await lstat(join(path, probe));
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
    if (await isImageDirectory(join(dir, name))) names.push(name);
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
  if (await isImageDirectory(path)) return { name, path };
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

export function openImageStore(options: StoreImageOptions = {}): Promise<ImageStore> {
  return ImageStore.open(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
}

/** The store for reading: null when nothing was ever pulled or loaded. */
export function existingImageStore(options: StoreImageOptions = {}): Promise<ImageStore | null> {
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
  return loadImages(await openImageStore(options), path);
}

/** Writes a stored image as an OCI archive. */
export async function saveImageArchive(name: string, outPath: string, options: StoreImageOptions = {}): Promise<void> {
  const store = await existingImageStore(options);
  const image = store === null ? null : await store.find(name);
  if (store === null || image === null) throw new MdockerError('NOT_FOUND', `no such image: ${name}`);
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
  if (isValidImageName(name) && (await isImageDirectory(join(imagesDir(options), name)))) {
    return { builtin: { name, path: join(imagesDir(options), name) } };
  }
  const store = await existingImageStore(options);
  const image = store === null ? null : await store.find(name);
  if (store !== null && image !== null) {
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
  await verifyLogin(registry, { username, password }, options);
  await writeCredentials(registry, { username, password });
  return registry;
}

export async function logoutRegistry(server: string | undefined): Promise<string> {
  const registry = registryOf(server);
  await writeCredentials(registry, null);
  return registry;
}
