// The streaming-upload lab page. Progressive enhancement over the plain multipart form:
// - a CSV generator that builds a Blob from 1 MiB chunks (never one giant string);
// - uploads by XHR (multipart, raw text/csv, the buffering endpoint, a presigned URL, tus) with
//   a progress bar from `xhr.upload.onprogress`, and a second bar fed by the server's own count
//   of bytes and rows (server-sent events from /labs/upload/api/events);
// - "Cut it off" aborts the request; a tus upload then resumes from the server's offset (HEAD);
// - the gauge shows the server's resident memory and the bytes in flight, live.
(function () {
  const lab = document.querySelector('[data-upload-lab]');
  if (!lab) return;
  const api = lab.dataset.api;
  const tusPath = lab.dataset.tus;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const $ = (selector) => lab.querySelector(selector);
  const jsOnly = $('[data-js-only]');
  if (jsOnly) jsOnly.hidden = false;

  const progress = $('[data-progress]');
  const progressText = $('[data-progress-text]');
  const serverProgress = $('[data-server-progress]');
  const serverText = $('[data-server-text]');
  const result = $('[data-result]');
  const log = $('[data-log]');
  const generated = $('[data-generated]');
  const abortButton = $('[data-action="abort"]');
  const resumeButton = $('[data-action="resume"]');

  const MiB = 1024 * 1024;
  const TUS_CHUNK = 8 * MiB;
  let blob = null;
  let current = null; // the XHR in flight
  let tus = null; // { url, size } of the last tus upload
  let rssPeak = 0;

  function human(bytes) {
    if (bytes == null) return '—';
    if (bytes < 1024) return `${bytes} bytes`;
    const units = ['KiB', 'MiB', 'GiB'];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${value.toFixed(1)} ${units[unit]}`;
  }

  function say(line) {
    const time = new Date().toLocaleTimeString();
    log.textContent = `${time}  ${line}\n${log.textContent}`.slice(0, 8000);
  }

  function setProgress(sent, total) {
    const percent = total ? Math.min(100, (sent / total) * 100) : 0;
    progress.value = percent;
    progress.textContent = `${percent.toFixed(0)} %`;
    progressText.textContent = `${human(sent)} of ${human(total)} (${percent.toFixed(1)} %)`;
  }

  // ------------------------------------------------------------------------------------------
  // The generator: rows of `id,name,city,amount,joined`, every 10,007th row missing a field.
  const CITIES = ['Lisbon', 'Oslo', 'Zürich', 'Kraków', 'Montréal', 'São Paulo', 'Tōkyō', 'Nairobi'];
  function generate(bytes) {
    const parts = [];
    let chunk = 'id,name,city,amount,joined\n';
    let size = chunk.length;
    let row = 0;
    const encoder = new TextEncoder();
    while (size < bytes) {
      row += 1;
      const city = CITIES[row % CITIES.length];
      const line = row % 10007 === 0
        ? `${row},"broken, row"\n`
        : `${row},"Learner ${row}",${city},${((row * 7919) % 100000) / 100},2026-${String((row % 12) + 1).padStart(2, '0')}-${String((row % 28) + 1).padStart(2, '0')}\n`;
      chunk += line;
      if (chunk.length >= MiB) {
        const encoded = encoder.encode(chunk);
        parts.push(encoded);
        size += encoded.length;
        chunk = '';
      }
    }
    if (chunk) parts.push(encoder.encode(chunk));
    return new Blob(parts, { type: 'text/csv' });
  }

  function ensureBlob() {
    if (blob) return blob;
    const input = $('#ul-file');
    if (input && input.files && input.files[0]) return input.files[0];
    return null;
  }

  // ------------------------------------------------------------------------------------------
  // Uploads

  function showSummary(file) {
    const summary = file.summary || {};
    const stats = (summary.stats || []).map((s) => {
      const numeric = s.numeric
        ? `sum ${number(s.numeric.sum)} · min ${number(s.numeric.min)} · max ${number(s.numeric.max)}`
        : '—';
      return `<tr><td>${escape(s.name)}</td><td>${s.filled}</td><td>${numeric}</td><td>${s.longest}</td></tr>`;
    }).join('');
    // The summary is the aggregator's (shared with the graded challenge): camelCase fields.
    const invalid = summary.invalidRows
      ? ` · <strong>${summary.invalidRows} invalid rows</strong> (lines ${(summary.firstInvalidLines || []).join(', ')})`
      : '';
    result.innerHTML = `<h3>${escape(file.name)}</h3>
      <p data-summary-rows>${summary.rows} rows · ${human(file.size)} · columns: ${escape((summary.columns || []).join(', '))}${invalid}</p>
      <p class="ul-sha">sha256 ${file.sha256}</p>
      <table><thead><tr><th scope="col">Column</th><th scope="col">Filled</th><th scope="col">Numbers</th><th scope="col">Longest</th></tr></thead><tbody>${stats}</tbody></table>
      <p><a href="/labs/upload?uploaded=${file.id}#files">See it in my files</a></p>`;
  }

  function number(value) {
    return Number.isInteger(value) ? String(value) : value.toFixed(4).replace(/0+$/, '');
  }

  function escape(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  function showError(status, body) {
    let parsed = null;
    try { parsed = JSON.parse(body); } catch (_) { /* not JSON */ }
    const code = parsed && parsed.error ? parsed.error : `HTTP ${status}`;
    const message = parsed && parsed.message ? parsed.message : body || 'The connection closed.';
    result.innerHTML = `<p class="form-error" role="alert"><code>${escape(code)}</code> (${status}): ${escape(message)}</p>`;
    say(`${code}: ${message}`);
  }

  // One XHR with upload progress; resolves with { status, body }.
  function send(method, url, body, headers) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      current = xhr;
      abortButton.disabled = false;
      xhr.open(method, url);
      Object.entries(headers || {}).forEach(([k, v]) => xhr.setRequestHeader(k, v));
      const total = body && body.size != null ? body.size : 0;
      xhr.upload.onprogress = (event) => setProgress(event.loaded, event.lengthComputable ? event.total : total);
      xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText, xhr });
      xhr.onerror = () => resolve({ status: 0, body: '', xhr });
      xhr.onabort = () => resolve({ status: -1, body: '', xhr });
      xhr.send(body);
    }).finally(() => {
      current = null;
      abortButton.disabled = true;
    });
  }

  async function finish(response, started) {
    const seconds = (performance.now() - started) / 1000;
    if (response.status === 201) {
      const json = JSON.parse(response.body);
      const file = json.files[0];
      showSummary(file);
      say(`stored ${file.name}: ${human(file.size)}, ${file.summary.rows} rows in ${seconds.toFixed(1)} s`);
    } else if (response.status === -1) {
      say('cut off by you');
    } else {
      showError(response.status, response.body);
    }
  }

  const jsonHeaders = { 'X-CSRF-Token': csrf, Accept: 'application/json' };

  async function upload(mode) {
    const file = ensureBlob();
    if (!file) {
      say('Choose a file above or generate one first.');
      return;
    }
    const name = file.name || 'generated.csv';
    result.textContent = '';
    setProgress(0, file.size);
    const started = performance.now();
    say(`${mode}: sending ${human(file.size)}`);
    if (mode === 'stream') {
      const form = new FormData();
      form.append('csrf_token', csrf);
      form.append('file', file, name);
      await finish(await send('POST', `${api}/files`, form, jsonHeaders), started);
    } else if (mode === 'raw') {
      await finish(await send('PUT', `${api}/files?name=${encodeURIComponent(name)}`, file,
        { ...jsonHeaders, 'Content-Type': 'text/csv' }), started);
    } else if (mode === 'buffered') {
      await finish(await send('POST', `${api}/buffered?name=${encodeURIComponent(name)}`, file,
        { ...jsonHeaders, 'Content-Type': 'text/csv' }), started);
    } else if (mode === 'presigned') {
      const grant = await fetch(`${api}/presign`, {
        method: 'POST',
        headers: { ...jsonHeaders, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name, content_type: 'text/csv', max_bytes: file.size }),
      });
      const text = await grant.text();
      if (grant.status !== 201) {
        showError(grant.status, text);
        return;
      }
      const { url } = JSON.parse(text);
      say(`presigned URL (no cookies needed): ${url.slice(0, 90)}…`);
      await finish(await send('PUT', url, file, { 'Content-Type': 'text/csv', Accept: 'application/json' }), started);
    } else if (mode === 'tus') {
      const response = await fetch(tusPath, {
        method: 'POST',
        headers: {
          ...jsonHeaders,
          'Tus-Resumable': '1.0.0',
          'Upload-Length': String(file.size),
          'Upload-Metadata': `filename ${btoa(unescape(encodeURIComponent(name)))}`,
        },
      });
      if (response.status !== 201) {
        showError(response.status, await response.text());
        return;
      }
      tus = { url: response.headers.get('Location'), file };
      say(`tus upload created: ${tus.url}`);
      await tusSend(0, started);
    }
  }

  // Sends the tus upload from `offset` in 8 MiB PATCHes.
  async function tusSend(offset, started) {
    const { url, file } = tus;
    resumeButton.disabled = true;
    while (offset < file.size) {
      const end = Math.min(file.size, offset + TUS_CHUNK);
      const base = offset;
      const response = await new Promise((resolve) => {
        const xhr = new XMLHttpRequest();
        current = xhr;
        abortButton.disabled = false;
        xhr.open('PATCH', url);
        xhr.setRequestHeader('Tus-Resumable', '1.0.0');
        xhr.setRequestHeader('Upload-Offset', String(base));
        xhr.setRequestHeader('Content-Type', 'application/offset+octet-stream');
        xhr.setRequestHeader('X-CSRF-Token', csrf);
        xhr.upload.onprogress = (event) => setProgress(base + event.loaded, file.size);
        xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText, xhr });
        xhr.onerror = () => resolve({ status: 0, body: '', xhr });
        xhr.onabort = () => resolve({ status: -1, body: '', xhr });
        xhr.send(file.slice(base, end));
      });
      current = null;
      abortButton.disabled = true;
      if (response.status !== 204) {
        if (response.status === -1 || response.status === 0) {
          say(`tus: interrupted near ${human(base)}; press Resume`);
          resumeButton.disabled = false;
        } else {
          showError(response.status, response.body);
        }
        return;
      }
      offset = Number(response.xhr.getResponseHeader('Upload-Offset'));
    }
    const id = url.split('/').pop();
    const stored = await fetch(`${api}/files/${id}`, { headers: { Accept: 'application/json' } });
    if (stored.ok) {
      showSummary(await stored.json());
      say(`tus upload complete in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    tus = null;
  }

  async function resume() {
    if (!tus) return;
    const head = await fetch(tus.url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    if (!head.ok) {
      say(`tus: HEAD answered ${head.status}; start a new upload`);
      return;
    }
    const offset = Number(head.headers.get('Upload-Offset'));
    say(`tus: the server has ${human(offset)}; resuming from there`);
    await tusSend(offset, performance.now());
  }

  lab.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-action]');
    if (!button) return;
    const action = button.dataset.action;
    if (action === 'generate') {
      const megabytes = Math.max(1, Number($('#ul-size').value) || 100);
      generated.textContent = 'generating…';
      await new Promise((r) => setTimeout(r, 10));
      blob = generate(megabytes * 1000 * 1000);
      blob.name = 'generated.csv';
      generated.textContent = `generated.csv ready: ${human(blob.size)}`;
      say(`generated ${human(blob.size)}`);
    } else if (action === 'abort') {
      if (current) current.abort();
    } else if (action === 'resume') {
      await resume();
    } else {
      await upload(action);
    }
  });

  // ------------------------------------------------------------------------------------------
  // The live gauge
  const status = $('[data-live-status]');
  if (window.EventSource) {
    const source = new EventSource(`${api}/events`);
    source.addEventListener('open', () => { status.textContent = 'live'; });
    source.addEventListener('error', () => { status.textContent = 'reconnecting…'; });
    source.addEventListener('status', (event) => {
      const snapshot = JSON.parse(event.data);
      if (snapshot.rss_bytes) rssPeak = Math.max(rssPeak, snapshot.rss_bytes);
      $('[data-rss]').textContent = human(snapshot.rss_bytes);
      $('[data-rss-peak]').textContent = human(rssPeak);
      $('[data-in-flight]').textContent = human(snapshot.bytes_in_flight);
      $('[data-uploads]').textContent = String(snapshot.uploads_in_flight);
      $('[data-buffered]').textContent = human(snapshot.buffered_bytes);
      const mine = snapshot.uploads[snapshot.uploads.length - 1];
      if (mine) {
        const total = mine.expected || (blob ? blob.size : 0);
        serverProgress.value = total ? Math.min(100, (mine.bytes / total) * 100) : 0;
        serverText.textContent = `${human(mine.bytes)} stored, ${mine.rows.toLocaleString()} rows parsed (${mine.kind})`;
        serverText.dataset.rows = String(mine.rows);
      }
    });
  }
})();
