/**
 * Lessons in the browser: a student picks the UTS lesson when creating a container, and
 * each step ticks by itself (no "Check now") once the kernel shows it done; a lesson's
 * Markdown renders inert whatever it holds (a hostile lesson text fed to the real page);
 * a teacher opens a class with the pids-cgroup lesson and sees a student's step advance
 * on the board.
 */
import type { Browser, BrowserContext, Page } from '@playwright/test';
import type { ContainerLessonJson } from '../server/src/protocol/index';
import { expect, run, screenshot, terminalText, test, waitForPrompt, watchConsole } from './helpers';

const UTS_TITLE = 'UTS namespace: a hostname of your own';
/** The bound: a kernel check ticks within seconds of the action, unasked. */
const TICK_MS = 5000;

async function newLessonContainer(page: Page, lessonTitle: string): Promise<string> {
  await page.goto('/');
  const form = page.getByRole('form', { name: 'Create a container' });
  await form.getByLabel('Lesson').selectOption({ label: lessonTitle });
  await form.getByRole('button', { name: 'New container' }).click();
  await expect(page).toHaveURL(/#\/containers\/[^/]+/);
  await waitForPrompt(page);
  return decodeURIComponent(/#\/containers\/([^/]+)/.exec(page.url())![1]!);
}

function lessonPanel(page: Page) {
  return page.getByRole('tabpanel', { name: 'Lesson' });
}

function step(page: Page, id: string) {
  return lessonPanel(page).locator(`.lesson-steps li[data-step-id="${id}"]`);
}

test('the UTS lesson: each step ticks by itself as the student works', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await newLessonContainer(page, UTS_TITLE);

  // The container made for a lesson opens on it: title, steps, the first step's text.
  await expect(page.getByRole('tab', { name: 'Lesson' })).toHaveAttribute('aria-selected', 'true');
  const panel = lessonPanel(page);
  await expect(panel.getByRole('heading', { name: UTS_TITLE })).toBeVisible();
  await expect(panel.locator('.lesson-steps li')).toHaveCount(3);
  await expect(step(page, 'rename')).toHaveAttribute('data-done', 'false');
  await expect(panel.getByRole('heading', { name: 'Step 1 of 3: Rename the container' })).toBeVisible();
  await expect(panel.locator('.lesson-text pre')).toContainText('hostname my-box');
  await expect(panel.locator('.lesson-text script, .lesson-text [onerror], .lesson-text iframe')).toHaveCount(0);

  // Copy puts the block on the clipboard and nothing in the terminal.
  const before = await terminalText(page);
  await panel.getByRole('button', { name: /^Copy the code: hostname/ }).click();
  await expect(panel.getByRole('button', { name: /^Copy the code: hostname/ })).toHaveText('Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('hostname\nhostname my-box\nhostname');
  expect(await terminalText(page)).toBe(before);

  // Step 1: any new name. No "Check now": the kernel check sees it on the next sample.
  await run(page, 'hostname e2e-box');
  const typedAt = Date.now();
  await expect(step(page, 'rename')).toHaveAttribute('data-done', 'true', { timeout: TICK_MS });
  const tickMs = Date.now() - typedAt;
  console.log(`lessons: the rename step ticked ${tickMs} ms after the command`);
  expect(tickMs).toBeLessThan(TICK_MS);
  await expect(page.locator('.lesson-announcer')).toHaveText(/Step done: Rename the container/);
  await expect(page.locator('.lesson-announcer')).toHaveAttribute('aria-live', 'polite');
  // The step just done stays on screen, marked, with the way on.
  await expect(panel.locator('.lesson-step-badge')).toBeVisible();
  await expect(panel.getByRole('button', { name: 'Next: Choose an exact name' })).toBeVisible();
  await expect(panel.locator('.lesson-progress')).toHaveText('1 of 3 done');
  await screenshot(page, 'lesson-uts');

  await panel.getByRole('button', { name: 'Next: Choose an exact name' }).click();
  await expect(panel.getByRole('heading', { name: 'Step 2 of 3: Choose an exact name' })).toBeVisible();
  // Clicking a step shows its text, done or not.
  await step(page, 'nested').getByRole('button').click();
  await expect(panel.getByRole('heading', { name: 'Step 3 of 3: A namespace inside the namespace' })).toBeVisible();
  await expect(panel.locator('.lesson-text pre')).toContainText('unshare -u sh');

  // Steps count in any order: the nested namespace first, then the exact name.
  await run(page, 'unshare -u sh');
  await run(page, 'hostname inner; sleep 3; exit');
  await expect(step(page, 'nested')).toHaveAttribute('data-done', 'true', { timeout: TICK_MS + 3000 });
  await expect(step(page, 'exact')).toHaveAttribute('data-done', 'false');
  await waitForPrompt(page);
  await run(page, 'hostname classroom');
  await expect(step(page, 'exact')).toHaveAttribute('data-done', 'true', { timeout: TICK_MS });
  await expect(panel.locator('.lesson-complete')).toHaveText('✓ All 3 steps done. Well done!');
  await expect(page.locator('.lesson-announcer')).toContainText('Every step of the lesson is done');

  // Check now still answers (nothing left to do).
  await panel.getByRole('button', { name: 'Check now' }).click();
  await expect(panel.locator('.lesson-check-status')).toHaveText('Checked: every step is done.');

  // A plain container has no lesson tab.
  await page.getByRole('form', { name: 'Create a container' }).getByLabel('Lesson').selectOption({ value: '' });
  await page.getByRole('button', { name: 'New container' }).click();
  await expect(page.getByRole('tab', { name: 'Stats' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByRole('tab', { name: 'Lesson' })).toBeHidden();
});

test('a lesson text renders inert: no raw HTML, no script links, no foreign images', async ({ page }) => {
  // The single e2e server has only the built-in lessons: a hostile text is fed to the real
  // page through its lesson route, so it takes the same path as any lesson's Markdown.
  const hostile = [
    'Raw: <img src=x onerror="window.__xss=1"> and <script>window.__xss=2</script>',
    '',
    '[js](javascript:window.__xss=3) [site](https://example.com/) [frag](#/containers/x)',
    '',
    '![remote](https://example.com/track.png) ![local](/favicon.svg)',
    '',
    '<a href="javascript:window.__xss=4">raw</a>',
    '',
    '<iframe src="javascript:window.__xss=5"></iframe>',
    '',
    '```sh',
    'echo "<b>not bold</b>"',
    '```',
  ].join('\n');
  await page.route('**/api/containers/*/lesson', async (route) => {
    const containerId = decodeURIComponent(new URL(route.request().url()).pathname.split('/')[3]!);
    const body: ContainerLessonJson = {
      lesson: 'uts-namespace',
      title: 'A <b>hostile</b> lesson',
      description: '<img src=x onerror="window.__xss=6">',
      containerId,
      steps: [
        { id: 'one', title: 'One <script>', done: false, doneAt: null, text: hostile },
        { id: 'two', title: 'Two', done: false, doneAt: null, text: '**bold** and `code`' },
      ],
      current: 0,
      progress: { lesson: 'uts-namespace', step: 0, steps: 2, stepSince: new Date().toISOString(), done: false },
    };
    await route.fulfill({ json: body });
  });
  await newLessonContainer(page, UTS_TITLE);
  const panel = lessonPanel(page);
  const text = panel.locator('.lesson-text');
  await expect(panel.getByRole('heading', { name: 'A <b>hostile</b> lesson' })).toBeVisible();
  await expect(text).toContainText('Raw: <img src=x onerror="window.__xss=1"> and <script>window.__xss=2</script>');
  await expect(panel.locator('.lesson-description')).toHaveText('<img src=x onerror="window.__xss=6">');

  await expect(panel.locator('script, iframe, [onerror], b')).toHaveCount(0);
  await expect(text).toContainText('<a href="javascript:window.__xss=4">raw</a>');
  await expect(text.locator('a')).toHaveCount(3);
  await expect(text.locator('a[href]')).toHaveCount(1);
  const site = text.getByRole('link', { name: 'site' });
  await expect(site).toHaveAttribute('href', 'https://example.com/');
  await expect(site).toHaveAttribute('target', '_blank');
  await expect(site).toHaveAttribute('rel', 'noopener noreferrer');
  await expect(text.locator('img')).toHaveCount(1);
  await expect(text.locator('img')).toHaveAttribute('src', '/favicon.svg');
  await expect(text).toContainText('[image: remote]');
  await expect(text.locator('pre')).toHaveText('echo "<b>not bold</b>"\n');
  // Every attribute left is one of the few the sanitizer keeps.
  const attributes = await text.evaluate((el) => [
    ...new Set([...el.querySelectorAll('*')].flatMap((node) => node.getAttributeNames())),
  ]);
  expect(
    attributes.filter(
      (name) => !['href', 'target', 'rel', 'src', 'alt', 'loading', 'class', 'type', 'aria-label'].includes(name),
    ),
  ).toEqual([]);
  expect(await page.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();

  await step(page, 'two').getByRole('button').click();
  await expect(text.locator('strong')).toHaveText('bold');
  await expect(text.locator('code')).toHaveText('code');
});

// ---- the teacher's board ------------------------------------------------------------

interface Student {
  context: BrowserContext;
  page: Page;
  errors: string[];
}

async function joinAndStart(browser: Browser, joinPath: string, name: string): Promise<Student> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  watchConsole(page, errors);
  await page.goto(joinPath);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join the class' }).click();
  await expect(page.locator('.student-name')).toHaveText(name);
  const form = page.getByRole('form', { name: 'Create a container' });
  // The class's lesson is given, not chosen.
  await expect(form.getByLabel('Lesson')).toBeDisabled();
  await expect(form.getByLabel('Lesson')).toHaveValue('');
  await expect(form.getByLabel('Lesson').locator('option')).toHaveText(
    /pids cgroup: a fork limit \(your class’s lesson\)/,
  );
  await form.getByRole('button', { name: 'New container' }).click();
  await expect(page).toHaveURL(/#\/containers\/[^/]+/);
  await waitForPrompt(page);
  return { context, page, errors };
}

test('a class with the pids-cgroup lesson: the board shows each student’s step advance', async ({ page, browser }) => {
  test.setTimeout(240_000);
  let classId: string | null = null;
  const students: Student[] = [];
  try {
    await page.goto('/teacher');
    const form = page.getByRole('form', { name: 'Create a class' });
    await form.getByLabel('Class name').fill('Cgroups lab');
    await form.getByLabel('Lesson').selectOption({ label: 'pids cgroup: a fork limit' });
    await form.getByRole('button', { name: 'Create class' }).click();
    const item = page.locator('.class-item').filter({ hasText: 'Cgroups lab' }).first();
    await expect(item).toContainText('lesson: pids cgroup: a fork limit');
    const joinPath = new URL((await item.locator('.join-link').textContent()) ?? '').pathname;
    await item.getByRole('link', { name: 'Open the class' }).click();
    await expect(page).toHaveURL(/\/teacher\/classes\/[^/]+$/);
    classId = decodeURIComponent(/\/teacher\/classes\/([^/]+)$/.exec(page.url())![1]!);

    students.push(await joinAndStart(browser, joinPath, 'Grace'));
    students.push(await joinAndStart(browser, joinPath, 'Alan'));
    const s = students[0]!.page;
    await expect(lessonPanel(s).getByRole('heading', { name: 'pids cgroup: a fork limit' })).toBeVisible();

    const grace = page.locator('.student-card').filter({ hasText: 'Grace' });
    const alan = page.locator('.student-card').filter({ hasText: 'Alan' });
    await expect(grace.locator('.student-step')).toHaveText('Step 1/3: Hit the limit');
    await expect(alan.locator('.student-step')).toHaveText('Step 1/3: Hit the limit');
    await expect(grace.locator('.student-step-for')).toHaveText(/^for \d+ s$/);

    // The fork loop hits the limit of 20: the student's step ticks, and the board moves on.
    await run(s, 'for i in $(seq 1 30); do sh -c "sleep 100" & done');
    await expect(step(s, 'hit')).toHaveAttribute('data-done', 'true', { timeout: TICK_MS });
    await expect(grace.locator('.student-step')).toHaveText('Step 2/3: Raise the limit', { timeout: TICK_MS });
    // How long on the step counts from when it was reached.
    await expect(grace.locator('.student-step-for')).toHaveText(/^for \d s$/);
    await expect(alan.locator('.student-step')).toHaveText('Step 1/3: Hit the limit');

    // Filter by step: the lesson's steps by name.
    const filter = page.getByLabel('Step', { exact: true });
    await expect(filter.locator('option')).toHaveText([
      'All steps',
      'Step 1/3: Hit the limit',
      'Step 2/3: Raise the limit',
    ]);
    await filter.selectOption({ label: 'Step 2/3: Raise the limit' });
    await expect(grace).toBeVisible();
    await expect(alan).toBeHidden();
    await filter.selectOption({ label: 'Step 1/3: Hit the limit' });
    await expect(alan).toBeVisible();
    await expect(grace).toBeHidden();
    await filter.selectOption({ label: 'All steps' });
    await expect(grace).toBeVisible();
    await screenshot(page, 'teacher-board-lesson');

    // The student raises the limit: step 3 on both sides.
    await s.getByRole('tab', { name: 'Stats' }).click();
    const limits = s.getByRole('form', { name: 'Limits' });
    await limits.getByLabel('Pids limit').fill('64');
    await limits.getByRole('button', { name: 'Apply limits' }).click();
    await expect(grace.locator('.student-step')).toHaveText('Step 3/3: Go further', { timeout: TICK_MS });
    await s.getByRole('tab', { name: 'Lesson' }).click();
    await expect(step(s, 'raise')).toHaveAttribute('data-done', 'true');

    // The console's student view reads the student's samples (GET …/stats) for its graphs.
    const history = page.waitForResponse((r) => /\/api\/containers\/[^/]+\/stats$/.test(r.url()));
    await grace.getByRole('button', { name: 'Watch Grace’s terminal' }).click();
    expect((await history).status()).toBe(200);
    await expect(page.locator('.student-dialog .terminal-view')).toBeVisible();
    await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();

    // A broadcast sent before a reload is listed after it.
    await page.getByRole('textbox', { name: 'Message' }).fill('Raise it to 64');
    await page.getByRole('button', { name: 'Send to everyone' }).click();
    await expect(page.getByRole('list', { name: 'Sent messages' })).toContainText('Raise it to 64');
    await page.reload();
    await expect(page.getByRole('list', { name: 'Sent messages' })).toContainText('Raise it to 64');
    await expect(grace.locator('.student-step')).toHaveText('Step 3/3: Go further');
    for (const student of students) expect(student.errors, 'a student page logged errors').toEqual([]);
  } finally {
    if (classId) await page.request.delete(`/api/classes/${encodeURIComponent(classId)}`);
    for (const student of students) await student.context.close();
  }
});
