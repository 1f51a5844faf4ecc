/**
 * The picture of isolation: which namespaces the container has of its own (its inode
 * beside the host's), its processes with the PID each has on the host and inside, the
 * hostname it sees against the host's, and its network: interfaces, addresses and
 * routes as the container sees them, beside the host's end of its eth0.
 */
import type {
  InspectJson,
  InspectNetworkJson,
  NamespaceType,
  NetLinkJson,
  NetPeerJson,
} from '../../server/src/protocol/index';
import { ApiError, api, errorText } from './api';
import { h, replaceChildren } from './dom';
import { formatBytesHuman } from './format';

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
  /** The last counters shown, per container and interface: each refresh says what moved since. */
  private lastCounters = new Map<string, NetLinkJson>();
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
      this.lastCounters.clear();
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
      'div',
      { class: 'hostnames' },
      h('dl', {}, h('dt', {}, 'Hostname inside'), h('dd', { class: 'mono' }, data.hostname.container)),
      h('dl', {}, h('dt', {}, 'Hostname on the host'), h('dd', { class: 'mono' }, data.hostname.host)),
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
    replaceChildren(this.body, hostname, namespaces, processes, this.renderNetwork(data.network));
  }

  private renderNetwork(network: InspectNetworkJson | null): HTMLElement {
    const section = h('section', { class: 'inspector-network', 'aria-label': 'Network' }, h('h3', {}, 'Network'));
    if (network === null) {
      section.append(h('p', { class: 'muted' }, 'The network could not be read.'));
      return section;
    }
    section.append(
      h(
        'p',
        { class: 'muted' },
        network.name === null
          ? 'No network: the container has only its loopback interface.'
          : `On network ${network.name}: a bridge in a network namespace of its own, one veth pair per container.`,
      ),
    );

    const interfaces = h(
      'table',
      { class: 'data-table' },
      h('caption', {}, 'Interfaces'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Name'),
          h('th', { scope: 'col' }, 'State'),
          h('th', { scope: 'col' }, 'IPv4'),
          h('th', { scope: 'col' }, 'MTU'),
        ),
      ),
      h(
        'tbody',
        {},
        ...network.interfaces.map((i) =>
          h(
            'tr',
            { 'data-interface': i.name },
            h(
              'th',
              { scope: 'row' },
              h('span', { class: 'mono' }, i.name),
              h('span', { class: 'link-detail mono' }, [`#${i.index}`, i.kind, i.mac].filter(Boolean).join(' · ')),
            ),
            h('td', {}, stateBadge(i)),
            h(
              'td',
              { class: 'mono' },
              i.addresses.length === 0 ? '—' : i.addresses.map((a) => `${a.address}/${a.prefix}`).join(' '),
            ),
            h('td', { class: 'mono' }, i.mtu),
          ),
        ),
      ),
    );

    const traffic = h(
      'table',
      { class: 'data-table' },
      h('caption', {}, 'Traffic'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Name'),
          h('th', { scope: 'col' }, 'Received'),
          h('th', { scope: 'col' }, 'Sent'),
        ),
      ),
      h(
        'tbody',
        {},
        ...network.interfaces.map((i) => {
          const counters = this.counters(`in:${i.name}`, i);
          return h(
            'tr',
            { 'data-interface': i.name },
            h('th', { scope: 'row', class: 'mono' }, i.name),
            h('td', { class: 'mono' }, counters.rx),
            h('td', { class: 'mono' }, counters.tx),
          );
        }),
      ),
    );

    const routes = h(
      'table',
      { class: 'data-table' },
      h('caption', {}, 'Routes'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Destination'),
          h('th', { scope: 'col' }, 'Via'),
          h('th', { scope: 'col' }, 'Device'),
          h('th', { scope: 'col' }, 'Source'),
          h('th', { scope: 'col' }, 'Scope'),
        ),
      ),
      h(
        'tbody',
        {},
        ...(network.routes.length === 0
          ? [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No routes: nothing leaves this namespace.'))]
          : network.routes.map((r) =>
              h(
                'tr',
                {},
                h('td', { class: 'mono' }, r.destination),
                h('td', { class: 'mono' }, r.gateway ?? 'direct'),
                h('td', { class: 'mono' }, r.device ?? '—'),
                h('td', { class: 'mono' }, r.source ?? '—'),
                h('td', {}, `${r.scope} (${r.protocol})`),
              ),
            )),
      ),
    );

    const inside = h(
      'div',
      { class: 'network-side', role: 'group', 'aria-label': 'Inside the container' },
      h('h4', {}, 'Inside the container'),
      interfaces,
      routes,
      traffic,
    );
    const hostSide = h(
      'div',
      { class: 'network-side', role: 'group', 'aria-label': 'The host side' },
      h('h4', {}, 'The host side'),
      ...(network.peer === null
        ? [h('p', { class: 'muted' }, 'No veth pair: without a network nothing connects this namespace to another.')]
        : this.renderPeer(network.peer)),
    );
    section.append(h('div', { class: 'network-sides' }, inside, hostSide));
    if (network.truncated) {
      section.append(h('p', { class: 'muted' }, 'More interfaces or routes than are shown.'));
    }
    return section;
  }

  private renderPeer(peer: NetPeerJson): HTMLElement[] {
    const counters = this.counters('peer', peer);
    const row = (label: string, value: string | Node) =>
      h('div', {}, h('dt', {}, label), h('dd', { class: typeof value === 'string' ? 'mono' : '' }, value));
    return [
      h(
        'p',
        { class: 'muted' },
        `The other end of ${peer.peerOf}, in the network's namespace (not the host's own): what ${peer.peerOf} sends, it receives.`,
      ),
      h(
        'dl',
        { class: 'network-peer' },
        row('Interface', peer.name),
        row('Index', String(peer.index)),
        row('Kind', peer.kind ?? '—'),
        row('Bridge (master)', peer.master ?? 'none'),
        row('State', stateBadge(peer)),
        row('MAC', peer.mac ?? '—'),
        row('MTU', String(peer.mtu)),
        row('Received', counters.rx),
        row('Sent', counters.tx),
      ),
    ];
  }

  /**
   * "3 packets, 252 B (+1)" for each direction: the counters, and the packets gained
   * since the last refresh of the same container.
   */
  private counters(key: string, link: NetLinkJson): { rx: string; tx: string } {
    const last = this.lastCounters.get(key);
    this.lastCounters.set(key, link);
    const text = (packets: number, bytes: number, lastPackets: number | undefined) => {
      const gained = lastPackets === undefined ? 0 : packets - lastPackets;
      return `${packets} packets, ${formatBytesHuman(bytes)}${gained > 0 ? ` (+${gained})` : ''}`;
    };
    return {
      rx: text(link.rxPackets, link.rxBytes, last?.rxPackets),
      tx: text(link.txPackets, link.txBytes, last?.txPackets),
    };
  }
}

function stateBadge(link: NetLinkJson): HTMLElement {
  const up = link.up && (link.operState === 'up' || link.operState === 'unknown');
  return h(
    'span',
    { class: up ? 'badge link-up' : 'badge link-down', title: `operational state: ${link.operState}` },
    link.up ? 'up' : 'down',
  );
}
