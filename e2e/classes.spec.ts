/**
 * A class from both sides: the teacher creates it in the console, three students (each
 * its own browser context, no token) join with the link and get shells, and the teacher
 * sees them live in the grid, spotlights one, broadcasts, replays a recording to the
 * pids-limit marker a fork loop left, and ends the class.
 */
import type { Browser, BrowserContext, Page } from '@playwright/test';
import {
  activeTerminal,
  expect,
  run,
  screenshot,
  test,
  unnamedControls,
  waitForPrompt,
  waitForTerminalText,
  watchConsole,
  xtermText,
} from './helpers';

const XSS_NAME = '<img src=x onerror=window.__xss=1>';
const STUDENTS = [
  { name: 'Ada', tag: 'ada' },
  { name: 'Linus', tag: 'linus' },
  { name: XSS_NAME, tag: 'xss' },
];
const FORK_LOOP = 'for i in $(seq 300); do sleep 30 & done';

interface Student {
  name: string;
  tag: string;
  context: BrowserContext;
  page: Page;
  errors: string[];
  containerId: string;
}

async function joinAsStudent(browser: Browser, joinPath: string, name: string, tag: string): Promise<Student> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  watchConsole(page, errors);
  await page.goto(joinPath);
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join the class' }).click();
  await expect(page).toHaveURL(/\/$|\/#/);
  // The header names the student, as text.
  await expect(page.locator('.student-name')).toHaveText(name);
  // The default image is the class's, and the picker says so.
  const picker = page.getByRole('form', { name: 'Create a container' }).getByLabel('Image');
  await expect(picker.locator('option').first()).toHaveText('your class’s image');
  await expect(picker).toHaveAccessibleDescription('the image your teacher chose');
  await page.getByRole('button', { name: 'New container' }).click();
  await expect(page).toHaveURL(/#\/containers\/[^/]+/);
  await waitForPrompt(page);
  const containerId = decodeURIComponent(/#\/containers\/([^/]+)/.exec(page.url())![1]!);
  return { name, tag, context, page, errors, containerId };
}

test('a class: join, watch, spotlight, broadcast, replay to a marker, end', async ({ page, browser, context }) => {
  // Real containers for four sessions on a shared CI host: generous, each wait has its own bound.
  test.setTimeout(420_000);
  const students: Student[] = [];
  try {
    // ---- the teacher opens a class --------------------------------------------------
    await page.goto('/teacher');
    const form = page.getByRole('form', { name: 'Create a class' });
    await form.getByLabel('Class name').fill('Containers 101');
    await form.getByLabel('Pids limit').fill('40');
    await form.getByRole('button', { name: 'Create class' }).click();
    const item = page.locator('.class-item').filter({ hasText: 'Containers 101' }).first();
    await expect(item.locator('.join-code-big')).toHaveText(/^[A-Z0-9]{12}$/);
    const joinUrl = (await item.locator('.join-link').textContent()) ?? '';
    const joinPath = new URL(joinUrl).pathname;
    expect(joinPath).toMatch(/^\/join\/[A-Z0-9]+$/);
    await item.getByRole('link', { name: 'Open the class' }).click();
    await expect(page).toHaveURL(/\/teacher\/classes\/[^/]+$/);
    const classPath = new URL(page.url()).pathname;
    await expect(page.getByRole('heading', { name: 'Containers 101' })).toBeVisible();

    // ---- three students join, get shells, type ---------------------------------------
    for (const s of STUDENTS) students.push(await joinAsStudent(browser, joinPath, s.name, s.tag));
    for (const s of students) await run(s.page, `echo hello-${s.tag}`);
    for (const s of students) await waitForTerminalText(s.page, new RegExp(`^hello-${s.tag}$`, 'm'));

    // ---- the grid shows each one's screen within a couple of seconds -----------------
    const grid = page.getByRole('list', { name: 'Students' });
    const card = (s: Student) => grid.locator('.student-card').filter({ has: page.getByText(s.name, { exact: true }) });
    for (const s of students) {
      await expect(card(s).locator('.mini-screen')).toContainText(`hello-${s.tag}`, { timeout: 5000 });
    }
    await expect(grid.locator('.student-card')).toHaveCount(3);
    // The XSS name is text: visible as typed, and nothing ran.
    const xss = students[2]!;
    await expect(card(xss).getByRole('button', { name: `Watch ${XSS_NAME}’s terminal` })).toHaveText(XSS_NAME);
    await expect(grid.locator('img')).toHaveCount(0);
    await screenshot(page, 'teacher-console');
    expect(await unnamedControls(page)).toEqual([]);

    // ---- up close, then the spotlight on the projector --------------------------------
    const ada = students[0]!;
    await card(ada).getByRole('button', { name: 'Watch Ada’s terminal' }).click();
    const dialog = page.getByRole('dialog', { name: 'Ada' });
    await expect(dialog).toBeVisible();
    await expect.poll(() => xtermText(dialog.locator('.detail-terminal')), { timeout: 10_000 }).toContain('hello-ada');

    // Taking the keyboard: the student's page says so, and the teacher's typing reaches the shell.
    await dialog.getByRole('button', { name: 'Take the keyboard' }).click();
    await expect(ada.page.getByText('The teacher has the keyboard.')).toBeVisible({ timeout: 10_000 });
    await expect.poll(() => xtermText(dialog.locator('.detail-terminal')), { timeout: 10_000 }).toContain('hello-ada');
    await dialog.locator('.detail-terminal .xterm').click();
    await page.keyboard.type('echo teacher-$((6*7))', { delay: 5 });
    await page.keyboard.press('Enter');
    await waitForTerminalText(ada.page, /^teacher-42$/m);
    await dialog.getByRole('button', { name: 'Give the keyboard back' }).click();
    await expect(ada.page.getByText('The teacher has the keyboard.')).toBeHidden({ timeout: 10_000 });

    const [spotlight] = await Promise.all([
      context.waitForEvent('page'),
      dialog.getByRole('link', { name: /Spotlight Ada/ }).click(),
    ]);
    const spotlightErrors: string[] = [];
    watchConsole(spotlight, spotlightErrors);
    await expect(spotlight).toHaveURL(new RegExp(`${classPath}/spotlight/[^/]+$`));
    await expect(spotlight.getByRole('heading', { name: 'Ada' })).toBeVisible();
    await expect
      .poll(() => xtermText(spotlight.locator('.spotlight-terminal')), { timeout: 10_000 })
      .toMatch(/^hello-ada$/m);
    await screenshot(spotlight, 'spotlight');
    expect(await spotlight.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();
    await spotlight.close();
    expect(spotlightErrors).toEqual([]);
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect(dialog).toBeHidden();

    // ---- a broadcast reaches every student -------------------------------------------
    const broadcast = page.getByRole('form', { name: 'Broadcast to the class' });
    await broadcast.getByLabel('Message').fill('Count your processes');
    await broadcast.getByLabel(/^Command/).fill('cat /sys/fs/cgroup/pids.current');
    await broadcast.getByRole('button', { name: 'Send to everyone' }).click();
    for (const s of students) {
      const banner = s.page.getByRole('region', { name: 'Messages from your teacher' });
      await expect(banner).toContainText('Count your processes');
      await expect(banner.locator('code')).toHaveText('cat /sys/fs/cgroup/pids.current');
      await expect(banner.getByRole('button', { name: 'Copy the command' })).toBeVisible();
    }
    // Shown, never typed: the student's terminal does not have the command.
    expect(await activeTerminal(ada.page).textContent()).not.toContain('pids.current');
    await screenshot(students[1]!.page, 'student-broadcast');

    // ---- a reset gives the student a fresh container, and their page switches to it -----
    const linus = students[1]!;
    await card(linus).getByRole('button', { name: 'Watch Linus’s terminal' }).click();
    const linusDialog = page.getByRole('dialog', { name: 'Linus' });
    await linusDialog.getByRole('button', { name: 'Reset container' }).click();
    await linusDialog.getByRole('button', { name: 'Click again to reset' }).click();
    await expect(page.getByText('Linus has a fresh container.')).toBeVisible();
    await expect(linus.page).not.toHaveURL(new RegExp(linus.containerId), { timeout: 20_000 });
    await waitForPrompt(linus.page);
    await expect(activeTerminal(linus.page)).not.toContainText('hello-linus');
    await linusDialog.getByRole('button', { name: 'Close' }).click();

    // ---- a fork loop under the class's pids limit leaves a marker --------------------
    await run(ada.page, FORK_LOOP);
    await waitForTerminalText(ada.page, /can't fork|Resource temporarily unavailable/i, 30_000);
    await expect
      .poll(
        async () => {
          const response = await page.request.get(`/api/containers/${ada.containerId}/terminals/0/recording`);
          return response.ok() ? await response.text() : '';
        },
        { timeout: 60_000, message: 'the recording gets a pids-limit marker' },
      )
      .toMatch(/"m",\s*"pids-limit"/);
    // Typed after the marker (a builtin: the sleepers hold every pid): the replay at the
    // marker must not show it yet.
    await run(ada.page, 'echo after-$((1+1))');
    await waitForTerminalText(ada.page, /^after-2$/m);

    // ---- the replay, from the class's recordings list ---------------------------------
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page
      .getByRole('link', { name: /^Replay Ada’s terminal 0/ })
      .first()
      .click();
    await expect(page).toHaveURL(new RegExp(`${classPath}/replay/${ada.containerId}/0$`));
    const markers = page.getByRole('list', { name: 'Markers' });
    await expect(markers.getByRole('button', { name: /pids limit hit/ }).first()).toBeVisible();
    await markers
      .getByRole('button', { name: /pids limit hit/ })
      .first()
      .click();
    const replay = page.getByRole('group', { name: 'Replayed terminal (read-only)' });
    await expect.poll(() => xtermText(replay)).toContain('echo hello-ada');
    await expect.poll(() => xtermText(replay)).toContain('seq 300');
    expect(await xtermText(replay)).not.toContain('after-2');
    await expect(page.getByRole('link', { name: 'Download .cast' })).toBeVisible();
    await screenshot(page, 'replay');
    expect(await unnamedControls(page)).toEqual([]);

    // ---- nothing ran from the XSS name anywhere ---------------------------------------
    for (const p of [page, ...students.map((s) => s.page)]) {
      expect(await p.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();
    }

    // ---- the end of the class ----------------------------------------------------------
    await page.goto(classPath);
    const end = page.getByRole('button', { name: 'End class' });
    await end.click();
    await page.getByRole('button', { name: 'Click again to end the class' }).click();
    await expect(page.getByText('This class has ended.')).toBeVisible({ timeout: 20_000 });
    for (const s of students) {
      await expect(s.page.getByText('The class has ended.')).toBeVisible({ timeout: 20_000 });
    }
    for (const s of students) expect(s.errors, `${s.name}'s page logged errors`).toEqual([]);
  } finally {
    for (const s of students) await s.context.close();
  }
});

test('a wrong join code says so', async ({ page, consoleErrors }) => {
  await page.goto('/join/NOSUCHCODE00');
  await page.getByLabel('Your name').fill('Grace');
  await page.getByRole('button', { name: 'Join the class' }).click();
  await expect(page.getByRole('alert')).toContainText('not valid');
  await expect(page).toHaveURL(/\/join\/NOSUCHCODE00$/);
  // Chromium logs the 404 response itself; that one is expected.
  const logged = consoleErrors.findIndex((e) => /status of 404/.test(e));
  if (logged >= 0) consoleErrors.splice(logged, 1);
});
