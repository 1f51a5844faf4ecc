/**
 * The image catalog's backend over the runtime: the built-in trees, the store's images
 * (their size, description label and exposed ports), pull, commit and rmi.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MdockerError } from '../runtime/errors.js';
import {
  commitContainer,
  existingImageStore,
  IMAGE_MARKER_FILE,
  listImages,
  pullImageReference,
  type CommitContainerOptions,
} from '../runtime/images.js';
import type { ImageConfig } from '../runtime/images/oci.js';
import type { BuiltinImage, ImageBackend, ImageDetails } from './image-catalog.js';

/** Built-in images whose marker file says no `description=`. */
const BUILTIN_DESCRIPTIONS: Record<string, string> = {
  busybox: 'BusyBox: a shell and the usual Unix tools in one small binary (the default)',
  debian: 'Debian stable, minimal: bash, coreutils, procps, iproute2, util-linux and an editor',
};
const DESCRIPTION_LABEL = 'org.opencontainers.image.description';
const MAX_DESCRIPTION_LENGTH = 300;
const MAX_EXPOSED_PORTS = 32;

/** ExposedPorts' TCP ports ("8080/tcp", "80"), sorted, at most a few. */
export function exposedTcpPorts(config: ImageConfig): number[] {
  const ports = new Set<number>();
  for (const key of Object.keys(config.config?.ExposedPorts ?? {})) {
    const match = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(key);
    if (!match || (match[2] !== undefined && match[2].toLowerCase() !== 'tcp')) continue;
    const port = Number(match[1]);
    if (port >= 1 && port <= 65535) ports.add(port);
  }
  return [...ports].sort((a, b) => a - b).slice(0, MAX_EXPOSED_PORTS);
}

/** Shells by name: an image whose Cmd is one of them starts it in its terminals. */
const SHELLS = new Set(['sh', 'ash', 'bash', 'dash', 'ksh', 'mksh', 'zsh', 'fish']);

/**
 * The image's Cmd when it is an interactive shell (bash in a Debian image, alone or with
 * -l or -i, and no Entrypoint before it), for the playground's terminals; else null, and
 * they run /bin/sh (an image whose Cmd is a server still gets a shell beside it).
 */
export function shellOf(entrypoint: string[] | null | undefined, cmd: string[] | null | undefined): string[] | null {
  if ((entrypoint ?? []).length > 0 || !cmd || cmd.length === 0 || cmd.length > 2) return null;
  const program = cmd[0]!;
  if (!SHELLS.has(program.slice(program.lastIndexOf('/') + 1))) return null;
  if (cmd.length === 2 && !['-l', '-i', '--login'].includes(cmd[1]!)) return null;
  return [...cmd];
}

function oneLine(text: string | undefined): string | null {
  if (text === undefined) return null;
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line === '' ? null : line.slice(0, MAX_DESCRIPTION_LENGTH);
}

async function markerDescription(path: string): Promise<string | null> {
  try {
    const marker = await readFile(join(path, IMAGE_MARKER_FILE), 'utf8');
    return oneLine(/^description=(.*)$/m.exec(marker)?.[1]);
  } catch {
    return null;
  }
}

export interface RuntimeImageBackendOptions {
  /** Runtime.removeImage: rmi that knows which containers use an image */
  removeImage: (name: string, force: boolean) => Promise<unknown>;
  /** the runtime whose containers a commit reads (Runtime.get) */
  runtime: CommitContainerOptions['runtime'] | null;
}

export function runtimeImageBackend(options: RuntimeImageBackendOptions): ImageBackend {
  return {
    async builtins(): Promise<BuiltinImage[]> {
      return Promise.all(
        (await listImages()).map(async (image) => ({
          name: image.name,
          sizeBytes: image.sizeBytes,
          description: (await markerDescription(image.path)) ?? BUILTIN_DESCRIPTIONS[image.name] ?? null,
          exposedPorts: [],
        })),
      );
    },
    async stored(reference: string): Promise<ImageDetails | null> {
      const store = await existingImageStore();
      const image = store === null ? null : await store.find(reference);
      if (store === null || image === null) return null;
      const config = await store.readConfig(image);
      return {
        sizeBytes: image.sizeBytes,
        description: oneLine(config.config?.Labels?.[DESCRIPTION_LABEL]),
        exposedPorts: exposedTcpPorts(config),
        shell: shellOf(config.config?.Entrypoint, config.config?.Cmd),
      };
    },
    async references(): Promise<string[]> {
      const store = await existingImageStore();
      return ((await store?.list()) ?? []).flatMap((image) => image.references);
    },
    async pull(reference, onProgress): Promise<void> {
      await pullImageReference(reference, { onProgress });
    },
    async commit(containerId, reference): Promise<void> {
      if (options.runtime === null) throw new MdockerError('UNSUPPORTED', 'this server cannot save containers');
      await commitContainer(containerId, reference, {
        runtime: options.runtime,
        message: 'saved in the playground',
      });
    },
    async remove(reference, force): Promise<void> {
      await options.removeImage(reference, force);
    },
  };
}
