/**
 * End-to-end tests: a real `mdocker serve` on a free loopback port, real containers (so
 * root and a built server, launcher and busybox image), Debian's Chromium driven by
 * Playwright. `npx playwright test -c e2e`; never downloads a browser.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from '@playwright/test';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const chromium = process.env.MDOCKER_E2E_CHROMIUM ?? '/usr/bin/chromium';

/** The config is loaded again in each worker: the port chosen first travels in the
 * environment the workers inherit. */
function freePort(): number {
  const script =
    "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})";
  return Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
}
process.env.MDOCKER_E2E_PORT ??= String(freePort());
const port = Number(process.env.MDOCKER_E2E_PORT);
const baseURL = `http://127.0.0.1:${port}`;

if (!existsSync(`${repoRoot}/server/dist/src/cli/main.js`)) {
  throw new Error('e2e: server/dist/src/cli/main.js is missing; build it first (npm run build:server)');
}
if (!existsSync(chromium)) {
  throw new Error(`e2e: no Chromium at ${chromium} (apt-get install chromium, or set MDOCKER_E2E_CHROMIUM)`);
}

// The UI under test is the one in this tree: build it unless told the build is fresh.
const build = process.env.MDOCKER_E2E_SKIP_BUILD ? '' : 'npx vite build web --logLevel warn && ';

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  outputDir: 'test-results',
  // Containers, cgroups and one server: one test at a time keeps the numbers readable.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['html', { outputFolder: 'artifacts/report', open: 'never' }]],
  use: {
    baseURL,
    viewport: { width: 1280, height: 720 },
    colorScheme: 'dark',
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: chromium,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  webServer: {
    command: `${build}node server/dist/src/cli/main.js serve --host 127.0.0.1 --port ${port} --log-level warn --data-dir e2e/.data`,
    cwd: repoRoot,
    url: `${baseURL}/healthz`,
    timeout: 90_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
    // SIGTERM: the server removes every container it started before it exits.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 15_000 },
    env: {
      // Each test is a new session, but every one comes from 127.0.0.1.
      MDOCKER_CREATE_RATE_PER_IP: '500',
    },
  },
});
