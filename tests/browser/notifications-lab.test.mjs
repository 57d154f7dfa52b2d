// A learner goes from the real-time notifications lesson to the lab, places an order, and sees
// the notification arrive live over the WebSocket as a toast, then follows its journey.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverAndBrowser } from './harness.mjs';

const session = serverAndBrowser();

test('an order placed in the lab comes back as a live toast, acknowledged in its journey', async () => {
  const page = await session.browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${session.server.url}/lessons/realtime-notifications`);
  await page.locator('.lab-link a').click();
  await page.waitForURL('**/labs/notifications');
  assert.match(await page.locator('[data-kafka-mode]').textContent(), /Kafka cluster at/);
  await page.locator('[data-ws-status]').filter({ hasText: 'live' }).waitFor({ timeout: 15_000 });

  await page.locator('#nl-item').fill('Pour-over kettle');
  await page.locator('#nl-quantity').fill('3');
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.locator('#order-status').filter({ hasText: 'Order placed' }).waitFor();

  // The toast comes from the WebSocket, without reloading the page.
  const toast = page.locator('#toasts .toast-info').filter({ hasText: 'Pour-over kettle' });
  await toast.waitFor({ timeout: 60_000 });
  assert.match(await toast.textContent(), /3 × Pour-over kettle — \$59\.97/);
  const item = page.locator('[data-notifications] li[data-seq="1"]');
  await item.waitFor();
  assert.match(await page.locator('[data-unread]').textContent(), /1 unread/);
  assert.equal(await page.locator('[data-client-cursor]').textContent(), '1');

  // The activity panel (polled) shows the journey up to the browser's acknowledgement.
  await page.locator('[data-journey] [data-stage="acked"]').waitFor({ timeout: 30_000 });
  for (const stage of ['order_placed', 'published', 'consumed', 'stored', 'pushed']) {
    assert.equal(await page.locator(`[data-journey] [data-stage="${stage}"]`).count() >= 1, true, stage);
  }
  assert.deepEqual(errors, []);
});
