// The upload lab's tus endpoint with a real tus client: npm's tus-js-client (in Node, no browser)
// uploads a CSV in 4 MiB PATCHes, is aborted midway, and a second client resumes from the
// server's offset (HEAD) to the end. The server's summary must match the file exactly.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import * as tus from 'tus-js-client';
import { startServer } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function csv(rows) {
  const lines = ['id,name,amount'];
  for (let i = 1; i <= rows; i += 1) lines.push(`${i},"name, ${i}",${i % 1000}.5`);
  return Buffer.from(`${lines.join('\n')}\n`);
}

async function labKey() {
  const page = await fetch(`${server.url}/labs/upload`);
  const match = (await page.text()).match(/X-Lab-Key: ([^']+)'/);
  assert.ok(match, 'the page shows a lab key');
  return match[1];
}

function upload(data, options) {
  return new tus.Upload(data, {
    endpoint: `${server.url}/labs/upload/tus`,
    chunkSize: 4 * 1024 * 1024,
    retryDelays: null,
    metadata: { filename: 'tus-client.csv', filetype: 'text/csv' },
    ...options,
  });
}

test('tus-js-client uploads, is interrupted, and resumes where the server stopped', async () => {
  const key = await labKey();
  const headers = { 'X-Lab-Key': key };
  const data = csv(600_000); // ~16 MB
  const sha256 = createHash('sha256').update(data).digest('hex');

  // First client: abort once a third is through.
  const first = upload(data, { headers });
  const url = await new Promise((resolve, reject) => {
    first.options.onProgress = (sent) => {
      if (sent > data.length / 3) first.abort().then(() => resolve(first.url), reject);
    };
    first.options.onError = reject;
    first.options.onSuccess = () => reject(new Error('finished before it could be interrupted'));
    first.start();
  });
  assert.match(url, /\/labs\/upload\/tus\/[0-9a-f]{32}$/);

  const head = await fetch(url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } });
  assert.equal(head.status, 200);
  const offset = Number(head.headers.get('upload-offset'));
  assert.ok(offset > 0 && offset < data.length, `the server kept part of it: ${offset}`);

  // Second client: resumes from the stored URL; it must not start over.
  let firstReported = null;
  await new Promise((resolve, reject) => {
    const second = upload(data, {
      headers,
      uploadUrl: url,
      onProgress: (sent) => { if (firstReported === null) firstReported = sent; },
      onError: reject,
      onSuccess: resolve,
    });
    second.start();
  });
  assert.ok(firstReported >= offset, `resumed at ${firstReported}, the server had ${offset}`);

  const id = url.split('/').pop();
  const file = await (await fetch(`${server.url}/labs/upload/api/files/${id}`, { headers })).json();
  assert.equal(file.name, 'tus-client.csv');
  assert.equal(file.size, data.length);
  assert.equal(file.sha256, sha256);
  assert.equal(file.summary.rows, 600_000);
  assert.deepEqual(file.summary.columns, ['id', 'name', 'amount']);
});
