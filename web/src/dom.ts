/**
 * A tiny element builder. The page is built with DOM calls, never innerHTML (container
 * output, hostnames and commands are user data), and never with style attributes: the
 * server's Content-Security-Policy may refuse them; styling lives in styles.css.
 */

type Child = Node | string | number | null | undefined | false;
type AttrValue = string | number | boolean | null | undefined;
type Listener = (event: Event) => void;

export type Attrs = { [name: string]: AttrValue | Listener };

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === 'function') {
      el.addEventListener(name.replace(/^on/, '').toLowerCase(), value);
    } else {
      setAttr(el, name, value);
    }
  }
  append(el, ...children);
  return el;
}

export function setAttr(el: Element, name: string, value: AttrValue): void {
  if (name === 'style') throw new Error('style attributes are refused by the CSP; use a class');
  if (value === false || value === null || value === undefined) el.removeAttribute(name);
  else el.setAttribute(name, value === true ? '' : String(value));
}

export function append(el: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

export function replaceChildren(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
}

let nextId = 0;
/** A document-unique id, for label/aria-labelledby pairs. */
export function uniqueId(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * Re-renders the children of `root` without losing the keyboard focus: an element marked
 * `data-focus-key` that had the focus hands it to its successor with the same key.
 */
export function keepingFocus(root: Element, render: () => void): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && root.contains(active) ? active.dataset.focusKey : undefined;
  render();
  if (key === undefined) return;
  root.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}

/**
 * The page's notice bar: a message with a Dismiss button that goes by itself (errors
 * after 15 s, others after 10 s) unless sticky.
 */
export function noticeBar(notice: HTMLElement): {
  show(text: string, kind?: 'error' | 'info', sticky?: boolean): void;
  hide(): void;
} {
  let timer: number | null = null;
  const hide = (): void => {
    notice.hidden = true;
  };
  const show = (text: string, kind: 'error' | 'info' = 'error', sticky = false): void => {
    notice.replaceChildren(
      h('span', { class: 'notice-text' }, text),
      h('button', { type: 'button', class: 'button small', 'aria-label': 'Dismiss message', onClick: hide }, 'Dismiss'),
    );
    notice.dataset.kind = kind;
    notice.hidden = false;
    if (timer !== null) window.clearTimeout(timer);
    timer = sticky ? null : window.setTimeout(hide, kind === 'error' ? 15_000 : 10_000);
  };
  return { show, hide };
}
