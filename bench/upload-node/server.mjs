// The Node.js side of bench/upload.sh: the same job as labdeck's streaming endpoint — a multipart
// upload streamed to disk with busboy (the parser under multer) while the rows are counted and
// a SHA-256 is computed in the same pass — so throughput and memory can be compared.
// Usage: UPLOAD_DIR=/tmp/x node server.mjs  → prints "listening on <port>"; GET /rss answers the
// process's resident set and its peak (from /proc/self/status).
import http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import path from 'node:path';
import busboy from 'busboy';

const dir = process.env.UPLOAD_DIR;
const MAX_FILE = 200 * 1024 * 1024;

function memory() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (name) => Number(status.match(new RegExp(`${name}:\\s+(\\d+)`))[1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/rss') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(memory()));
    return;
  }
  if (req.method !== 'POST') {
    res.statusCode = 405;
    res.end();
    return;
  }
  let bb;
  try {
    bb = busboy({ headers: req.headers, limits: { fileSize: MAX_FILE, files: 5 } });
  } catch (err) {
    res.statusCode = 400;
    res.end(JSON.stringify({ error: String(err) }));
    return;
  }
  const files = [];
  const writes = [];
  let failed = null;
  bb.on('file', (field, file, info) => {
    const id = randomUUID();
    const target = path.join(dir, `${id}.csv`);
    const out = createWriteStream(target);
    const hash = createHash('sha256');
    let size = 0;
    let newlines = 0;
    file.on('data', (chunk) => {
      hash.update(chunk);
      size += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines += 1;
    });
    file.on('limit', () => { failed = 'LIMIT_FILE_SIZE'; });
    file.pipe(out);
    writes.push(new Promise((resolve) => out.on('close', () => {
      files.push({ id, name: info.filename, size, rows: Math.max(0, newlines - 1), sha256: hash.digest('hex') });
      resolve();
    })));
  });
  bb.on('close', async () => {
    await Promise.all(writes);
    res.setHeader('content-type', 'application/json');
    res.statusCode = failed ? 413 : 201;
    res.end(JSON.stringify(failed ? { error: failed } : { files }));
  });
  bb.on('error', (err) => {
    res.statusCode = 400;
    res.end(JSON.stringify({ error: String(err) }));
  });
  req.pipe(bb);
});

server.listen(0, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
