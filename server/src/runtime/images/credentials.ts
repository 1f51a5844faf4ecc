/**
 * Registry credentials for `mdocker login`: one JSON file, 0600, in the data dir (the
 * runtime is root's), shaped as Docker's config.json "auths" ({ registry: { auth:
 * base64(user:password) } }), so a user can recognise it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { MdockerError } from '../errors.js';
import { dataDir } from './store.js';

export interface Credentials {
  username: string;
  password: string;
}

const authFileSchema = z.object({ auths: z.record(z.object({ auth: z.string() }).passthrough()) }).passthrough();
type AuthFile = z.infer<typeof authFileSchema>;

export function authFilePath(authFile?: string): string {
  return authFile ?? process.env['MDOCKER_AUTH_FILE'] ?? join(dataDir(), 'auth.json');
}

async function readAuthFile(path: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { auths: {} };
    throw err;
  }
  try {
    return authFileSchema.parse(JSON.parse(text));
  } catch {
    throw new MdockerError('INVALID_ARGUMENT', `${path} is not a credentials file ({"auths": {...}})`);
  }
}

export async function readCredentials(registry: string, authFile?: string): Promise<Credentials | null> {
  const entry = (await readAuthFile(authFilePath(authFile))).auths[registry];
  if (entry === undefined) return null;
  const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Keeps (or, with null, forgets) a registry's credentials. */
export async function writeCredentials(
  registry: string,
  credentials: Credentials | null,
  authFile?: string,
): Promise<void> {
  const path = authFilePath(authFile);
  const file = await readAuthFile(path);
  if (credentials === null) delete file.auths[registry];
  else {
    file.auths[registry] = {
      auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64'),
    };
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path);
}
