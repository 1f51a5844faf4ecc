// Everything the benchmark made, so that the end can check that none of it is left:
// processes (by pid and start time, never by name), containers (their cgroup dirs and
// state dirs), cgroup parents, state roots, mounts.
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dirsBottomUp, isSameProcess, killRef, parentPid, processRef, sleep } from './util.mjs';

const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids'];

export class Tracker {
  constructor() {
    this.processes = [];
    this.containers = new Map();
    this.cgroupParents = [];
    this.stateRoots = [];
    this.mountPrefixes = [];
    /** Per server pid: its cgroup path per controller, read while it runs. */
    this.serverCgroups = null;
  }

  add(pid, what) {
    const ref = processRef(pid);
    if (ref) this.processes.push({ ref, what });
  }

  /** Containers of the server (ContainerJson): their init and launcher, their cgroups. */
  addContainer(container) {
    if (this.containers.has(container.id)) return;
    const entry = { id: container.id, refs: [] };
    if (container.initPid) {
      const init = processRef(container.initPid);
      if (init) entry.refs.push({ ref: init, what: `init of container ${container.id.slice(0, 12)}` });
      try {
        const launcher = processRef(parentPid(container.initPid));
        if (launcher) entry.refs.push({ ref: launcher, what: `launcher of container ${container.id.slice(0, 12)}` });
      } catch {
        // already gone
      }
    }
    this.containers.set(container.id, entry);
  }

  /** The server's own cgroups: its containers' are `<own>/mdocker/<id>` in each. */
  noteServer(pid) {
    const paths = {};
    for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
      const [, controllers, path] = line.split(':');
      if (!controllers) continue;
      for (const c of controllers.split(',')) if (V1_CONTROLLERS.includes(c)) paths[c] = path;
    }
    this.serverCgroups = paths;
  }

  /** What is left; kills and removes what it can, and says so. */
  async verify() {
    const left = [];
    const live = [...this.processes];
    for (const c of this.containers.values()) live.push(...c.refs);
    for (const { ref, what } of live) {
      if (!isSameProcess(ref)) continue;
      left.push(`process ${ref.pid} (${what}) was still running: killed`);
      killRef(ref, 'SIGKILL');
    }
    if (left.length > 0) await sleep(500);

    if (this.serverCgroups) {
      for (const id of this.containers.keys()) {
        for (const c of V1_CONTROLLERS) {
          const own = this.serverCgroups[c];
          if (own === undefined) continue;
          const dir = join('/sys/fs/cgroup', c, own, 'mdocker', id);
          if (!existsSync(dir)) continue;
          left.push(`cgroup ${dir}`);
          for (const d of dirsBottomUp(dir)) await rmdirRetry(d);
        }
      }
    }
    for (const parent of this.cgroupParents) {
      for (const h of readdirSync('/sys/fs/cgroup')) {
        const dir = join('/sys/fs/cgroup', h, parent);
        if (!existsSync(dir) || !statSync(dir).isDirectory()) continue;
        const children = dirsBottomUp(dir).filter((d) => d !== dir);
        for (const d of children) left.push(`cgroup ${d}`);
        for (const d of [...children, dir]) await rmdirRetry(d);
      }
    }
    for (const root of this.stateRoots) {
      if (!existsSync(root)) continue;
      const entries = readdirSync(root).filter((e) => e !== 'names' && e !== 'server.log' && e !== 'networks');
      for (const e of entries) left.push(`state ${join(root, e)}${describeState(join(root, e, 'state.json'))}`);
      // networks/ stays with an empty subnets/ once the last network is gone.
      const nets = join(root, 'networks');
      if (existsSync(nets)) {
        for (const e of readdirSync(nets)) if (e !== 'subnets') left.push(`network ${join(nets, e)}`);
        const subnets = join(nets, 'subnets');
        if (existsSync(subnets)) for (const e of readdirSync(subnets)) left.push(`network subnet ${join(subnets, e)}`);
      }
      const names = join(root, 'names');
      if (existsSync(names)) for (const e of readdirSync(names)) left.push(`state name ${join(names, e)}`);
      rmSync(root, { recursive: true, force: true });
      // A server's recordings (--data-dir beside its state): data, not a leak.
      rmSync(`${root}-data`, { recursive: true, force: true });
    }
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    for (const prefix of this.mountPrefixes) {
      for (const m of mounts) if (m.split(' ')[4]?.startsWith(prefix)) left.push(`mount ${m.split(' ')[4]}`);
    }
    return left;
  }
}

async function rmdirRetry(dir) {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      rmdirSync(dir);
      return true;
    } catch (err) {
      if (err.code === 'ENOENT') return true;
      await sleep(20);
    }
  }
  return false;
}

function describeState(file) {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8'));
    return ` (created ${r.createdAt}, cmd ${JSON.stringify(r.cmd)}, launcher ${r.launcher?.pid ?? 'none'}, exit ${r.exitCode})`;
  } catch {
    return '';
  }
}
