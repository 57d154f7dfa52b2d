// A candidate solves the rate-limiter challenge in the browser: the starter fails with a
// shrunk failing trace, the reference-quality solution passes test by test and the lab shows
// as solved on the dashboard.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { serverAndBrowser } from './harness.mjs';

const session = serverAndBrowser();
const root = path.resolve(import.meta.dirname, '..', '..');

async function replaceCode(page, code) {
  const editor = page.locator('.cm-content');
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // insertText avoids the editor's auto-indent and bracket closing.
  await page.keyboard.insertText(code);
}

test('a candidate runs the starter, sees the shortest failing trace, then solves the lab', async () => {
  const page = await session.browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${session.server.url}/signup?next=/labs/rate-limiter/challenge`);
  await page.getByLabel('Email').fill('candidate@example.com');
  await page.getByLabel('Password').fill('a long and unusual passphrase');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL('**/labs/rate-limiter/challenge');
  await page.locator('.cm-editor').waitFor();

  // The starter allows everything: public tests fail, with expected vs actual.
  await page.getByRole('button', { name: 'Run public tests' }).click();
  await page.locator('.summary:has-text("/3 tests passed")').waitFor();
  assert.equal(await page.locator('.test-result').count(), 3);
  assert.equal(await page.locator('.test-result.is-fail').count(), 3);
  assert.match(await page.locator('.summary strong').textContent(), /Wrong answer/);
  assert.ok(await page.locator('.test-result.is-fail .diff').first().isVisible());

  // An off-by-one at the expiry boundary passes the public tests but not everything else.
  const reference = await readFile(path.join(root, 'labs/rate-limiter/reference.js'), 'utf8');
  await replaceCode(page, reference.replace('log[expired] <= now - windowMs', 'log[expired] < now - windowMs'));
  await page.getByRole('button', { name: 'Submit' }).click();
  // The summary of this submit (38 tests), not the earlier run's (3 tests).
  await page.locator('.summary:has-text("/38 tests passed")').waitFor({ timeout: 60_000 });
  const failed = page.locator('.test-result.is-fail[data-verdict="wrong_answer"]');
  assert.ok(await failed.count() > 0);
  const shrunk = page.locator('.test-result.is-fail:has-text("random trace") pre.json').first();
  if (await shrunk.count()) {
    const trace = JSON.parse(await shrunk.textContent());
    assert.ok(trace.hits.length <= 4, `shrunk to ${trace.hits.length} hits`);
  }

  await replaceCode(page, reference);
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.locator('.summary.verdict-accepted').waitFor({ timeout: 60_000 });
  assert.match(await page.locator('.summary').textContent(), /38\/38 tests passed.*lab solved/s);

  // The draft survived and the lab counts on the dashboard.
  await page.reload();
  assert.match(await page.locator('h1').textContent(), /Solved/);
  await page.goto(`${session.server.url}/dashboard`);
  assert.match(await page.locator('#labs-solved').textContent(), /Sliding-log rate limiter/);
  assert.deepEqual(errors, []);
});
