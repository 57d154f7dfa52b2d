// labdeck's browser entry point, bundled with htmx by `npm run build` into static/dist/app.js.
// Everything here is progressive enhancement: every page works without JavaScript.
import htmx from 'htmx.org';

window.htmx = htmx;

// Error responses carry a toast fragment retargeted by the server (HX-Retarget); swap them too.
htmx.config.responseHandling = [
  { code: '204', swap: false },
  { code: '[23]..', swap: true },
  { code: '[45]..', swap: true, error: true },
  { code: '...', swap: false },
];

// Every htmx request carries the CSRF token from the page's <meta> tag.
document.addEventListener('htmx:configRequest', (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers['X-CSRF-Token'] = meta.content;
});

// Toasts disappear on their own after a while.
document.addEventListener('htmx:afterSwap', () => {
  document.querySelectorAll('#toasts .toast:not([data-timer])').forEach((toast) => {
    toast.dataset.timer = '1';
    setTimeout(() => toast.remove(), 6000);
  });
});

function addCopyButtons() {
  document.querySelectorAll('.code-block').forEach((block) => {
    if (block.querySelector('.copy-button') || !navigator.clipboard) return;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy-button';
    button.textContent = 'Copy';
    button.setAttribute('aria-label', 'Copy code to clipboard');
    button.addEventListener('click', async () => {
      const code = block.querySelector('code');
      try {
        await navigator.clipboard.writeText(code ? code.innerText : '');
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Press Ctrl+C';
      }
      setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    });
    block.appendChild(button);
  });
}

function isDark() {
  const explicit = document.documentElement.getAttribute('data-theme');
  if (explicit) return explicit === 'dark';
  return window.matchMedia('(prefers-color-scheme: dark)').matches;
}

// Mermaid is loaded only on pages with diagrams (see base.html).
async function renderDiagrams() {
  const mermaid = window.mermaid;
  const nodes = document.querySelectorAll('pre.mermaid');
  if (!mermaid || nodes.length === 0) return;
  nodes.forEach((node) => {
    if (!node.dataset.source) node.dataset.source = node.textContent;
    node.removeAttribute('data-processed');
    node.textContent = node.dataset.source;
  });
  mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: isDark() ? 'dark' : 'default' });
  try {
    await mermaid.run({ nodes });
  } catch (error) {
    console.warn('diagram failed to render', error);
  }
}

// Dev mode: the server announces content reloads; refresh to show the edit.
function liveReload() {
  const url = document.body.dataset.livereload;
  if (!url || !window.EventSource) return;
  const source = new EventSource(url);
  source.addEventListener('reload', () => window.location.reload());
}

document.addEventListener('DOMContentLoaded', () => {
  addCopyButtons();
  renderDiagrams();
  liveReload();
});
document.addEventListener('labdeck:theme', renderDiagrams);
