// Live view of the rate-limiter lab. The server streams each decision as server-sent events
// whose data are server-rendered HTML fragments: `decision` (a row for the log) and `state`
// (the remaining-quota panel). Without JavaScript the page still shows the latest decisions.
(function () {
  const live = document.querySelector('[data-live-url]');
  if (!live || !window.EventSource) return;
  const log = live.querySelector('[data-live-log]');
  const state = live.querySelector('[data-live-state]');
  const status = live.querySelector('[data-live-status]');
  const MAX_ROWS = 50;
  const source = new EventSource(live.dataset.liveUrl);

  source.addEventListener('open', () => {
    status.textContent = 'live';
    status.classList.add('is-live');
  });
  source.addEventListener('error', () => {
    // EventSource reconnects on its own; say so instead of failing silently.
    status.textContent = 'reconnecting…';
    status.classList.remove('is-live');
  });
  source.addEventListener('decision', (event) => {
    log.insertAdjacentHTML('afterbegin', event.data);
    while (log.children.length > MAX_ROWS) log.lastElementChild.remove();
  });
  source.addEventListener('state', (event) => {
    state.innerHTML = event.data;
  });
  window.addEventListener('pagehide', () => source.close());
})();
