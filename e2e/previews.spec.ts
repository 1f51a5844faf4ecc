import { expect, newContainer, run, screenshot, test, unnamedControls } from './helpers';

test('a web server in the container shows in Ports with a preview link that serves its page', async ({ page }) => {
  await newContainer(page, { hostname: 'previewed' });
  const ports = page.getByRole('region', { name: 'Ports' });
  await expect(ports).toBeVisible();
  await expect(ports.getByText('Nothing is listening yet')).toBeVisible();

  await run(page, 'mkdir -p /tmp/www && echo hello-preview > /tmp/www/index.html && httpd -p 8000 -h /tmp/www');

  // The stats stream's `ports` message (checked on each sample) adds it: no reload.
  const list = ports.getByRole('list', { name: 'Listening ports' });
  await expect(list.getByRole('listitem')).toHaveCount(1, { timeout: 10_000 });
  await expect(list.getByRole('listitem').first()).toContainText('8000');
  await expect(ports.getByText('Nothing is listening yet')).toHaveCount(0);

  const open = ports.getByRole('link', { name: /^Open preview of port 8000/ });
  await expect(open).toHaveAttribute('target', '_blank');
  await expect(open).toHaveAttribute('rel', 'noopener noreferrer');
  const href = await open.getAttribute('href');
  expect(href).not.toBeNull();
  const url = new URL(href!);
  const serverPort = new URL(page.url()).port;
  expect(url.host).toMatch(new RegExp(`^[a-z2-7]+-8000\\.preview\\.localhost:${serverPort}$`));
  expect(url.origin).not.toBe(new URL(page.url()).origin);
  await expect(ports.getByRole('button', { name: 'Copy the preview link of port 8000' })).toBeVisible();
  expect(await unnamedControls(page)).toEqual([]);

  await screenshot(page, 'ports');

  // Chromium resolves *.localhost to loopback itself: the preview opens in a page of its own.
  const preview = await page.context().newPage();
  const response = await preview.goto(url.toString());
  expect(response?.status()).toBe(200);
  await expect(preview.locator('body')).toContainText('hello-preview');
  await preview.close();
});
