import { expect, newContainer, screenshot, test } from './helpers';

test('the inspector shows an isolated PID namespace with sh as PID 1 on a host PID > 1', async ({ page }) => {
  await newContainer(page, { hostname: 'inspected' });
  await page.getByRole('tab', { name: 'Inspector' }).click();
  const inspector = page.getByRole('region', { name: 'Inspector' });

  const namespaces = inspector.getByRole('table', { name: 'Namespaces' });
  const pidRow = namespaces.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'pid', exact: true }) });
  await expect(pidRow).toHaveCount(1);
  await expect(pidRow.getByRole('cell').nth(2)).toHaveText('isolated');
  const [hostInode, containerInode] = await Promise.all([
    pidRow.getByRole('cell').nth(0).textContent(),
    pidRow.getByRole('cell').nth(1).textContent(),
  ]);
  expect(Number(hostInode)).toBeGreaterThan(0);
  expect(Number(containerInode)).toBeGreaterThan(0);
  expect(containerInode).not.toBe(hostInode);

  const utsRow = namespaces.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'uts', exact: true }) });
  await expect(utsRow.getByRole('cell').nth(2)).toHaveText('isolated');
  await expect(inspector.getByText('Hostname inside')).toBeVisible();
  await expect(inspector.locator('dd').first()).toHaveText('inspected');

  const processes = inspector.getByRole('table', { name: 'Processes' });
  const init = processes
    .getByRole('row')
    .filter({ has: page.getByRole('cell', { name: '1', exact: true }) })
    .first();
  const cells = init.getByRole('cell');
  await expect(cells.nth(0)).toHaveText('1');
  const hostPid = Number(await cells.nth(1).textContent());
  expect(hostPid).toBeGreaterThan(1);
  await expect(cells.nth(3)).toContainText('sh');
  await screenshot(page, 'inspector');
});
