/**
 * deploy/systemd/mdocker.service installed as the README says, on a systemd host with
 * pure cgroup v2: the server runs with Delegate=yes, moves itself into the unit's
 * `runtime` leaf, puts containers in the unit's `mdocker/`, and `systemctl stop` leaves
 * no container, cgroup or launcher behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { launcherProcesses, repoRoot, waitFor } from '../root/helpers.js';
import { Client } from '../root/playground-client.js';
import { cgroupDirOf, systemdBooted, v2VmOnly } from './vm.js';

const vmSkip = v2VmOnly();
const skip = vmSkip || (systemdBooted ? false : 'needs systemd as PID 1 (the VM run with systemd)');
if (skip) console.log(`# skipping mdocker.service: ${skip}`);

const UNIT = '/etc/systemd/system/mdocker.service';
const DEFAULTS = '/etc/default/mdocker';
const PORT = 18_080;
const SERVICE_CGROUP = '/sys/fs/cgroup/system.slice/mdocker.service';

function systemctl(...args: string[]): string {
  return execFileSync('systemctl', args, { encoding: 'utf8', timeout: 120_000 }).trim();
}

after(() => {
  if (skip) return;
  try {
    systemctl('stop', 'mdocker.service');
  } catch {
    // not started
  }
  rmSync(UNIT, { force: true });
  rmSync(DEFAULTS, { force: true });
  systemctl('daemon-reload');
});

describe('mdocker.service (Delegate=yes)', { skip }, () => {
  test('containers go below the unit, the server into its runtime leaf, and stop leaves nothing', async () => {
    // The README's install: the unit with this checkout's path, settings in /etc/default/mdocker.
    const unit = readFileSync(join(repoRoot, 'deploy/systemd/mdocker.service'), 'utf8').replaceAll(
      '@REPO@',
      repoRoot.replace(/\/$/, ''),
    );
    writeFileSync(UNIT, unit);
    writeFileSync(DEFAULTS, `MDOCKER_PORT=${PORT}\nMDOCKER_WEB_DIR=/nonexistent\nMDOCKER_LOG_LEVEL=warn\n`);
    systemctl('daemon-reload');
    systemctl('start', 'mdocker.service');

    const base = `http://127.0.0.1:${PORT}`;
    await waitFor(
      'the service to serve',
      async () =>
        (await fetch(`${base}/healthz`)
          .then((r) => r.ok)
          .catch(() => false)) || null,
      120_000,
    );
    const mainPid = Number(systemctl('show', '-p', 'MainPID', '--value', 'mdocker.service'));
    assert.ok(mainPid > 1, `MainPID ${mainPid}`);
    assert.equal(
      readFileSync(`/proc/${mainPid}/cgroup`, 'utf8').trim(),
      '0::/system.slice/mdocker.service/runtime',
      'the server moved itself into the leaf of its delegated cgroup',
    );
    assert.match(readFileSync(join(SERVICE_CGROUP, 'cgroup.subtree_control'), 'utf8'), /cpu.*memory.*pids/);

    const user = new Client(base);
    const container = await user.create({ pidsLimit: 32 });
    assert.equal(container.state, 'running');
    const cgroup = cgroupDirOf(container.id);
    assert.equal(cgroup, join(SERVICE_CGROUP, 'mdocker', container.id));
    assert.equal(readFileSync(join(cgroup, 'pids.max'), 'utf8').trim(), '32');

    // KillMode=mixed: SIGTERM to the server alone, which removes its containers and exits 0.
    systemctl('stop', 'mdocker.service');
    assert.equal(systemctl('show', '-p', 'Result', '--value', 'mdocker.service'), 'success');
    assert.equal(existsSync(cgroup), false, 'the container cgroup is gone');
    await waitFor('the unit cgroup to go', async () => !existsSync(SERVICE_CGROUP) || null, 30_000);
    assert.deepEqual(launcherProcesses(), []);
  });
});
