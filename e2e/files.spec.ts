/**
 * Files in the browser: a file dropped on the terminal lands in the shell's working
 * directory (cat shows it), the Files panel downloads a file byte for byte and uploads
 * into a directory, and a file name made to look like HTML stays text.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Page } from '@playwright/test';
import {
  activeTerminal,
  expect,
  newContainer,
  run,
  screenshot,
  test,
  waitForPrompt,
  waitForTerminalText,
} from './helpers';

const XSS_NAME = '<img src=x onerror=window.__xss=1>';

/** Drops files on the terminal the way a browser does: dragenter, dragover, drop with a
 * DataTransfer holding them (given bytes, or as many zero bytes). */
async function dropFiles(page: Page, files: ({ name: string; base64: string } | { name: string; size: number })[]) {
  const transfer = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const file of list) {
      const bytes =
        'base64' in file ? Uint8Array.from(atob(file.base64), (c) => c.charCodeAt(0)) : new Uint8Array(file.size);
      dt.items.add(new File([bytes], file.name, { type: 'application/octet-stream' }));
    }
    return dt;
  }, files);
  const target = activeTerminal(page).locator('.xterm-screen');
  await target.dispatchEvent('dragenter', { dataTransfer: transfer });
  await target.dispatchEvent('dragover', { dataTransfer: transfer });
  await expect(page.locator('.drop-overlay')).toBeVisible();
  await target.dispatchEvent('drop', { dataTransfer: transfer });
  await expect(page.locator('.drop-overlay')).toBeHidden();
}

function filesPanel(page: Page) {
  return page.getByRole('tabpanel', { name: 'Files' });
}

test('a file dropped on the terminal lands in the shell’s working directory', async ({ page }) => {
  await newContainer(page);
  await run(page, 'mkdir -p /tmp/drop-here && cd /tmp/drop-here');
  await waitForTerminalText(page, /drop-here #$/m);

  const text = 'dropped through the browser\nsecond line\n';
  await dropFiles(page, [{ name: 'dropped.txt', base64: Buffer.from(text).toString('base64') }]);
  const uploads = page.getByRole('status', { name: 'Uploads' });
  await expect(uploads).toContainText('Uploaded dropped.txt to /tmp/drop-here');
  await expect(uploads.locator('progress')).toHaveJSProperty('value', text.length);

  await run(page, 'cat dropped.txt; echo cat-exit-$?');
  await waitForTerminalText(page, /^second line\ncat-exit-0$/m);
  await waitForTerminalText(page, /^dropped through the browser$/m);
});

test('the Files panel: a tree to expand, a download equal to the bytes, an upload, names as text', async ({
  page,
}, testInfo) => {
  await newContainer(page);
  const bytes = randomBytes(300 * 1024);
  const hex = bytes.subarray(0, 8).toString('hex');
  // The shell writes the file (the bytes come back through the download) and a file
  // whose name is markup.
  await dropFiles(page, [{ name: 'random.bin', base64: bytes.toString('base64') }]);
  await run(page, `mkdir -p /srv/data && mv random.bin /srv/data/ && touch '/srv/data/${XSS_NAME}'`);
  await run(page, `od -A n -t x1 -N 8 /srv/data/random.bin | tr -d ' \\n'; echo`);
  await waitForTerminalText(page, new RegExp(`^${hex}$`, 'm'));

  await page.getByRole('tab', { name: 'Files' }).click();
  const panel = filesPanel(page);
  const tree = panel.getByRole('list', { name: 'Files' });
  await expect(tree.getByRole('button', { name: 'Folder srv' })).toBeVisible();
  await expect(panel.getByRole('textbox', { name: 'Upload into' })).toHaveValue('/');
  await tree.getByRole('button', { name: 'Folder srv' }).click();
  await expect(tree.getByRole('button', { name: 'Folder srv' })).toHaveAttribute('aria-expanded', 'true');
  await tree.getByRole('button', { name: 'Folder data' }).click();
  const item = tree.locator('li[data-path="/srv/data/random.bin"]');
  await expect(item).toContainText('random.bin');
  await expect(item).toContainText('rw-');

  // The markup name is shown as the characters it is, and nothing ran.
  const xss = tree.locator(`li[data-path="/srv/data/${XSS_NAME}"]`);
  await expect(xss.locator('.file-name')).toHaveText(XSS_NAME);
  await expect(tree.locator('img')).toHaveCount(0);
  expect(await page.evaluate(() => (window as { __xss?: number }).__xss)).toBeUndefined();

  const download = page.waitForEvent('download');
  await item.getByRole('link', { name: 'Download random.bin' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toBe('random.bin');
  const saved = testInfo.outputPath('random.bin');
  await file.saveAs(saved);
  expect(Buffer.compare(await readFile(saved), bytes), 'the download equals the bytes written').toBe(0);

  // Upload into a directory from the panel: "Upload here" chooses it.
  const chooser = page.waitForEvent('filechooser');
  await tree.getByRole('button', { name: 'Upload into data' }).click();
  await (await chooser).setFiles({ name: 'from-panel.txt', mimeType: 'text/plain', buffer: Buffer.from('panel\n') });
  await expect(panel.getByRole('textbox', { name: 'Upload into' })).toHaveValue('/srv/data');
  await expect(tree.locator('li[data-path="/srv/data/from-panel.txt"]')).toBeVisible();
  await run(page, 'cat /srv/data/from-panel.txt');
  await waitForTerminalText(page, /^panel$/m);
  await screenshot(page, 'files-panel');

  // A directory downloads as a tar holding its files.
  const tarDownload = page.waitForEvent('download');
  await tree.locator('li[data-path="/srv/data"]').getByRole('link', { name: 'Download data as .tar' }).first().click();
  const tar = await tarDownload;
  expect(tar.suggestedFilename()).toBe('data.tar');
  const tarPath = testInfo.outputPath('data.tar');
  await tar.saveAs(tarPath);
  const tarBytes = await readFile(tarPath);
  expect(tarBytes.includes(Buffer.from('random.bin'))).toBe(true);
  expect(tarBytes.includes(bytes.subarray(0, 4096))).toBe(true);
  await waitForPrompt(page);
});

test('an upload over the cap is refused with the server’s words, and nothing is left', async ({
  page,
  consoleErrors,
}) => {
  await newContainer(page);
  await run(page, 'cd /tmp');
  await waitForTerminalText(page, /tmp #$/m);
  // The server's default cap is 64 MiB (--max-upload).
  await dropFiles(page, [{ name: 'too-big.bin', size: 64 * 1024 * 1024 + 1 }]);
  const uploads = page.getByRole('status', { name: 'Uploads' });
  await expect(uploads).toContainText(/Cannot upload too-big\.bin: .*cap of 64 ?MiB/, { timeout: 60_000 });
  // The browser logs the refused request itself.
  const logged = consoleErrors.findIndex((e) => /status of 413/.test(e));
  if (logged >= 0) consoleErrors.splice(logged, 1);
  await uploads.getByRole('button', { name: 'Dismiss: too-big.bin' }).click();
  await expect(uploads).toBeHidden();
  await run(page, 'ls -a /tmp | grep -c too-big; echo ls-done');
  await waitForTerminalText(page, /^0\nls-done$/m);
});
