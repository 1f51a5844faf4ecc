import { expect, newContainer, screenshot, test } from './helpers';
import type { Locator } from '@playwright/test';

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

/** The packets of "3 packets, 252 B (+1)". */
async function packets(cell: Locator): Promise<number> {
  return Number(/^(\d+) packets/.exec((await cell.textContent()) ?? '')?.[1] ?? NaN);
}

test("the inspector's Network section shows eth0, its route and the host's end of the pair on br0, whose counters grow with a ping", async ({
  page,
}) => {
  const id = await newContainer(page, { hostname: 'net-a' });
  // A neighbour on the session's network, made with the session's cookie.
  const neighbour = await page.request.post('/api/containers', { data: { hostname: 'net-b', cmd: ['sleep', '600'] } });
  expect(neighbour.status()).toBe(201);
  await page.getByRole('tab', { name: 'Inspector' }).click();
  const network = page.getByRole('region', { name: 'Inspector' }).getByRole('region', { name: 'Network' });

  const inside = network.getByRole('group', { name: 'Inside the container' });
  const interfaces = inside.getByRole('table', { name: 'Interfaces' });
  const eth0 = interfaces
    .getByRole('row')
    .filter({ has: page.getByRole('rowheader', { name: /^eth0 #\d+ · veth · [0-9a-f:]{17}$/ }) });
  await expect(eth0.getByRole('cell').nth(0)).toHaveText('up');
  await expect(eth0.getByRole('cell').nth(1)).toHaveText(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
  await expect(interfaces.getByRole('rowheader', { name: /^lo #1\b/ })).toBeVisible();
  await expect(inside.getByRole('table', { name: 'Traffic' }).getByRole('rowheader', { name: 'eth0' })).toBeVisible();
  const address = ((await eth0.getByRole('cell').nth(1).textContent()) ?? '').split('/')[0]!;
  const route = inside.getByRole('table', { name: 'Routes' }).getByRole('row').nth(1);
  await expect(route.getByRole('cell').nth(2)).toHaveText('eth0');
  await expect(route.getByRole('cell').nth(3)).toHaveText(address);

  const host = network.getByRole('group', { name: 'The host side' });
  await expect(host.getByText(`md${id.slice(0, 12)}`, { exact: true })).toBeVisible();
  await expect(host.getByText('br0', { exact: true })).toBeVisible();
  const received = host.locator('dt:text-is("Received") + dd');
  const before = await packets(received);

  const ping = await page.request.post(`/api/containers/${id}/exec`, {
    data: { cmd: ['ping', '-c', '3', 'net-b'], timeoutMs: 15_000 },
  });
  expect(ping.status()).toBe(200);
  expect(((await ping.json()) as { exitCode: number }).exitCode).toBe(0);
  // The inspector refreshes itself: the peer receives what eth0 sent.
  await expect.poll(() => packets(received), { timeout: 10_000 }).toBeGreaterThanOrEqual(before + 3);
  await host.scrollIntoViewIfNeeded();
  await screenshot(page, 'inspector-network');
});
