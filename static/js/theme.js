// Runs in <head> before first paint: applies the saved theme (or leaves the system preference
// in charge) and wires up the toggle button once the page is parsed.
(function () {
  var root = document.documentElement;
  var saved = null;
  try { saved = localStorage.getItem('labdeck-theme'); } catch (e) { /* storage disabled */ }
  if (saved === 'light' || saved === 'dark') root.setAttribute('data-theme', saved);

  function current() {
    var explicit = root.getAttribute('data-theme');
    if (explicit) return explicit;
    return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }

  document.addEventListener('DOMContentLoaded', function () {
    var buttons = document.querySelectorAll('[data-theme-toggle]');
    buttons.forEach(function (button) {
      button.setAttribute('aria-pressed', String(current() === 'dark'));
      button.addEventListener('click', function () {
        var next = current() === 'dark' ? 'light' : 'dark';
        root.setAttribute('data-theme', next);
        try { localStorage.setItem('labdeck-theme', next); } catch (e) { /* ignore */ }
        buttons.forEach(function (b) { b.setAttribute('aria-pressed', String(next === 'dark')); });
        document.dispatchEvent(new CustomEvent('labdeck:theme', { detail: next }));
      });
    });
  });
})();
