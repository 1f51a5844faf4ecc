/**
 * Random names and ids from the kernel's generator. node:crypto's randomBytes gives the
 * same bytes, but loading node:crypto costs a CLI's start about 6 ms (bench/PROFILE.md, the
 * CLI's start), and the runtime needs nothing else from it.
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** `bytes` random bytes from /dev/urandom, as lowercase hex (twice as many characters). */
export function randomHex(bytes: number): string {
  const buffer = Buffer.alloc(bytes);
  const fd = openSync('/dev/urandom', 'r');
  try {
    for (let done = 0; done < bytes;) {
      const read = readSync(fd, buffer, done, bytes - done, null);
      if (read === 0) throw new Error('/dev/urandom: unexpected end of file');
      done += read;
    }
  } finally {
    closeSync(fd);
  }
  return buffer.toString('hex');
}
