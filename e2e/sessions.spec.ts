import { deleteAllContainers, expect, newContainer, screenshot, test, watchConsole } from './helpers';

test('two browsers (two sessions) do not see each other’s containers', async ({ page, browser }) => {
  const aliceId = await newContainer(page, { hostname: 'alice' });

  const bobContext = await browser.newContext();
  const bobErrors: string[] = [];
  try {
    const bob = await bobContext.newPage();
    watchConsole(bob, bobErrors);
    await bob.goto('/');
    await expect(bob.getByText('No containers yet')).toBeVisible();
    await expect(bob.locator(`li[data-container-id="${aliceId}"]`)).toHaveCount(0);
    // Not even by asking for it: another session's container does not exist for Bob.
    const peek = await bobContext.request.get(`/api/containers/${aliceId}`);
    expect(peek.status()).toBe(404);

    const bobId = await newContainer(bob, { hostname: 'bob' });
    await expect(bob.getByRole('list', { name: 'Your containers' }).getByRole('listitem')).toHaveCount(1);
    await page.reload();
    await expect(page.getByRole('list', { name: 'Your containers' }).getByRole('listitem')).toHaveCount(1);
    await expect(page.locator(`li[data-container-id="${bobId}"]`)).toHaveCount(0);
    await expect(page.locator(`li[data-container-id="${aliceId}"]`)).toHaveCount(1);
    await screenshot(bob, 'second-session');
  } finally {
    await deleteAllContainers(bobContext);
    await bobContext.close();
  }
  expect(bobErrors, 'the second page logged errors').toEqual([]);
});

test('Delete removes the container', async ({ page, context }) => {
  const id = await newContainer(page);
  const item = page.locator(`li[data-container-id="${id}"]`);
  await item.getByRole('button', { name: /^Delete/ }).click();
  // Two steps, so a stray click does not end a student's work.
  await item.getByRole('button', { name: /^Confirm delete/ }).click();
  await expect(item).toHaveCount(0, { timeout: 20_000 });
  await expect(page.getByText('No containers yet')).toBeVisible();
  await expect(page).not.toHaveURL(/#\/containers\//);
  const gone = await context.request.get(`/api/containers/${id}`);
  expect(gone.status()).toBe(404);
  const list = await context.request.get('/api/containers');
  expect(((await list.json()) as { id: string }[]).map((c) => c.id)).not.toContain(id);
});
