// Works the reviewers' page in headless Chromium: signs in with the admin token, writes a
// correction for an answer marked wrong, says "same question" to one question in the review
// queue, disables and enables a correction, and prints what it saw as JSON.
// Usage: node review_flow.mjs URL TOKEN WRONG_ANSWER_ID CORRECTED_ANSWER QUEUED_ANSWER_ID SCREENSHOT.png
import { openPage } from "./browser.mjs";

const [url, token, wrongId, corrected, queuedId, screenshot] = process.argv.slice(2);
const result = {};
const { browser, page } = await openPage(result);
try {
  await page.goto(url);
  await page.fill("#token", "not-the-token-at-all");
  await page.fill("#author", "rita");
  await page.click("#sign-in button[type=submit]");
  await page.locator("#sign-in-status", { hasText: "refused" }).waitFor({ timeout: 30_000 });
  result.refused = await page.locator("#work").isHidden();
  await page.fill("#token", token);
  await page.click("#sign-in button[type=submit]");
  await page.locator("#work").waitFor({ state: "visible", timeout: 120_000 });
  result.wrong = await page.locator("#wrong .item .question").allTextContents();
  result.queue = await page.locator("#queue .item .question").allTextContents();

  const wrong = page.locator("#wrong .item", { hasText: wrongId });
  result.comment = await wrong.locator(".comment").textContent();
  await wrong.locator(".answer-text").fill(corrected);
  await wrong.locator(".reason").fill("too vague");
  await wrong.locator("button[type=submit]").click();
  await wrong.locator(".status", { hasText: "Saved as correction" }).waitFor({ timeout: 60_000 });
  result.saved = await wrong.locator(".status").textContent();

  const queued = page.locator("#queue .item", { hasText: queuedId });
  result.queued_correction = await queued.locator(".correction-question").textContent();
  await queued.locator(".same").click();
  await queued.locator(".status", { hasText: "Linked" }).waitFor({ timeout: 60_000 });
  result.linked = await queued.locator(".status").textContent();

  const known = page.locator("#corrections .item", { hasText: result.queued_correction });
  await known.locator(".toggle").click();
  await known.locator(".status", { hasText: "Disabled" }).waitFor({ timeout: 60_000 });
  await known.locator(".toggle", { hasText: "Enable" }).click();
  await known.locator(".status", { hasText: /^Enabled\.$/ }).waitFor({ timeout: 60_000 });
  result.toggled = await known.locator(".toggle").textContent();

  await page.click("#reload");
  await page.locator("#wrong .item", { hasText: wrongId }).waitFor({ state: "detached", timeout: 120_000 });
  result.wrong_after = await page.locator("#wrong .item .question").allTextContents();
  result.queue_after = await page.locator("#queue .item .question").allTextContents();
  result.corrections = await page.locator("#corrections .item .question").allTextContents();
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
