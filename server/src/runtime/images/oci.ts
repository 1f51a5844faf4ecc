/**
 * The OCI image format's documents (index, manifest, config) and Docker's equivalents,
 * as zod schemas: what a registry, a layout or an archive gives us is checked before use.
 */
import { z } from 'zod';
import { MdockerError } from '../errors.js';
import { DIGEST_PATTERN } from './reference.js';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const MANIFEST_MEDIA_TYPES: string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
export const INDEX_MEDIA_TYPES: string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList];

/** How a layer blob is compressed, from its media type. */
export type LayerCompression = 'none' | 'gzip' | 'zstd';

export function layerCompression(mediaType: string): LayerCompression {
  switch (mediaType) {
    case MEDIA_TYPES.ociLayer:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar':
      return 'none';
    case MEDIA_TYPES.ociLayerGzip:
    case MEDIA_TYPES.dockerLayerGzip:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip':
      return 'gzip';
    case MEDIA_TYPES.ociLayerZstd:
      return 'zstd';
    default:
      throw new MdockerError('UNSUPPORTED', `unsupported layer media type ${JSON.stringify(mediaType.slice(0, 100))}`);
  }
}

export const digestSchema = z.string().regex(DIGEST_PATTERN, 'expected a sha256 digest');

/**
 * The most layers an image may have: each is an overlay lower, and their fds travel to the
 * container in one SCM_RIGHTS message (at most 253).
 */
export const MAX_IMAGE_LAYERS = 128;

export const descriptorSchema = z.object({
  mediaType: z.string().max(255),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string()).optional(),
  platform: z
    .object({ architecture: z.string(), os: z.string(), variant: z.string().optional() })
    .passthrough()
    .optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema).max(1024),
});
export type ImageIndex = z.infer<typeof indexSchema>;

export const manifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema).max(MAX_IMAGE_LAYERS),
});
export type ImageManifest = z.infer<typeof manifestSchema>;

const stringList = z.array(z.string().max(64 * 1024)).max(4096);

export const imageConfigSchema = z
  .object({
    architecture: z.string().optional(),
    os: z.string().optional(),
    created: z.string().optional(),
    config: z
      .object({
        User: z.string().max(256).optional(),
        Env: stringList.nullish(),
        Entrypoint: stringList.nullish(),
        Cmd: stringList.nullish(),
        WorkingDir: z.string().max(4096).optional(),
        ExposedPorts: z.record(z.object({}).passthrough()).nullish(),
        Labels: z.record(z.string()).nullish(),
      })
      .passthrough()
      .nullish(),
    rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(digestSchema).max(MAX_IMAGE_LAYERS) }),
  })
  .passthrough();
export type ImageConfig = z.infer<typeof imageConfigSchema>;

/** What running an image takes from its config (Docker's names, normalized). */
export interface RunConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workdir: string;
  user: string;
  exposedPorts: string[];
}

export function runConfigOf(config: ImageConfig): RunConfig {
  const c = config.config ?? {};
  return {
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    env: c.Env ?? [],
    workdir: c.WorkingDir ?? '',
    user: c.User ?? '',
    exposedPorts: Object.keys(c.ExposedPorts ?? {}),
  };
}

/** Parses JSON bytes with a schema, or says what was wrong with the named document. */
export function parseDocument<Schema extends z.ZodTypeAny>(
  schema: Schema,
  bytes: Buffer,
  what: string,
): z.output<Schema> {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new MdockerError('INVALID_ARGUMENT', `${what} is not JSON`);
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `${what} is malformed: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
    );
  }
  return result.data as z.output<Schema>;
}

/** The host's platform in OCI's words: linux/amd64 on x86-64. */
export function hostPlatform(): { os: string; architecture: string } {
  const architecture = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' }[
    process.arch as string
  ];
  return { os: 'linux', architecture: architecture ?? process.arch };
}

/** The manifest of an index for the host's platform, as Docker picks it. */
export function selectPlatform(index: ImageIndex): Descriptor {
  const { os, architecture } = hostPlatform();
  const found = index.manifests.find(
    (m) =>
      MANIFEST_MEDIA_TYPES.includes(m.mediaType) && m.platform?.os === os && m.platform.architecture === architecture,
  );
  if (found) return found;
  const offered = index.manifests
    .map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : null))
    .filter((p): p is string => p !== null);
  throw new MdockerError(
    'NOT_FOUND',
    `no image for ${os}/${architecture} in the index (it has ${offered.length > 0 ? offered.join(', ') : 'none'})`,
  );
}
