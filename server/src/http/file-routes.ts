/**
 * Files in and out of a container: GET /api/containers/:id/files?path=P sends a file's
 * bytes or a directory as a tar, `&list=1` lists a directory, PUT writes the raw body as a
 * file. Paths are the container's (runtime/files.ts resolves them inside its root). The
 * owner reads and writes; a class's teacher reads a student's container.
 */
import { Router, type Request, type Response } from 'express';
import { closeSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MdockerError } from '../runtime/errors.js';
import {
  checkContainerPath,
  exactBytes,
  listDirectory,
  openContainerRoot,
  openEntry,
  packTar,
  withContainerRoot,
  writeContainerFile,
  type RunningContainer,
} from '../runtime/files.js';
import { formatBytes } from '../runtime/units.js';
import type { Playground } from '../playground/playground.js';
import type { FileEntryJson } from '../protocol/index.js';
import type { ServeConfig } from './config.js';

export interface FileRoutesOptions {
  config: Pick<ServeConfig, 'maxUploadBytes' | 'maxDownloadBytes'>;
  playground: Playground;
  /** the session a read acts as (the owner's, or for the teacher the student's) */
  readerOf: (req: Request, id: string) => string;
}

/** The upload route: its body is raw bytes, which no JSON parser may take first. */
export function isFileUpload(req: { method: string; path: string }): boolean {
  return req.method === 'PUT' && /^\/api\/containers\/[^/]+\/files\/?$/.test(req.path);
}

const QUERY_KEYS = new Set(['path', 'list']);

function queryOf(req: Request): { path: string; list: boolean } {
  const query = req.query as Record<string, unknown>;
  for (const key of Object.keys(query)) {
    if (!QUERY_KEYS.has(key))
      throw new MdockerError('INVALID_ARGUMENT', `unknown query parameter ${JSON.stringify(key)}`);
  }
  const list = query.list;
  if (list !== undefined && list !== '1' && list !== '0') {
    throw new MdockerError('INVALID_ARGUMENT', 'list must be 1 or 0');
  }
  return { path: checkContainerPath(query.path), list: list === '1' };
}

/** Content-Disposition for a download named name (RFC 6266: an ASCII fallback and the UTF-8 name). */
export function attachment(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_') || 'download';
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

function idOf(req: Request): string {
  const id = req.params.id;
  return typeof id === 'string' ? id : '';
}

export function fileRouter(options: FileRoutesOptions): Router {
  const { config, playground, readerOf } = options;
  const router = Router();

  /** The running container's init and cgroups, for a session that may see it (else 404, as any foreign container). */
  const initFor = (sessionId: string, id: string): RunningContainer => {
    playground.get(sessionId, id);
    const init = playground.initOf(id);
    if (init === null) throw new MdockerError('CONFLICT', `container ${id.slice(0, 12)} is not running`);
    return { init, cgroupPaths: playground.cgroupPathsOf(id) };
  };

  router.get('/containers/:id/files', async (req, res) => {
    const id = idOf(req);
    const { path, list } = queryOf(req);
    const init = initFor(readerOf(req, id), id);
    if (list) {
      const listed = await withContainerRoot(init, id.slice(0, 12), async (root) => listDirectory(root, path));
      if (listed.truncated) res.setHeader('X-Mdocker-Truncated', '1');
      res.json(listed.entries satisfies FileEntryJson[]);
      return;
    }
    const root = openContainerRoot(init, id.slice(0, 12));
    let entry;
    try {
      entry = openEntry(root, path);
    } catch (err) {
      root.close();
      throw err;
    }
    if (entry.type === 'file') {
      root.close();
      if (entry.size > config.maxDownloadBytes) {
        closeSync(entry.fd);
        throw new MdockerError(
          'LIMIT_EXCEEDED',
          `${JSON.stringify(path)} is ${formatBytes(entry.size)}, more than this server sends (--max-download ${formatBytes(config.maxDownloadBytes)})`,
          { cap: 'downloadBytes', limit: config.maxDownloadBytes },
        );
      }
      res.setHeader('Content-Type', 'application/octet-stream');
      res.setHeader('Content-Length', String(entry.size));
      res.setHeader('Content-Disposition', attachment(entry.name || 'download'));
      res.setHeader('Last-Modified', new Date(entry.mtimeMs).toUTCString());
      res.setHeader('Cache-Control', 'no-store');
      await send(Readable.from(exactBytes(entry.fd, entry.size)), res);
      return;
    }
    // A directory: the walk opens it again from the root, which it holds until the end.
    closeSync(entry.fd);
    const tar = packTar(root, path, { maxBytes: config.maxDownloadBytes });
    res.on('close', () => root.close());
    res.setHeader('Content-Type', 'application/x-tar');
    res.setHeader('Content-Disposition', attachment(`${entry.name || 'root'}.tar`));
    res.setHeader('Cache-Control', 'no-store');
    await send(tar, res);
  });

  router.put('/containers/:id/files', async (req, res) => {
    const id = idOf(req);
    const { path, list } = queryOf(req);
    if (list) throw new MdockerError('INVALID_ARGUMENT', 'list is for GET');
    const init = initFor(req.sessionId, id);
    const cap = `--max-upload ${formatBytes(config.maxUploadBytes)}`;
    const tooLarge = () =>
      new MdockerError(
        'TOO_LARGE',
        `the upload is larger than this server's cap of ${formatBytes(config.maxUploadBytes)} (${cap})`,
        {
          cap: 'uploadBytes',
          limit: config.maxUploadBytes,
        },
      );
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    try {
      if (declared > config.maxUploadBytes) throw tooLarge();
      const written = await withContainerRoot(init, id.slice(0, 12), (root) =>
        writeContainerFile(root, path, req, { maxBytes: config.maxUploadBytes, capName: cap }),
      );
      res.status(written.created ? 201 : 200).json(written.entry satisfies FileEntryJson);
    } catch (err) {
      // The rest of the body is not read: the connection ends with the answer instead of
      // Node reading (and dropping) what the client still sends.
      if (!req.complete) res.setHeader('Connection', 'close');
      if (err instanceof MdockerError && err.code === 'TOO_LARGE') throw tooLarge();
      throw err;
    }
  });

  return router;
}

/**
 * Streams body to the response with backpressure; a failure once the answer has begun
 * (the client went away, a file vanished) cuts the connection, which the client sees as
 * an incomplete download.
 */
async function send(body: Readable, res: Response): Promise<void> {
  // An error after the pipeline gave up on body (the response closed first) is no one's to hear.
  body.on('error', () => undefined);
  try {
    await pipeline(body, res);
  } catch {
    body.destroy();
    res.destroy();
  }
}
