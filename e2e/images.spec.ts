/**
 * Images on the page: the picker says what each image is, Save keeps a container's work as
 * an image of the session's own that a new container starts from, and the teacher console
 * pulls images with the registry's error shown in one line.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { expect, newContainer, run, screenshot, test, waitForPrompt, waitForTerminalText } from './helpers';

const cli = fileURLToPath(new URL('../server/dist/src/cli/main.js', import.meta.url));

function blob(mediaType: string, bytes: Buffer) {
  return { mediaType, bytes, size: bytes.length, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

async function oneFileTar(name: string, content: string): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
  p.entry({ name, size: Buffer.byteLength(content), mode: 0o644, mtime: new Date(1_700_000_000_000) }, content);
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** A registry on loopback with one small image, web:1, exposing 8080 and saying what it is. */
async function loopbackRegistry(): Promise<{ server: Server; reference: string }> {
  const tar = await oneFileTar('hello.txt', 'hello from the registry\n');
  const layer = blob('application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(tar));
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const config = blob(
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {
          Cmd: ['/bin/sh'],
          ExposedPorts: { '8080/tcp': {} },
          Labels: { 'org.opencontainers.image.description': 'an e2e web image' },
        },
        rootfs: { type: 'layers', diff_ids: [diffId] },
      }),
    ),
  );
  const manifest = blob(
    'application/vnd.oci.image.manifest.v1+json',
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      }),
    ),
  );
  const blobs = new Map([config, layer].map((b) => [`/v2/e2e-web/blobs/${b.digest}`, b]));
  const server = createServer((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200).end('{}');
    if (req.url === '/v2/e2e-web/manifests/1') {
      return void res.writeHead(200, { 'content-type': manifest.mediaType }).end(manifest.bytes);
    }
    const found = blobs.get(req.url ?? '');
    if (found) return void res.writeHead(200).end(found.bytes);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, reference: `127.0.0.1:${(server.address() as AddressInfo).port}/e2e-web:1` };
}

test('the image picker describes the images', async ({ page }) => {
  await page.goto('/');
  const form = page.getByRole('form', { name: 'Create a container' });
  const picker = form.getByLabel('Image');
  await expect(picker.locator('option', { hasText: /^busybox \(.+\) — BusyBox/ })).toHaveCount(1);
  await picker.selectOption('busybox');
  await expect(picker).toHaveAccessibleDescription(/BusyBox/);
});

test('Save keeps the container’s work as an image a new container starts from', async ({ page }) => {
  const first = await newContainer(page);
  await run(page, 'echo "saved-$((6*7))" > /saved.txt');
  const item = page.locator(`[data-container-id="${first}"]`);
  await item.getByRole('button', { name: /^Save .* as an image$/ }).click();
  const status = page.locator('.save-status');
  await expect(status).toContainText(/Saved .* as saved\.invalid\/local\/[0-9a-f]{8}:\d+/, { timeout: 60_000 });
  const name = /as (saved\.invalid\/\S+):/.exec((await status.textContent()) ?? '')?.[1];
  expect(name).toBeTruthy();
  // The picker offers it, already picked: New container starts from it.
  const form = page.getByRole('form', { name: 'Create a container' });
  await expect(form.getByLabel('Image')).toHaveValue(name!);
  await form.getByRole('button', { name: 'New container' }).click();
  await expect(page).not.toHaveURL(new RegExp(`#/containers/${first}`));
  await waitForPrompt(page);
  await run(page, 'cat /saved.txt');
  await waitForTerminalText(page, /^saved-42$/m);
  await screenshot(page, 'images-save');
});

test('the teacher console pulls an image and shows a refusal in one line', async ({ page, consoleErrors }) => {
  await page.goto('/teacher');
  const pull = page.getByRole('form', { name: 'Pull an image' });
  await pull.getByLabel('Image reference').fill('Not A Reference');
  await pull.getByRole('button', { name: 'Pull' }).click();
  await expect(pull.getByRole('alert')).toContainText(/Cannot pull Not A Reference: invalid reference/);
  await expect(pull.getByRole('button', { name: 'Pull' })).toBeEnabled();
  // The browser logs the 400 it was answered; that one is expected.
  const logged = consoleErrors.findIndex((e) => /status of 400/.test(e));
  if (logged >= 0) consoleErrors.splice(logged, 1);
});

test('the teacher pulls an image with a progress bar per layer; students then see it described', async ({ page }) => {
  const { server, reference } = await loopbackRegistry();
  try {
    await page.goto('/teacher');
    const pull = page.getByRole('form', { name: 'Pull an image' });
    await pull.getByLabel('Image reference').fill(reference);
    await pull.getByRole('button', { name: 'Pull' }).click();
    await expect(pull.getByRole('status')).toContainText(`Pulled ${reference}`, { timeout: 60_000 });
    await expect(pull.getByRole('progressbar', { name: /^Layer [0-9a-f]{12}: done/ })).toHaveCount(1);
    // The class form's picker has it, described.
    await expect(
      page.getByRole('form', { name: 'Create a class' }).getByLabel('Image').locator('option', { hasText: reference }),
    ).toContainText('an e2e web image');
    await screenshot(page, 'images-pull');

    await page.goto('/');
    const picker = page.getByRole('form', { name: 'Create a container' }).getByLabel('Image');
    await picker.selectOption(reference);
    await expect(picker).toHaveAccessibleDescription('an e2e web image · serves on 8080');
  } finally {
    server.close();
    // The server's store is the machine's: the test's image goes again.
    execFileSync(process.execPath, [cli, 'rmi', reference], { stdio: 'ignore' });
  }
});
