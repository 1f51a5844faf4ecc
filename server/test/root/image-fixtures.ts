/**
 * Runnable test images made from the host's static busybox: a base layer with a shell
 * and accounts, a second layer that deletes a file and adds another, an image with every
 * part of a config Docker honours, a second image sharing the base.
 */
import { readFileSync } from 'node:fs';
import { image, layer, makeTar, type BuiltLayer, type ImageParts, type TarEntry } from './oci-builder.js';

const APPLETS = ['sh', 'echo', 'cat', 'ls', 'id', 'pwd', 'sleep', 'env', 'test'];

export async function baseLayer(): Promise<BuiltLayer> {
  const entries: TarEntry[] = [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...APPLETS.map((applet) => ({ name: `bin/${applet}`, type: 'symlink' as const, linkname: 'busybox' })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' },
    { name: 'etc/group', content: 'root:x:0:\napp:x:1000:\nstaff:x:50:\n' },
    { name: 'etc/doomed', content: 'deleted by the second layer\n' },
    { name: 'data/', type: 'directory' },
    { name: 'data/old', content: 'old\n' },
  ];
  return layer(await makeTar(entries));
}

/** Deletes /etc/doomed, adds /etc/added, makes /data opaque with only /data/new. */
export async function changeLayer(compression: 'gzip' | 'zstd' = 'zstd'): Promise<BuiltLayer> {
  return layer(
    await makeTar([
      { name: 'etc/.wh.doomed' },
      { name: 'etc/added', content: 'added by the second layer\n' },
      { name: 'data/.wh..wh..opq' },
      { name: 'data/new', content: 'new\n' },
    ]),
    compression,
  );
}

export async function twoLayerImage(): Promise<ImageParts> {
  return image([await baseLayer(), await changeLayer()], { Cmd: ['/bin/sh'] });
}

export const CONFIGURED = {
  Entrypoint: ['/bin/sh', '-c'],
  Cmd: ['echo cmd; pwd; id -u; id -g; echo $GREETING $HOME'],
  Env: ['GREETING=hi', 'PATH=/bin'],
  WorkingDir: '/work/dir',
  User: 'app',
  ExposedPorts: { '8000/tcp': {} },
};

export async function configuredImage(): Promise<ImageParts> {
  return image([await baseLayer()], CONFIGURED);
}
