// Starts a real labdeck server (the binary built by cargo) on a free port with a database of
// its own, and a headless Chromium driven by Playwright. Used by the browser tests.
import { spawn, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '..', '..');

export async function startServer() {
  const bin = process.env.LABDECK_BIN;
  if (!bin) throw new Error('LABDECK_BIN must point at the labdeck binary (make test sets it)');
  const admin = process.env.LABDECK_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `labdeck_browser_${randomUUID().replaceAll('-', '')}`;
  const databaseUrl = admin.replace(/\/[^/?]*(\?.*)?$/, `/${dbName}$1`).replace('undefined', '');
  const child = spawn(bin, ['serve', '--bind', '127.0.0.1:0'], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: process.env.LABDECK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      LABDECK_REDIS_PREFIX: `labdeck-browser:${dbName}:`,
      // The notifications lab on the test broker, with topics of this server's own.
      KAFKA_BROKERS: process.env.LABDECK_TEST_KAFKA_BROKERS ?? '127.0.0.1:19092',
      LABDECK_KAFKA_PREFIX: `${dbName}.`,
      LABDECK_NOTIFY_RETRY_BASE_MS: '300',
      LABDECK_NOTIFY_RETRY_MULTIPLIER: '2',
      LABDECK_NOTIFY_MAX_ATTEMPTS: '3',
      LABDECK_UPLOAD_DIR: path.join(os.tmpdir(), dbName, 'uploads'),
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${seen}`)), 60_000);
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      const match = seen.match(/running at (http:\/\/[^\s]+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${seen}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(path.join(os.tmpdir(), dbName), { recursive: true, force: true });
      try {
        execFileSync('psql', [admin, '-XqAc', `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`], { stdio: 'ignore' });
      } catch {
        // psql missing (remote database): the database is left for the operator to drop.
      }
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

// Registers hooks that start one server and one browser for the test file; the returned object
// holds them (`session.server.url`, `session.browser`) once the tests run.
export function serverAndBrowser() {
  const session = {};
  before(async () => {
    session.server = await startServer();
    session.browser = await launchBrowser();
  });
  after(async () => {
    await session.browser?.close();
    await session.server?.stop();
  });
  return session;
}
