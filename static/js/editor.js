// The challenge page: CodeMirror 6 over the plain <textarea> (which stays the form field, so
// the page also works without JavaScript), autosave of drafts, and live test results over
// server-sent events after "Run public tests" / "Submit" (the form is posted by htmx).
import { basicSetup, EditorView } from 'codemirror';
import { javascript } from '@codemirror/lang-javascript';
import { oneDark } from '@codemirror/theme-one-dark';
import { Compartment, EditorState } from '@codemirror/state';
import { keymap } from '@codemirror/view';
import { indentWithTab } from '@codemirror/commands';

const form = document.getElementById('solution-form');
const textarea = document.getElementById('source');
const status = document.getElementById('draft-status');

function isDark() {
  const explicit = document.documentElement.getAttribute('data-theme');
  if (explicit) return explicit === 'dark';
  return window.matchMedia('(prefers-color-scheme: dark)').matches;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

let saveTimer = null;
function scheduleSave() {
  if (!form || !form.dataset.draftUrl) return;
  clearTimeout(saveTimer);
  status.textContent = 'Unsaved changes';
  saveTimer = setTimeout(async () => {
    try {
      const response = await fetch(form.dataset.draftUrl, {
        method: 'POST',
        headers: { 'X-CSRF-Token': csrfToken(), 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ source: textarea.value }),
      });
      status.textContent = response.ok ? 'Draft saved' : 'Draft not saved (log in to keep drafts)';
    } catch {
      status.textContent = 'Draft not saved: offline?';
    }
  }, 800);
}

if (form && textarea) {
  const theme = new Compartment();
  const view = new EditorView({
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        basicSetup,
        keymap.of([indentWithTab]),
        javascript(),
        theme.of(isDark() ? oneDark : []),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) {
            textarea.value = update.state.doc.toString();
            scheduleSave();
          }
        }),
        EditorView.contentAttributes.of({ 'aria-label': 'Solution source code' }),
      ],
    }),
  });
  textarea.style.display = 'none';
  textarea.parentNode.insertBefore(view.dom, textarea);
  view.dom.classList.add('code-editor');
  document.addEventListener('labdeck:theme', () => {
    view.dispatch({ effects: theme.reconfigure(isDark() ? oneDark : []) });
  });
}

// After htmx swaps in a submission, follow its results until grading is done.
function follow(root) {
  const section = root.querySelector('.submission[data-events]');
  if (!section || !section.dataset.events || !window.EventSource) return;
  const list = section.querySelector('.test-results');
  const summary = section.querySelector('.submission-summary');
  const source = new EventSource(section.dataset.events);
  section.dataset.events = '';
  source.addEventListener('result', (event) => {
    list.insertAdjacentHTML('beforeend', event.data);
  });
  source.addEventListener('done', (event) => {
    summary.innerHTML = event.data;
    source.close();
  });
  source.onerror = () => source.close();
}

document.addEventListener('htmx:afterSwap', (event) => follow(event.target));
document.addEventListener('DOMContentLoaded', () => follow(document));
