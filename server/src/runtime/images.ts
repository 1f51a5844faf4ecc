/**
 * Images: named read-only root filesystems, one directory each in the images dir
 * (rootfs/build.sh makes them). Users pass names; only this module turns them into paths.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MdockerError } from './errors.js';
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
