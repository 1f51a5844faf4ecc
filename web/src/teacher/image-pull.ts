/**
 * The teacher's "Pull image" form: POST /api/images starts a pull on the server, then its
 * WebSocket (/api/images/pulls/:id) tells each layer's bytes and the end; a failure shows
 * the registry's one-line error. Once done the image is in every picker's list.
 */
import type { ImagePullJson, ImagePullLayerJson, ImagePullMessage } from '../../../server/src/protocol/index';
import { api, socketUrl } from '../api';
import { describeError } from '../containers';
import { h, replaceChildren, uniqueId } from '../dom';
import { formatBytesHuman } from '../format';

export class ImagePullPanel {
  readonly element: HTMLElement;
  private readonly reference: HTMLInputElement;
  private readonly submit: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly error: HTMLElement;
  private readonly layers: HTMLUListElement;
  private socket: WebSocket | null = null;
  private readonly known = new Map<string, ImagePullLayerJson>();

  constructor(private readonly onPulled: (reference: string) => void) {
    const id = uniqueId('pull-ref');
    this.reference = h('input', {
      id,
      type: 'text',
      name: 'reference',
      placeholder: 'e.g. alpine:3 or 127.0.0.1:5000/app:1',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
      maxlength: '512',
      'aria-describedby': `${id}-hint`,
    });
    this.submit = h('button', { type: 'submit', class: 'button primary' }, 'Pull');
    this.status = h('p', { class: 'form-message pull-status', role: 'status' });
    this.error = h('p', { class: 'form-error pull-error', role: 'alert', hidden: true });
    this.layers = h('ul', { class: 'pull-layers', 'aria-label': 'Layers' });
    const form = h(
      'form',
      {
        class: 'pull-form card-panel',
        'aria-label': 'Pull an image',
        novalidate: true,
        onSubmit: (event: Event) => {
          event.preventDefault();
          void this.start();
        },
      },
      h('h2', { class: 'panel-title' }, 'Pull image'),
      h(
        'div',
        { class: 'field' },
        h('label', { for: id }, 'Image reference'),
        this.reference,
        h(
          'span',
          { class: 'field-hint', id: `${id}-hint` },
          'from its registry into this server; students can then pick it',
        ),
      ),
      this.submit,
      this.error,
      this.status,
      this.layers,
    );
    this.element = form;
  }

  private async start(): Promise<void> {
    const reference = this.reference.value.trim();
    this.error.hidden = true;
    if (reference === '') {
      this.showError('Give an image reference, such as alpine:3.');
      this.reference.focus();
      return;
    }
    this.socket?.close();
    this.known.clear();
    replaceChildren(this.layers);
    this.submit.disabled = true;
    this.status.textContent = `Pulling ${reference}…`;
    try {
      const pull = await api.pullImage({ reference });
      this.follow(pull);
    } catch (err) {
      this.status.textContent = '';
      this.showError(`Cannot pull ${reference}: ${describeError(err)}`);
      this.submit.disabled = false;
    }
  }

  private follow(pull: ImagePullJson): void {
    this.render(pull);
    if (pull.state !== 'pulling') return;
    const socket = new WebSocket(socketUrl(`/api/images/pulls/${encodeURIComponent(pull.id)}`));
    this.socket = socket;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as ImagePullMessage;
      if (message.type === 'pull') this.render(message.pull);
      else {
        this.known.set(message.layer.digest, message.layer);
        this.renderLayers();
      }
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      // A drop before the end: the state as the server has it now.
      if (this.submit.disabled) this.recheck(pull.id);
    });
  }

  private recheck(id: string): void {
    fetch(`/api/images/pulls/${encodeURIComponent(id)}`, { credentials: 'same-origin' })
      .then((reply) => (reply.ok ? (reply.json() as Promise<ImagePullJson>) : null))
      .then((pull) => {
        if (pull) this.render(pull);
      })
      .catch(() => undefined);
  }

  private render(pull: ImagePullJson): void {
    for (const layer of pull.layers) this.known.set(layer.digest, layer);
    this.renderLayers();
    if (pull.state === 'pulling') {
      this.status.textContent = `Pulling ${pull.reference}…`;
      return;
    }
    this.submit.disabled = false;
    if (pull.state === 'done') {
      this.status.textContent = `Pulled ${pull.reference}: students can pick it now.`;
      this.status.className = 'form-message pull-status ok';
      this.onPulled(pull.reference);
    } else {
      this.status.textContent = '';
      this.showError(`Cannot pull ${pull.reference}: ${pull.error?.message ?? 'failed'}`);
    }
  }

  private renderLayers(): void {
    replaceChildren(
      this.layers,
      ...[...this.known.values()].map((layer) => {
        const short = layer.digest.slice('sha256:'.length, 'sha256:'.length + 12);
        const label = `Layer ${short}: ${layer.status}, ${formatBytesHuman(layer.doneBytes)} of ${formatBytesHuman(layer.totalBytes)}`;
        return h(
          'li',
          { class: 'pull-layer', 'data-status': layer.status },
          h('span', { class: 'mono' }, short),
          h('progress', {
            max: String(Math.max(1, layer.totalBytes)),
            value: String(layer.doneBytes),
            'aria-label': label,
          }),
          h('span', { class: 'muted' }, `${layer.status} · ${formatBytesHuman(layer.doneBytes)}`),
        );
      }),
    );
  }

  private showError(text: string): void {
    this.error.textContent = text;
    this.error.hidden = false;
    this.status.className = 'form-message pull-status';
  }
}
