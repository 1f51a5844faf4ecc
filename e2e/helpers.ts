/**
 * What the specs share: a `page` that fails the test on any console error or uncaught
 * exception, creating a container through the page's own form, and reading the
 * terminal the way a user sees it (xterm's rendered rows).
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test as base, expect, type BrowserContext, type Locator, type Page } from '@playwright/test';

export { expect };

const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));

export const test = base.extend<{ consoleErrors: string[] }>({
  consoleErrors: async ({}, use) => {
    await use([]);
  },
  page: async ({ page, consoleErrors }, use) => {
    watchConsole(page, consoleErrors);
    await use(page);
    // What the page logged while the test used it. The page goes before the teardown
    // deletes its containers: a request of its own still in flight (the inspector's
    // refresh) would otherwise get the 409 of a container going away.
    const logged = [...consoleErrors];
    await page.close();
    await deleteAllContainers(page.context());
    expect(logged, 'the page logged errors').toEqual([]);
  },
});

/** Collects console errors and uncaught exceptions of a page into `errors`. */
export function watchConsole(page: Page, errors: string[]): void {
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
}

/** Deletes what a context's session created, so the per-session cap and the host's
 * resources are not used up by earlier tests. */
export async function deleteAllContainers(context: BrowserContext): Promise<void> {
  const response = await context.request.get('/api/containers');
  if (!response.ok()) return;
  for (const container of (await response.json()) as { id: string }[]) {
    await context.request.delete(`/api/containers/${container.id}`);
  }
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: `${artifacts}${name}.png` });
}

export interface NewContainer {
  hostname?: string;
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
}

/** Creates a container with the page's form and waits for its shell prompt; returns the
 * container's id (from the URL the page keeps it in). */
export async function newContainer(page: Page, options: NewContainer = {}): Promise<string> {
  if (page.url() === 'about:blank') await page.goto('/');
  const form = page.getByRole('form', { name: 'Create a container' });
  if (options.hostname !== undefined) await form.getByLabel('Hostname').fill(options.hostname);
  if (options.memory !== undefined) await form.getByLabel('Memory').fill(options.memory);
  if (options.cpus !== undefined) await form.getByLabel('CPUs').fill(options.cpus);
  if (options.pidsLimit !== undefined) await form.getByLabel('Pids limit').fill(options.pidsLimit);
  await form.getByRole('button', { name: 'New container' }).click();
  await expect(page).toHaveURL(/#\/containers\/[^/]+/);
  await waitForPrompt(page);
  const id = /#\/containers\/([^/]+)/.exec(page.url())?.[1];
  if (!id) throw new Error(`no container id in ${page.url()}`);
  return decodeURIComponent(id);
}

/** The visible terminal (the selected tab of the selected container). */
export function activeTerminal(page: Page): Locator {
  return page.locator('.terminal-panel:not([hidden]) .terminal-view');
}

/** The terminal's visible rows as text, one line per row, spaces normalized. */
export async function terminalText(page: Page): Promise<string> {
  const rows = activeTerminal(page).locator('.xterm-rows');
  const text = await rows.evaluate((el) =>
    Array.from(el.children)
      .map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd())
      .join('\n'),
  );
  return text;
}

export async function waitForTerminalText(page: Page, pattern: RegExp, timeout = 15_000): Promise<void> {
  await expect.poll(() => terminalText(page), { timeout, message: `terminal shows ${pattern}` }).toMatch(pattern);
}

/** busybox ash prints "/ # " for root; any shell prompt ends in "# " or "$ ". */
export async function waitForPrompt(page: Page, timeout = 20_000): Promise<void> {
  await waitForTerminalText(page, /[#$] ?$/m, timeout);
}

/** Types a command line into the active terminal and presses Enter. */
export async function run(page: Page, command: string): Promise<void> {
  await activeTerminal(page).locator('.xterm').click();
  await page.keyboard.type(command, { delay: 5 });
  await page.keyboard.press('Enter');
}

/** The number in a graph's readout ("Current pids" → 21). */
export async function readout(page: Page, label: 'Current pids' | 'Current memory' | 'Current CPU'): Promise<number> {
  const text = (await page.getByLabel(label, { exact: true }).textContent()) ?? '';
  const value = Number.parseFloat(text);
  return Number.isFinite(value) ? value : Number.NaN;
}

export function eventLog(page: Page): Locator {
  return page.getByRole('log', { name: 'Events' });
}

/** The rendered rows of any xterm inside `scope` (a teacher's watch view, a replay). */
export async function xtermText(scope: Locator): Promise<string> {
  return scope
    .locator('.xterm-rows')
    .first()
    .evaluate((el) =>
      Array.from(el.children)
        .map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd())
        .join('\n'),
    );
}

/** Visible controls without an accessible name (their outerHTML, cut short). */
export async function unnamedControls(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const missing: string[] = [];
    for (const el of document.querySelectorAll<HTMLElement>('button, input, select, textarea, a[href], [role="tab"]')) {
      if (el.closest('[hidden]') || el.getAttribute('aria-hidden') === 'true' || el.offsetParent === null) continue;
      const labelled =
        (el.getAttribute('aria-label') ?? '').trim() !== '' ||
        el.getAttribute('aria-labelledby') !== null ||
        ((el as HTMLInputElement).labels?.length ?? 0) > 0 ||
        ((el.tagName === 'BUTTON' || el.tagName === 'A') && (el.textContent ?? '').trim() !== '');
      if (!labelled) missing.push(el.outerHTML.slice(0, 120));
    }
    return missing;
  });
}
