// A learner's first session, in a real browser: sign up, read a lesson, answer a quiz, mark the
// lesson complete, and see the dashboard change. Plus search-as-you-type and dark mode.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverAndBrowser } from './harness.mjs';

const session = serverAndBrowser();

test('a new learner signs up, answers a quiz, completes a lesson and sees the dashboard change', async () => {
  const page = await session.browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));

  await page.goto(session.server.url);
  await page.getByRole('link', { name: 'Sign up' }).click();
  await page.getByLabel('Email').fill('learner@example.com');
  await page.getByLabel('Password').fill('a long and unusual passphrase');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL('**/dashboard');
  const total = (await page.locator('#stat-completed').textContent()).split('/')[1].trim();
  assert.equal((await page.locator('#stat-completed').textContent()).trim(), `0 / ${total}`);

  await page.goto(`${session.server.url}/lessons/event-loop`);
  assert.equal(await page.locator('article.lesson h1').textContent(), 'The event loop, phase by phase');

  // Answer the first quiz; if the first guess is wrong, the revealed answer is chosen next.
  const quiz = page.locator('form.quiz').first();
  const quizId = await quiz.getAttribute('id');
  await quiz.locator('.quiz-option').first().click();
  await quiz.getByRole('button', { name: 'Check answer' }).click();
  const answered = page.locator(`#${quizId}.is-correct, #${quizId}.is-wrong`);
  await answered.waitFor();
  if (await page.locator(`#${quizId}.is-wrong`).count()) {
    await page.locator(`#${quizId} .quiz-option.is-answer`).click();
    await page.locator(`#${quizId}`).getByRole('button', { name: 'Answer again' }).click();
  }
  await page.locator(`#${quizId}.is-correct`).waitFor();
  assert.equal(await page.locator(`#${quizId} .quiz-verdict`).textContent(), 'Correct.');
  assert.equal(page.url(), `${session.server.url}/lessons/event-loop`, 'htmx swapped the quiz in place');

  await page.getByRole('button', { name: 'Mark lesson complete' }).click();
  await page.locator('.complete-status .badge-done').waitFor();

  await page.getByRole('link', { name: 'Dashboard' }).click();
  await page.waitForURL('**/dashboard');
  assert.equal((await page.locator('#stat-completed').textContent()).trim(), `1 / ${total}`);
  assert.equal((await page.locator('#stat-quizzes').textContent()).trim(), '1 / 1');
  assert.equal((await page.locator('#stat-streak').textContent()).trim(), '1');
  assert.match(await page.locator('.activity li').first().textContent(), /Completed\s+The event loop/);

  // Progress survives a fresh page load and the track page shows the tick.
  await page.goto(`${session.server.url}/tracks/node-fundamentals`);
  assert.equal(await page.locator('.lesson-item.is-done').count(), 1);
  assert.deepEqual(errors, []);
});

test('search shows results while typing and keeps the URL shareable', async () => {
  const page = await session.browser.newPage();
  await page.goto(`${session.server.url}/search`);
  await page.locator('main').getByLabel('Search lessons').pressSequentially('backpress', { delay: 30 });
  const hit = page.locator('#search-results a[href="/lessons/streams-backpressure"]');
  await hit.waitFor();
  assert.ok(await page.locator('#search-results mark').count() > 0);
  await page.waitForURL('**/search?q=backpress');
});

test('the theme toggle switches to dark mode and remembers it', async () => {
  const page = await session.browser.newPage({ colorScheme: 'light' });
  await page.goto(`${session.server.url}/lessons/circuit-breaker`);
  await page.getByRole('button', { name: 'Toggle dark mode' }).click();
  assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
  await page.reload();
  assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, 'rgb(17, 20, 24)');
  // The state diagram was drawn as SVG by mermaid.
  await page.locator('figure.diagram svg').first().waitFor();
});

test('keyboard users can skip to the content and open an interview answer', async () => {
  const page = await session.browser.newPage();
  await page.goto(`${session.server.url}/lessons/event-loop`);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.keyboard.press('Enter');
  const summary = page.locator('details.interview summary').first();
  await summary.focus();
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('details.interview').first().getAttribute('open'), '');
});
