import {
  activeTerminal,
  expect,
  newContainer,
  run,
  screenshot,
  terminalText,
  test,
  waitForPrompt,
  waitForTerminalText,
} from './helpers';

test('one click on "New container" gives a root shell', async ({ page }) => {
  await page.goto('/');
  await page.getByRole('button', { name: 'New container' }).click();
  await waitForPrompt(page);
  // The terminal has the focus: typing needs no click first.
  await page.keyboard.type('echo "uid=$(id -u)"');
  await page.keyboard.press('Enter');
  await waitForTerminalText(page, /^uid=0$/m);
  await expect(page.getByRole('listitem').filter({ hasText: 'running' })).toHaveCount(1);
  await screenshot(page, 'shell');
});

test('the shell is PID 1 of its container and has the hostname asked for', async ({ page }) => {
  await newContainer(page, { hostname: 'lesson-one' });
  await run(page, 'echo "pid=$$"');
  await waitForTerminalText(page, /^pid=1$/m);
  await run(page, 'echo "host=$(hostname)"');
  await waitForTerminalText(page, /^host=lesson-one$/m);
});

test('a reload comes back to the same shell with its earlier output on screen', async ({ page }) => {
  const id = await newContainer(page);
  // A shell variable lives only in that shell process: seeing it after the reload proves
  // the page reattached to the same shell rather than starting a new one.
  await run(page, 'REMEMBERED=kept-$((40+2)); echo "before=$REMEMBERED"');
  await waitForTerminalText(page, /^before=kept-42$/m);
  await page.reload();
  await expect(page).toHaveURL(new RegExp(`#/containers/${id}`));
  await waitForTerminalText(page, /^before=kept-42$/m);
  await run(page, 'echo "after=$REMEMBERED"');
  await waitForTerminalText(page, /^after=kept-42$/m);
});

test('`yes` for 10 s leaves the page responsive and typing still echoes', async ({ page }) => {
  await newContainer(page);
  await run(page, 'yes');
  await waitForTerminalText(page, /^y$/m);
  const started = Date.now();
  const delays: number[] = [];
  while (Date.now() - started < 10_000) {
    // A round trip into the page's event loop: long if xterm or the socket starves it.
    const before = Date.now();
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(null))));
    delays.push(Date.now() - before);
    await page.waitForTimeout(250);
  }
  // The page's controls still answer while the flood goes on.
  await page.getByRole('tab', { name: 'Inspector' }).click();
  await expect(page.getByRole('tab', { name: 'Inspector' })).toHaveAttribute('aria-selected', 'true');
  await page.getByRole('tab', { name: 'Stats' }).click();
  await activeTerminal(page).locator('.xterm').click();
  await page.keyboard.press('Control+C');
  await waitForPrompt(page);
  await run(page, 'echo "alive-$((6*7))"');
  await waitForTerminalText(page, /^alive-42$/m, 10_000);
  delays.sort((a, b) => a - b);
  const worst = delays[delays.length - 1] ?? 0;
  const median = delays[Math.floor(delays.length / 2)] ?? 0;
  expect(median, `frame delays ${delays.join(',')}`).toBeLessThan(250);
  expect(worst, `frame delays ${delays.join(',')}`).toBeLessThan(2000);
  await screenshot(page, 'after-yes');
});

test('copy and paste with Ctrl+Shift+C and Ctrl+Shift+V', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await newContainer(page);
  await page.evaluate(() => navigator.clipboard.writeText('echo "pasted-$((2*21))"'));
  await activeTerminal(page).locator('.xterm').click();
  await page.keyboard.press('Control+Shift+V');
  await expect.poll(() => terminalText(page)).toContain('echo "pasted-$((2*21))"');
  await page.keyboard.press('Enter');
  await waitForTerminalText(page, /^pasted-42$/m);
  // Select the output line with the mouse and copy it with the terminal's shortcut.
  await page.evaluate(() => navigator.clipboard.writeText(''));
  const rows = activeTerminal(page).locator('.xterm-rows > div');
  const texts = await rows.allTextContents();
  const index = texts.findIndex((text) => text.replace(/\u00a0/g, ' ').trim() === 'pasted-42');
  expect(index).toBeGreaterThanOrEqual(0);
  const box = await rows.nth(index).boundingBox();
  if (!box) throw new Error('the output row has no box');
  await page.mouse.move(box.x + 1, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + 200, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.keyboard.press('Control+Shift+C');
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toContain('pasted-42');
});

test('the font size control changes the terminal text size', async ({ page }) => {
  await newContainer(page);
  const rowHeight = async (): Promise<number> =>
    activeTerminal(page)
      .locator('.xterm-rows > div')
      .first()
      .evaluate((row) => row.getBoundingClientRect().height);
  const before = await rowHeight();
  await page.getByLabel('Font size').fill('24');
  await page.getByLabel('Font size').press('Enter');
  await page.getByLabel('Font size').blur();
  await expect.poll(rowHeight).toBeGreaterThan(before);
  await waitForPrompt(page);
});
