/**
 * Images on the page: the picker says what each image is, Save keeps a container's work as
 * an image of the session's own that a new container starts from, and the teacher console
 * pulls images with the registry's error shown in one line.
 */
import { expect, newContainer, run, screenshot, test, waitForPrompt, waitForTerminalText } from './helpers';

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
