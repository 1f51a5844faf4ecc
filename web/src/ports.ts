/**
 * The selected container's listening TCP ports, each with its preview link (on an origin
 * of its own, README: Previews) and a Copy button, and the container's address on its
 * network. Fetched once when a container is selected (GET …/ports), then kept by the
 * stats stream's `ports` messages. The ports the container's image exposes (its config's
 * ExposedPorts) are shown as hints until something listens on them. Built with DOM calls
 * only: nothing here is HTML.
 */
import type { ContainerJson, PortJson } from '../../server/src/protocol/index';
import { api, errorText } from './api';
import { copyButton } from './classroom';
import { h, keepingFocus, replaceChildren, uniqueId } from './dom';

const EXAMPLE = 'mkdir -p /tmp/www && httpd -p 8000 -h /tmp/www';

export class PortsPanel {
  readonly element: HTMLElement;
  private readonly network: HTMLElement;
  private readonly body: HTMLElement;
  /** Ports by container: the last answer or message, whichever came last. */
  private readonly known = new Map<string, PortJson[]>();
  /** A message newer than a request still in flight wins over its answer. */
  private readonly generation = new Map<string, number>();
  private container: ContainerJson | null = null;
  private error: string | null = null;
  private rendered = '';

  constructor() {
    const titleId = uniqueId('ports-title');
    this.network = h('p', { class: 'ports-network muted' });
    this.body = h('div', { class: 'ports-body' });
    this.element = h(
      'section',
      { class: 'ports', 'aria-labelledby': titleId },
      h('h3', { class: 'panel-subtitle ports-title', id: titleId }, 'Ports'),
      this.network,
      this.body,
    );
  }

  /** The selected container (or none); a newly selected one is fetched once. */
  show(container: ContainerJson | null): void {
    const changed = container?.id !== this.container?.id;
    const wasRunning = this.container?.state === 'running';
    this.container = container;
    this.element.hidden = container === null;
    this.renderNetwork();
    if (container === null) return;
    if (changed) this.error = null;
    if (container.state !== 'running') this.known.delete(container.id);
    else if (changed || !wasRunning) void this.load(container.id);
    this.render();
  }

  /** A `ports` message of the stats stream: all of a container's listening ports. */
  update(containerId: string, ports: PortJson[]): void {
    this.generation.set(containerId, (this.generation.get(containerId) ?? 0) + 1);
    this.known.set(containerId, ports);
    if (containerId === this.container?.id) {
      this.error = null;
      this.render();
    }
  }

  /** After a drop of the stats stream: changes may have gone unseen. */
  reload(): void {
    if (this.container?.state === 'running') void this.load(this.container.id);
  }

  forget(containerId: string): void {
    this.known.delete(containerId);
    this.generation.delete(containerId);
  }

  private async load(id: string): Promise<void> {
    const asked = this.generation.get(id) ?? 0;
    try {
      const ports = await api.ports(id);
      if ((this.generation.get(id) ?? 0) !== asked) return; // a message came since
      this.known.set(id, ports);
      if (id === this.container?.id) this.error = null;
    } catch (err) {
      if (id !== this.container?.id || this.known.has(id)) return;
      this.error = `Cannot list the ports: ${errorText(err)}`;
    }
    if (id === this.container?.id) this.render();
  }

  private renderNetwork(): void {
    const net = this.container?.network ?? null;
    this.network.hidden = net === null;
    if (net === null) {
      this.network.replaceChildren();
      return;
    }
    replaceChildren(
      this.network,
      h('span', { class: 'mono ports-ip' }, net.ip),
      ' on network ',
      h('span', { class: 'mono' }, net.name),
    );
  }

  private render(): void {
    const container = this.container;
    if (container === null) return;
    const ports = this.known.get(container.id);
    // The same list again (a message after the answer) keeps the DOM, and a "Copied".
    const listening = new Set((ports ?? []).map((p) => p.port));
    const hinted = (container.exposedPorts ?? []).filter((port) => !listening.has(port));
    const key = JSON.stringify([container.id, container.state, this.error, ports ?? null, hinted]);
    if (key === this.rendered) return;
    this.rendered = key;
    keepingFocus(this.body, () => {
      if (container.state !== 'running') {
        replaceChildren(this.body, h('p', { class: 'muted ports-empty' }, 'The container is not running.'));
      } else if (this.error !== null && ports === undefined) {
        replaceChildren(this.body, h('p', { class: 'form-message error ports-empty', role: 'status' }, this.error));
      } else if (ports === undefined) {
        replaceChildren(this.body, h('p', { class: 'muted ports-empty' }, 'Looking for listening ports…'));
      } else if (ports.length === 0) {
        replaceChildren(
          this.body,
          hinted.length > 0
            ? h('p', { class: 'muted ports-empty' }, 'Nothing is listening yet.')
            : h(
                'p',
                { class: 'muted ports-empty' },
                'Nothing is listening yet: try ',
                h('code', { class: 'mono' }, EXAMPLE),
              ),
          hintList(hinted),
        );
      } else {
        replaceChildren(
          this.body,
          h(
            'ul',
            { class: 'ports-list', 'aria-label': 'Listening ports' },
            ...[...ports].sort((a, b) => a.port - b.port).map((p) => portItem(p)),
          ),
          hintList(hinted),
        );
      }
    });
  }
}

/** The image's exposed ports nothing listens on yet: what the image's server will use. */
function hintList(ports: number[]): HTMLElement | null {
  if (ports.length === 0) return null;
  return h(
    'ul',
    { class: 'ports-list ports-hints', 'aria-label': 'Ports the image exposes' },
    ...ports.map((port) =>
      h(
        'li',
        { class: 'port-item port-hint muted' },
        h('span', { class: 'port-number mono' }, String(port)),
        h('span', { class: 'port-protocol' }, 'tcp (from the image, not listening yet)'),
      ),
    ),
  );
}

function portItem(port: PortJson): HTMLElement {
  return h(
    'li',
    { class: 'port-item' },
    h('span', { class: 'port-number mono' }, String(port.port)),
    h('span', { class: 'port-protocol muted' }, port.protocol),
    h(
      'a',
      {
        class: 'button small port-open',
        href: port.previewUrl,
        target: '_blank',
        rel: 'noopener noreferrer',
        'aria-label': `Open preview of port ${port.port} (new tab)`,
        'data-focus-key': `open-${port.port}`,
      },
      'Open preview',
    ),
    withFocusKey(
      copyButton(() => port.previewUrl, `Copy the preview link of port ${port.port}`),
      `copy-${port.port}`,
    ),
  );
}

function withFocusKey<T extends HTMLElement>(el: T, key: string): T {
  el.dataset.focusKey = key;
  return el;
}
