/**
 * A phone: the key bar above the on-screen keyboard sends what a touch keyboard lacks
 * (sticky Ctrl then c is ^C, Tab completes, arrows recall), without ever taking the
 * focus from the terminal. On a desktop it is not there.
 */
import type { Page } from '@playwright/test';
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

/** Whether the terminal's own input (xterm's textarea) has the focus. */
async function terminalHasFocus(page: Page): Promise<boolean> {
  return page.evaluate(() => document.activeElement?.classList.contains('xterm-helper-textarea') ?? false);
}

test.describe('on a phone', () => {
  test.use({
    viewport: { width: 390, height: 740 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });

  test('the key bar sends Ctrl-C, Tab and arrows to the shell and keeps the focus on the terminal', async ({
    page,
  }) => {
    await page.goto('/');
    expect(await page.evaluate(() => matchMedia('(pointer: coarse)').matches)).toBe(true);
    const bar = page.getByRole('toolbar', { name: 'Terminal keys' });
    await expect(bar, 'no terminal yet: no key bar').toBeHidden();

    await newContainer(page);
    await expect(bar).toBeVisible();
    const key = (name: string) => bar.getByRole('button', { name, exact: true });
    const ctrl = key('Control');

    // Ctrl, then c on the (on-screen) keyboard: ^C for the foreground sleep.
    await run(page, 'sleep 100');
    await expect.poll(() => terminalText(page)).toMatch(/sleep 100\s*$/);
    await ctrl.tap();
    await expect(ctrl).toHaveAttribute('aria-pressed', 'true');
    expect(await terminalHasFocus(page), 'tapping the bar left the focus on the terminal').toBe(true);
    await activeTerminal(page).scrollIntoViewIfNeeded();
    await screenshot(page, 'touch-key-bar');
    await page.keyboard.type('c');
    await expect(ctrl, 'Ctrl applies to one key').toHaveAttribute('aria-pressed', 'false');
    await page.keyboard.type('echo interrupted-$((40+2))\n', { delay: 5 });
    // Were sleep still running, the echo would wait 100 s.
    await waitForTerminalText(page, /^interrupted-42$/m, 5_000);
    await expect.poll(() => terminalText(page)).toContain('^C');

    // Tab from the bar completes a path.
    await page.keyboard.type('echo completed-$((2*21)) > /tmp/keybar-target-file\n', { delay: 5 });
    await waitForPrompt(page);
    await page.keyboard.type('cat /tmp/keybar-tar', { delay: 5 });
    await key('Tab').tap();
    await waitForTerminalText(page, /cat \/tmp\/keybar-target-file ?$/m);
    await page.keyboard.press('Enter');
    await waitForTerminalText(page, /^completed-42$/m);

    // Up recalls the last command; Ctrl then a bar key is the modified key (Ctrl-Left
    // moves a word in ash, leaving the line as it was).
    const catLines = async (): Promise<number> =>
      (await terminalText(page)).match(/# cat \/tmp\/keybar-target-file ?$/gm)?.length ?? 0;
    await key('Up arrow').tap();
    await expect.poll(catLines).toBe(2);
    await ctrl.tap();
    await key('Left arrow').tap();
    await expect(ctrl).toHaveAttribute('aria-pressed', 'false');
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await terminalText(page)).match(/^completed-42$/gm)?.length ?? 0).toBe(2);

    // Symbols the on-screen keyboard hides on another page.
    for (const name of ['Slash', 'Dash', 'Pipe', 'Tilde']) await key(name).tap();
    await waitForTerminalText(page, /# \/-\|~$/m);
    await key('Escape').tap();
    expect(await terminalHasFocus(page)).toBe(true);
  });
});

test('on a desktop there is no key bar', async ({ page }) => {
  await page.goto('/');
  await newContainer(page);
  expect(await page.evaluate(() => matchMedia('(pointer: coarse)').matches)).toBe(false);
  await expect(page.locator('.key-bar')).toBeHidden();
});
