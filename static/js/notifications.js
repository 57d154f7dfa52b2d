// Live feed of the notifications lab. One WebSocket per tab, opened with `?after=<cursor>`: the
// server first sends every notification after that cursor, then each new one once, in cursor
// order. The tab keeps the highest cursor it has shown and reconnects with it (with a growing
// pause), so a dropped connection loses nothing and repeats nothing. Each notification is
// acknowledged, which shows up in its journey. Without JavaScript the page still lists them.
(function () {
  const live = document.querySelector('[data-ws-url]');
  if (!live || !window.WebSocket) return;
  const list = live.querySelector('[data-notifications]');
  const status = live.querySelector('[data-ws-status]');
  const unreadBadge = live.querySelector('[data-unread]');
  const clientCursor = live.querySelector('[data-client-cursor]');
  const serverHead = live.querySelector('[data-server-head]');
  const gap = live.querySelector('[data-gap]');
  const toasts = document.getElementById('toasts');
  let cursor = Number(live.dataset.cursor || 0);
  let head = cursor;
  let unread = parseInt(unreadBadge.textContent, 10) || 0;
  let pause = 500;
  let socket = null;
  let closing = false;

  function render() {
    clientCursor.textContent = String(cursor);
    serverHead.textContent = String(head);
    gap.textContent = head > cursor ? `(${head - cursor} to catch up)` : '(in sync)';
    unreadBadge.textContent = `${unread} unread`;
  }

  function toast(text) {
    if (!toasts) return;
    const el = document.createElement('div');
    el.className = 'toast toast-info';
    el.setAttribute('role', 'status');
    el.textContent = text;
    toasts.appendChild(el);
    setTimeout(() => el.remove(), 5000);
  }

  function show(n) {
    if (n.seq <= cursor) return; // never twice
    cursor = n.seq;
    if (n.seq > head) head = n.seq;
    const li = document.createElement('li');
    li.className = 'nl-notification is-new' + (n.read ? '' : ' is-unread');
    li.dataset.seq = String(n.seq);
    const title = document.createElement('strong');
    title.textContent = n.title;
    const meta = document.createElement('span');
    meta.className = 'muted';
    meta.textContent = ` #${n.seq}`;
    li.append(title, ` ${n.body}`, meta);
    list.prepend(li);
    const empty = live.querySelector('[data-empty]');
    if (empty) empty.remove();
    if (!n.read) unread += 1;
    toast(`${n.title}: ${n.body}`);
    socket.send(JSON.stringify({ type: 'ack', seq: n.seq }));
  }

  function connect() {
    const url = new URL(live.dataset.wsUrl, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.searchParams.set('after', String(cursor));
    socket = new WebSocket(url);
    socket.addEventListener('open', () => {
      status.textContent = 'live';
      status.classList.add('is-live');
      pause = 500;
    });
    socket.addEventListener('message', (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message.type === 'hello') {
        head = Math.max(head, message.head);
        unread = message.unread;
      } else if (message.type === 'notification') {
        show(message.notification);
      }
      render();
    });
    socket.addEventListener('close', () => {
      status.textContent = 'reconnecting…';
      status.classList.remove('is-live');
      if (closing) return;
      setTimeout(connect, pause);
      pause = Math.min(pause * 2, 10000);
    });
  }

  window.addEventListener('pagehide', () => { closing = true; if (socket) socket.close(); });
  render();
  connect();
})();
