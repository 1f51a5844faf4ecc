/**
 * The picture of isolation: which namespaces the container has of its own (its inode
 * beside the host's), its processes with the PID each has on the host and inside, and
 * the hostname it sees against the host's.
 */
import type { InspectJson, NamespaceType } from '../../server/src/protocol/index';
import { ApiError, api, errorText } from './api';
import { h, replaceChildren } from './dom';

const REFRESH_MS = 3000;

const NAMESPACE_MEANING: Record<NamespaceType, string> = {
  pid: 'process IDs',
  uts: 'hostname',
  mnt: 'mounts',
  ipc: 'System V IPC, message queues',
  net: 'network stack',
  cgroup: 'cgroup root',
  user: 'user and group IDs',
};

export class Inspector {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly status: HTMLElement;
  private containerId: string | null = null;
  private timer: number | null = null;
  private active = false;
  private generation = 0;

  constructor() {
    this.status = h('p', { class: 'muted inspector-status', role: 'status' });
    this.body = h('div', { class: 'inspector-body' });
    this.element = h(
      'section',
      { class: 'inspector', 'aria-label': 'Inspector' },
      h(
        'div',
        { class: 'panel-toolbar' },
        h('button', { type: 'button', class: 'button small', onClick: () => void this.refresh() }, 'Refresh'),
        this.status,
      ),
      this.body,
    );
  }

  /** Shows a container; null clears. Polls only while the inspector is visible. */
  show(containerId: string | null): void {
    if (containerId !== this.containerId) {
      this.containerId = containerId;
      replaceChildren(this.body);
      this.status.textContent = containerId ? 'Loading…' : 'No container selected.';
    }
    this.schedule(0);
  }

  setActive(active: boolean): void {
    this.active = active;
    if (active) this.schedule(0);
    else this.stop();
  }

  async refresh(): Promise<void> {
    const id = this.containerId;
    if (!id) return;
    const generation = ++this.generation;
    try {
      const data = await api.inspect(id);
      if (generation !== this.generation || id !== this.containerId) return;
      this.render(data);
      this.status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (generation !== this.generation || id !== this.containerId) return;
      const text = err instanceof ApiError ? `${err.message} (${err.code})` : errorText(err);
      this.status.textContent = `Cannot inspect: ${text}`;
    }
  }

  private schedule(delayMs: number): void {
    this.stop();
    if (!this.active || !this.containerId) return;
    this.timer = window.setTimeout(async () => {
      await this.refresh();
      if (this.active && this.timer !== null) this.schedule(REFRESH_MS);
    }, delayMs);
  }

  private stop(): void {
    if (this.timer !== null) window.clearTimeout(this.timer);
    this.timer = null;
  }

  private render(data: InspectJson): void {
    const hostnameDiffers = data.hostname.container !== data.hostname.host;
    const hostname = h(
      'dl',
      { class: 'hostnames' },
      h('div', {}, h('dt', {}, 'Hostname inside'), h('dd', { class: 'mono' }, data.hostname.container)),
      h('div', {}, h('dt', {}, 'Hostname on the host'), h('dd', { class: 'mono' }, data.hostname.host)),
      h(
        'p',
        { class: hostnameDiffers ? 'verdict isolated' : 'verdict shared' },
        hostnameDiffers ? 'UTS namespace: the container names itself.' : 'Same hostname as the host.',
      ),
    );

    const namespaces = h(
      'table',
      { class: 'data-table' },
      h('caption', {}, 'Namespaces'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Type'),
          h('th', { scope: 'col' }, 'Host inode'),
          h('th', { scope: 'col' }, 'Container inode'),
          h('th', { scope: 'col' }, 'Status'),
        ),
      ),
      h(
        'tbody',
        {},
        ...data.namespaces.map((ns) =>
          h(
            'tr',
            { 'data-namespace': ns.type },
            h('th', { scope: 'row', title: NAMESPACE_MEANING[ns.type] ?? '' }, ns.type),
            h('td', { class: 'mono' }, ns.host),
            h('td', { class: 'mono' }, ns.container),
            h(
              'td',
              {},
              h(
                'span',
                { class: ns.isolated ? 'badge isolated' : 'badge shared' },
                ns.isolated ? 'isolated' : 'shared',
              ),
            ),
          ),
        ),
      ),
    );

    const processes = h(
      'table',
      { class: 'data-table' },
      h('caption', {}, 'Processes'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Container PID'),
          h('th', { scope: 'col' }, 'Host PID'),
          h('th', { scope: 'col' }, 'User'),
          h('th', { scope: 'col' }, 'Command'),
        ),
      ),
      h(
        'tbody',
        {},
        ...[...data.processes]
          .sort((a, b) => a.containerPid - b.containerPid)
          .map((p) =>
            h(
              'tr',
              { 'data-container-pid': p.containerPid, 'data-host-pid': p.hostPid },
              h('td', { class: 'mono' }, p.containerPid),
              h('td', { class: 'mono' }, p.hostPid),
              h('td', {}, p.user),
              h('td', { class: 'mono command' }, p.command),
            ),
          ),
      ),
    );
    replaceChildren(this.body, hostname, namespaces, processes);
  }
}
