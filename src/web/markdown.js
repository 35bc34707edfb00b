// Model cards: Markdown rendered by markdown-it (its npm package's browser
// build, served from /ui/vendor/) with raw HTML off — tags in the source come
// out as text — and its link check on, which drops `javascript:`, `vbscript:`,
// `file:` and `data:` URLs. Images are shown as their text: the page's CSP
// loads none from elsewhere, and the registry's files need a token.
// A last pass keeps only the elements and attributes markdown-it emits, so
// that nothing else could reach the page even if the library let it through.
import markdownit from '/ui/vendor/markdown-it.mjs';

const md = markdownit({ html: false, linkify: true, typographer: false });

md.renderer.rules.image = (tokens, idx) => {
  const token = tokens[idx];
  const alt = md.utils.escapeHtml(token.content || token.attrGet('src') || 'image');
  return `<span class="md-image" title="image not shown">[image: ${alt}]</span>`;
};

const ALLOWED = new Set(['A', 'P', 'BR', 'HR', 'EM', 'STRONG', 'S', 'CODE', 'PRE', 'BLOCKQUOTE', 'UL', 'OL', 'LI', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD', 'SPAN']);
const ATTRIBUTES = new Set(['href', 'title', 'class', 'start']);
const SAFE_URL = /^(https?:|mailto:|#|\/(?!\/)|\.{1,2}\/|[^:/?#]+(?:[/?#]|$))/i;

/**
 * The Markdown source as a fragment of safe DOM.
 * @param {string} source
 * @returns {DocumentFragment}
 */
export function renderMarkdown(source) {
  const template = document.createElement('template');
  template.innerHTML = md.render(source);
  const walker = document.createTreeWalker(template.content, NodeFilter.SHOW_ELEMENT);
  /** @type {Element[]} */
  const drop = [];
  for (let el = /** @type {Element | null} */ (walker.nextNode()); el; el = /** @type {Element | null} */ (walker.nextNode())) {
    if (!ALLOWED.has(el.tagName)) {
      drop.push(el);
      continue;
    }
    for (const attr of [...el.attributes]) {
      // not `style` (table alignment): the CSP allows no inline styles
      const keep = ATTRIBUTES.has(attr.name) && (attr.name !== 'href' || SAFE_URL.test(attr.value.trim()));
      if (!keep) el.removeAttribute(attr.name);
    }
    if (el.tagName === 'A') {
      el.setAttribute('rel', 'noopener noreferrer nofollow');
      el.setAttribute('target', '_blank');
    }
  }
  for (const el of drop) el.replaceWith(document.createTextNode(el.textContent ?? ''));
  // the card sits under the page's h1 and its own h2: `#` is an h3, deeper levels stop at h6
  for (const heading of template.content.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const demoted = document.createElement(`h${Math.min(6, Number(heading.tagName[1]) + 2)}`);
    demoted.append(...heading.childNodes);
    heading.replaceWith(demoted);
  }
  return template.content;
}
