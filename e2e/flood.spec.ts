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

// A trace records DOM snapshots and a screencast: under a flood it would measure itself.
test.use({ trace: 'off' });

test('`yes` for 10 s leaves the page responsive and typing still echoes', async ({ page }) => {
  await newContainer(page);
  // Frame gaps measured inside the page: a starved main thread shows up as long gaps.
  await page.evaluate(() => {
    const gaps: number[] = [];
    (window as unknown as { frameGaps: number[] }).frameGaps = gaps;
    let last = performance.now();
    const tick = (now: number): void => {
      gaps.push(now - last);
      last = now;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  await run(page, 'yes');
  await waitForTerminalText(page, /^y$/m);
  await page.evaluate(() => (window as unknown as { frameGaps: number[] }).frameGaps.splice(0));
  await page.waitForTimeout(10_000);
  const gaps = await page.evaluate(() => (window as unknown as { frameGaps: number[] }).frameGaps.slice());
  // The page's controls still answer while the flood goes on.
  await page.getByRole('tab', { name: 'Inspector' }).click();
  await expect(page.getByRole('tab', { name: 'Inspector' })).toHaveAttribute('aria-selected', 'true');
  await page.getByRole('tab', { name: 'Stats' }).click();
  await activeTerminal(page).locator('.xterm').click();
  await page.keyboard.press('Control+C');
  await waitForPrompt(page);
  await run(page, 'echo "alive-$((6*7))"');
  await waitForTerminalText(page, /^alive-42$/m, 10_000);

  gaps.sort((a, b) => a - b);
  const p95 = gaps[Math.floor(gaps.length * 0.95)] ?? Infinity;
  const worst = gaps[gaps.length - 1] ?? Infinity;
  const summary = `${gaps.length} frames in 10 s, p95 gap ${p95.toFixed(0)} ms, worst ${worst.toFixed(0)} ms`;
  test.info().annotations.push({ type: 'frames', description: summary });
  expect(gaps.length, summary).toBeGreaterThan(100);
  expect(p95, summary).toBeLessThan(250);
  expect(worst, summary).toBeLessThan(1500);
  await screenshot(page, 'after-yes');
});
