// A candidate works on the streaming-upload challenge in the browser: the starter (which glues
// every chunk into one string) fails the public tests and runs out of memory on the large
// hidden upload; the streaming reference solves the lab.
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

test('hoarding the upload hits the memory limit, streaming it solves the lab', async () => {
  const page = await session.browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${session.server.url}/signup?next=/labs/upload/challenge`);
  await page.getByLabel('Email').fill('streamer@example.com');
  await page.getByLabel('Password').fill('a long and unusual passphrase');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL('**/labs/upload/challenge');
  await page.locator('.cm-editor').waitFor();
  assert.match(await page.locator('h1').textContent(), /Streaming CSV aggregator/);

  // The starter: wrong answers on the public tests, shown with expected vs actual.
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.locator('.summary:has-text("/48 tests passed")').waitFor({ timeout: 120_000 });
  assert.ok(await page.locator('.test-result.is-fail[data-verdict="wrong_answer"] .diff').count() > 0);
  const large = page.locator('.test-result:has-text("a large upload in 64 KiB chunks")');
  assert.equal(await large.getAttribute('data-verdict'), 'memory_limit');
  assert.match(await large.locator('.test-message').textContent(), /Memory limit/);

  const reference = await readFile(path.join(root, 'labs/upload/reference.js'), 'utf8');
  await replaceCode(page, reference);
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.locator('.summary.verdict-accepted').waitFor({ timeout: 120_000 });
  assert.match(await page.locator('.summary').textContent(), /48\/48 tests passed.*lab solved/s);
  await page.reload();
  assert.match(await page.locator('h1').textContent(), /Solved/);
  assert.deepEqual(errors, []);
});
