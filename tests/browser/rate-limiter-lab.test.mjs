// A learner goes from the rate-limiting lesson to the live lab, fires a burst through the
// real Redis-backed limiter, watches the live stream, and finds the graded challenge.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverAndBrowser } from './harness.mjs';

const session = serverAndBrowser();

test('from the lesson to the live limiter: a burst is cut at the limit and shows up live', async () => {
  const page = await session.browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${session.server.url}/lessons/rate-limiting-algorithms`);
  await page.locator('.lab-link a').click();
  await page.waitForURL('**/labs/rate-limiter');

  await page.locator('[data-live-status]').filter({ hasText: /connected|live/i }).first().waitFor({ timeout: 10_000 });
  await page.locator('#rl-count').fill('150');
  await page.getByRole('button', { name: 'Fire burst' }).click();
  const denied = page.locator('#burst-result [data-count="denied"]');
  await denied.waitFor();
  const allowedCount = parseInt(await page.locator('#burst-result [data-count="allowed"]').textContent(), 10);
  const deniedCount = parseInt(await denied.textContent(), 10);
  assert.equal(allowedCount + deniedCount, 150);
  assert.ok(allowedCount > 0 && deniedCount > 0, `${allowedCount} allowed, ${deniedCount} denied`);
  // The live view received the decisions over server-sent events.
  await page.locator('.rl-event').first().waitFor({ timeout: 10_000 });

  assert.equal(
    await page.getByRole('link', { name: 'Try the graded challenge' }).getAttribute('href'),
    '/labs/rate-limiter/challenge',
  );
  assert.deepEqual(errors, []);
});
