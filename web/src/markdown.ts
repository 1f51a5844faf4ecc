/**
 * Markdown to DOM for lesson texts, safely. A lesson may come from any operator's
 * --lessons-dir, so its text is treated as hostile: raw HTML in the source is shown as
 * text (marked's `html` tokens are escaped), what marked makes is sanitized by DOMPurify
 * to a short list of tags and attributes and returned as a fragment (never assigned to
 * innerHTML of the page), and a last pass keeps only links a click cannot turn into
 * script (http, https, mailto; opened in a new tab with rel=noopener) and images from
 * data: or this origin (the CSP's img-src would refuse others anyway).
 */
import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // "the page renders Markdown safely: no raw HTML" (lessons/README.md): shown as typed.
    html: ({ text }) => escapeHtml(text),
  },
});

const purify = DOMPurify(window);

const ALLOWED_TAGS = [
  'p',
  'br',
  'hr',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'strong',
  'em',
  'del',
  'code',
  'pre',
  'blockquote',
  'ul',
  'ol',
  'li',
  'a',
  'img',
  'table',
  'thead',
  'tbody',
  'tr',
  'th',
  'td',
];
const ALLOWED_ATTR = ['href', 'title', 'alt', 'src', 'start', 'align'];
const LINK_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
const DATA_IMAGE = /^data:image\/(?:png|gif|jpeg|webp)[;,]/i;

/** Renders a lesson's Markdown into a sanitized fragment of the page's document. */
export function renderMarkdown(source: string): DocumentFragment {
  const html = marked.parse(source, { async: false });
  const fragment = purify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    RETURN_DOM_FRAGMENT: true,
  });
  for (const link of fragment.querySelectorAll('a')) secureLink(link);
  for (const img of fragment.querySelectorAll('img')) secureImage(img);
  return fragment;
}

function secureLink(link: HTMLAnchorElement): void {
  const href = link.getAttribute('href');
  let url: URL | null = null;
  try {
    // A fragment link would move the page's own #/containers/… route: not a link here.
    url = href && !href.startsWith('#') ? new URL(href, location.href) : null;
  } catch {
    url = null;
  }
  if (!url || !LINK_PROTOCOLS.has(url.protocol)) {
    link.removeAttribute('href');
    return;
  }
  // Never in this tab (the student's terminal lives here), never with a handle back to it.
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
}

function secureImage(img: HTMLImageElement): void {
  const src = img.getAttribute('src') ?? '';
  let allowed = DATA_IMAGE.test(src);
  if (!allowed && src !== '' && !src.startsWith('data:')) {
    try {
      allowed = new URL(src, location.href).origin === location.origin;
    } catch {
      allowed = false;
    }
  }
  if (allowed) {
    img.loading = 'lazy';
    return;
  }
  // An image from elsewhere would tell a third party who reads the lesson: its alt text instead.
  const alt = img.getAttribute('alt') ?? '';
  img.replaceWith(document.createTextNode(alt === '' ? '' : `[image: ${alt}]`));
}
