// A learner opens the streaming-upload lab, generates a CSV in the browser and uploads it: the
// progress bar advances while the server reports rows as it parses them, and the summary
// appears. Then a resumable (tus) upload is cut off midway and resumed to the end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverAndBrowser } from './harness.mjs';

const session = serverAndBrowser();

// Samples a selector's numeric value every 20 ms until `done` resolves.
async function sampleWhile(page, read, done) {
  const seen = [];
  let finished = false;
  done.then(() => { finished = true; }, () => { finished = true; });
  while (!finished) {
    seen.push(await read());
    await page.waitForTimeout(20);
  }
  await done;
  return seen;
}

test('a generated CSV uploads with a moving progress bar and a summary', async () => {
  const page = await session.browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${session.server.url}/labs/upload`);
  await page.locator('[data-live-status]').filter({ hasText: 'live' }).waitFor({ timeout: 10_000 });

  await page.locator('#ul-size').fill('40');
  await page.getByRole('button', { name: 'Generate CSV' }).click();
  await page.locator('[data-generated]').filter({ hasText: 'ready' }).waitFor({ timeout: 30_000 });

  await page.getByRole('button', { name: 'Streaming (multipart)' }).click();
  const summary = page.locator('[data-result] [data-summary-rows]');
  const progress = page.locator('[data-progress]');
  const serverRows = [];
  const values = await sampleWhile(
    page,
    async () => {
      const rows = await page.locator('[data-server-text]').getAttribute('data-rows');
      if (rows) serverRows.push(Number(rows));
      return Number(await progress.evaluate((el) => el.value));
    },
    summary.waitFor({ timeout: 120_000 }),
  );
  const between = values.filter((v) => v > 0 && v < 100);
  assert.ok(between.length >= 2, `the bar moved through intermediate values: ${values.join(',')}`);
  assert.equal(values.at(-1), 100);
  assert.ok(serverRows.some((r) => r > 0), 'the server reported rows while parsing');
  const text = await summary.textContent();
  const rows = Number(text.split(' ')[0]);
  assert.ok(rows > 500_000, text);
  assert.match(text, /columns: id, name, city, amount, joined/);

  // The file is in "My files" with a signed download link.
  await page.goto(`${session.server.url}/labs/upload`);
  const link = page.locator('table[data-files] tbody tr a[download]').first();
  assert.match(await link.getAttribute('href'), /\/labs\/upload\/download\/.+sig=/);
  assert.deepEqual(errors, []);
});

test('a resumable upload is cut off midway and resumed to the end', async () => {
  const page = await session.browser.newPage();
  await page.goto(`${session.server.url}/labs/upload`);
  await page.locator('#ul-size').fill('30');
  await page.getByRole('button', { name: 'Generate CSV' }).click();
  await page.locator('[data-generated]').filter({ hasText: 'ready' }).waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Resumable (tus)' }).click();
  // Wait until part of it is through, then cut it off.
  await page.waitForFunction(() => document.querySelector('[data-progress]').value > 20, null, { timeout: 60_000 });
  await page.getByRole('button', { name: 'Cut it off' }).click();
  await page.locator('[data-log]').filter({ hasText: 'press Resume' }).waitFor({ timeout: 10_000 });
  const resume = page.getByRole('button', { name: 'Resume (tus)' });
  assert.equal(await resume.isEnabled(), true);
  await resume.click();
  await page.locator('[data-log]').filter({ hasText: 'resuming from there' }).waitFor();
  const summary = page.locator('[data-result] [data-summary-rows]');
  await summary.waitFor({ timeout: 120_000 });
  assert.ok(Number((await summary.textContent()).split(' ')[0]) > 300_000);
});
