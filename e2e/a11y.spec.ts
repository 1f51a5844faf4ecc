/**
 * Accessibility: axe-core finds no serious or critical violation on the student page
 * (empty, with a container, each details tab), the teacher console and a class's board,
 * and the lesson view; the screen reader mode toggle gives the terminal xterm.js's
 * accessibility tree and is remembered across a reload.
 */
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import {
  activeTerminal,
  expect,
  newContainer,
  run,
  test,
  waitForPrompt,
  waitForTerminalText,
  watchConsole,
} from './helpers';

const BLOCKING = new Set(['serious', 'critical']);

/** The serious and critical violations on the page as it is now, one line per node. */
async function seriousViolations(page: Page, view: string): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  const found: string[] = [];
  for (const violation of results.violations) {
    if (!BLOCKING.has(violation.impact ?? '')) continue;
    for (const node of violation.nodes) {
      found.push(`${view}: ${violation.impact} ${violation.id} (${violation.help}) at ${node.target.join(' ')}`);
    }
  }
  return found;
}

async function expectNoSeriousViolations(page: Page, view: string): Promise<void> {
  expect(await seriousViolations(page, view), `axe on ${view}`).toEqual([]);
}

test('the student page: empty, with a container, on each details tab, in both themes', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('form', { name: 'Create a container' })).toBeVisible();
  await expectNoSeriousViolations(page, 'the empty student page');

  await newContainer(page);
  await run(page, 'echo hello-axe');
  await waitForTerminalText(page, /^hello-axe$/m);
  await expectNoSeriousViolations(page, 'the student page (Stats)');
  await page.getByRole('tab', { name: 'Inspector' }).click();
  await expect(page.getByRole('tabpanel', { name: 'Inspector' }).locator('table').first()).toBeVisible();
  await expectNoSeriousViolations(page, 'the student page (Inspector)');
  await page.getByRole('tab', { name: 'Files' }).click();
  await expect(page.getByRole('button', { name: 'Folder bin' })).toBeVisible();
  await page.getByRole('button', { name: 'Folder etc' }).click();
  await expect(page.getByRole('link', { name: 'Download passwd' })).toBeVisible();
  await expectNoSeriousViolations(page, 'the student page (Files)');
  await page.getByLabel('Theme').selectOption('light');
  await expectNoSeriousViolations(page, 'the student page (light theme)');
});

test('the teacher console and a class board with a student', async ({ page, browser }) => {
  test.setTimeout(180_000);
  let classId: string | null = null;
  const student = await browser.newContext();
  try {
    await page.goto('/teacher');
    const form = page.getByRole('form', { name: 'Create a class' });
    await form.getByLabel('Class name').fill('Accessible class');
    await form.getByRole('button', { name: 'Create class' }).click();
    const item = page.locator('.class-item').filter({ hasText: 'Accessible class' }).first();
    await expect(item).toBeVisible();
    await expectNoSeriousViolations(page, 'the teacher console');

    const joinPath = new URL((await item.locator('.join-link').textContent()) ?? '').pathname;
    await item.getByRole('link', { name: 'Open the class' }).click();
    await expect(page).toHaveURL(/\/teacher\/classes\/[^/]+$/);
    classId = decodeURIComponent(/\/teacher\/classes\/([^/]+)$/.exec(page.url())![1]!);

    const studentPage = await student.newPage();
    const errors: string[] = [];
    watchConsole(studentPage, errors);
    await studentPage.goto(joinPath);
    await expectNoSeriousViolations(studentPage, 'the join page');
    await studentPage.getByLabel('Your name').fill('Ada');
    await studentPage.getByRole('button', { name: 'Join the class' }).click();
    await studentPage.getByRole('button', { name: 'New container' }).click();
    await waitForPrompt(studentPage);
    await expectNoSeriousViolations(studentPage, 'the student page in a class');

    const card = page.locator('.student-card').filter({ hasText: 'Ada' });
    await expect(card).toBeVisible();
    await expect(card.locator('.mini-screen')).toContainText('#');
    await expectNoSeriousViolations(page, 'the class board');
    await card.getByRole('button', { name: 'Watch Ada’s terminal' }).click();
    await expect(page.locator('.student-dialog .terminal-view')).toBeVisible();
    await expectNoSeriousViolations(page, 'the class board’s student view');
    expect(errors, 'the student page logged errors').toEqual([]);
  } finally {
    if (classId) await page.request.delete(`/api/classes/${encodeURIComponent(classId)}`);
    await student.close();
  }
});

test('the lesson view', async ({ page }) => {
  await page.goto('/');
  const form = page.getByRole('form', { name: 'Create a container' });
  await form.getByLabel('Lesson').selectOption({ label: 'UTS namespace: a hostname of your own' });
  await form.getByRole('button', { name: 'New container' }).click();
  await waitForPrompt(page);
  const panel = page.getByRole('tabpanel', { name: 'Lesson' });
  await expect(panel.getByRole('heading', { name: 'Step 1 of 3: Rename the container' })).toBeVisible();
  await expectNoSeriousViolations(page, 'the lesson view');
  await run(page, 'hostname axe-box');
  await expect(panel.locator('.lesson-steps li[data-step-id="rename"]')).toHaveAttribute('data-done', 'true');
  await expectNoSeriousViolations(page, 'the lesson view with a step done');
});

test('screen reader mode gives the terminal an accessibility tree and is remembered', async ({ page }) => {
  await newContainer(page);
  const toggle = page.getByRole('checkbox', { name: 'Screen reader mode' });
  await expect(toggle).not.toBeChecked();
  const tree = activeTerminal(page).locator('.xterm-accessibility-tree');
  await expect(tree).toHaveCount(0);
  await toggle.check();
  await expect(tree).toHaveCount(1);
  await run(page, 'echo spoken-$((6*7))');
  await expect(tree).toContainText('spoken-42');

  await page.reload();
  await waitForPrompt(page);
  await expect(toggle).toBeChecked();
  await expect(activeTerminal(page).locator('.xterm-accessibility-tree')).toHaveCount(1);
  await expectNoSeriousViolations(page, 'the student page in screen reader mode');
  await toggle.uncheck();
  await expect(activeTerminal(page).locator('.xterm-accessibility-tree')).toHaveCount(0);
});
