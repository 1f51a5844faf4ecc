import {
  eventLog,
  expect,
  newContainer,
  readout,
  run,
  screenshot,
  test,
  waitForPrompt,
  waitForTerminalText,
} from './helpers';

// The seed README's fork loop: 30 background shells, each sleeping.
const FORK_LOOP = 'for i in $(seq 1 30); do sh -c "sleep 100" & done';

test('the pids graph climbs and a pids-limit event appears during the fork loop', async ({ page }) => {
  await newContainer(page, { pidsLimit: '20' });
  await expect(page.getByLabel('Current pids', { exact: true })).not.toHaveText('–');
  const before = await readout(page, 'Current pids');
  await run(page, FORK_LOOP);
  // ash reports the forks the kernel refused.
  await waitForTerminalText(page, /can't fork|Resource temporarily unavailable/i, 20_000);
  await expect.poll(() => readout(page, 'Current pids'), { timeout: 20_000 }).toBeGreaterThanOrEqual(15);
  expect(await readout(page, 'Current pids')).toBeLessThanOrEqual(20);
  expect(before).toBeLessThan(15);
  await expect(eventLog(page)).toContainText('pids limit hit', { timeout: 20_000 });
  await screenshot(page, 'pids-limit');
});

test('a memory hog under a 32m limit produces an OOM event', async ({ page }) => {
  await newContainer(page, { memory: '32m' });
  // tail keeps the current "line" of /dev/zero, which never ends: memory grows until the
  // kernel's OOM killer ends tail (the biggest process), and the shell lives on.
  await run(page, 'tail /dev/zero; echo "hog-status=$?"');
  await waitForTerminalText(page, /^hog-status=137$/m, 60_000);
  await expect(eventLog(page)).toContainText('OOM kill', { timeout: 20_000 });
  await expect(page.getByText(/OOM kills: [1-9]/)).toBeVisible();
  await run(page, 'echo "still-$((6*7))"');
  await waitForTerminalText(page, /^still-42$/m);
  await screenshot(page, 'oom');
});

test('raising the pids limit live lets the next fork loop go further', async ({ page }) => {
  await newContainer(page, { pidsLimit: '20' });
  await run(page, FORK_LOOP);
  await expect.poll(() => readout(page, 'Current pids'), { timeout: 20_000 }).toBeGreaterThanOrEqual(15);
  await waitForPrompt(page);
  const capped = await readout(page, 'Current pids');
  expect(capped).toBeLessThanOrEqual(20);

  // End the sleepers with builtins only (the cgroup has no room for another fork): in a
  // PID namespace, kill -1 reaches every process but the caller and init, here the same.
  await run(page, 'kill -9 -1; wait; echo "cleared-$((1+1))"');
  await waitForTerminalText(page, /^cleared-2$/m, 20_000);
  await expect.poll(() => readout(page, 'Current pids'), { timeout: 20_000 }).toBeLessThanOrEqual(3);

  const limits = page.getByRole('form', { name: 'Limits' });
  await limits.getByLabel('Pids limit').fill('100');
  await limits.getByRole('button', { name: 'Apply limits' }).click();
  await expect(limits.getByRole('status')).toContainText('Limits applied');
  await expect(page.getByText('limit 100', { exact: true })).toBeVisible({ timeout: 10_000 });

  await run(page, FORK_LOOP);
  await expect.poll(() => readout(page, 'Current pids'), { timeout: 20_000 }).toBeGreaterThan(20);
  await screenshot(page, 'pids-raised');
});

test('a refused limit says why', async ({ page, consoleErrors }) => {
  await page.goto('/');
  const form = page.getByRole('form', { name: 'Create a container' });
  await form.getByLabel('Memory').fill('lots');
  await form.getByRole('button', { name: 'New container' }).click();
  await expect(form.getByRole('alert')).toContainText(/memory/i);
  await expect(form.getByRole('alert')).toContainText('INVALID_ARGUMENT');
  await expect(page.getByRole('list', { name: 'Your containers' }).getByRole('listitem')).toHaveCount(0);
  // Chromium logs the 400 response itself; that one is expected.
  const logged = consoleErrors.findIndex((e) => /status of 400/.test(e));
  if (logged >= 0) consoleErrors.splice(logged, 1);
});
