// Asks one question on the chat page in headless Chromium, watches the answer stream in,
// checks its numbered sources, sends a thumbs-down with a comment, and prints what it saw
// as JSON. Usage: node chat_flow.mjs URL QUESTION COMMENT SCREENSHOT.png
import { openPage } from "./browser.mjs";

const [url, question, comment, screenshot] = process.argv.slice(2);
const result = {};
const { browser, page } = await openPage(result);
try {
  await page.goto(url);
  // Record every text the answer shows while it streams (before the final answer lands).
  await page.evaluate(() => {
    window.seen = [];
    new MutationObserver(() => {
      const text = document.querySelector(".answer .text");
      const done = document.querySelector(".answer[data-answer-id]");
      if (text && !done && text.textContent) window.seen.push(text.textContent.length);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.fill("#question", question);
  await page.press("#question", "Enter");
  const answer = page.locator(".answer[data-answer-id]");
  await answer.waitFor({ timeout: 120_000 });
  result.answer_id = await answer.getAttribute("data-answer-id");
  result.text = await page.locator(".answer .text").textContent();
  result.updates_while_streaming = await page.evaluate(() => new Set(window.seen).size);
  result.sources = await page.locator(".sources li").allTextContents();
  result.source_links = await page.locator(".sources a").evaluateAll((as) => as.map((a) => a.href));
  result.notice = await page.locator(".notice").textContent();
  result.error = await page.locator(".answer .error").isVisible();
  const mark = page.locator(".answer .correction");
  result.correction = (await mark.isVisible()) ? await mark.textContent() : null;
  await page.click(".thumbs-down");
  await page.fill(".feedback-comment", comment);
  await page.click(".feedback-send");
  await page.locator(".feedback-status", { hasText: "Thanks" }).waitFor({ timeout: 30_000 });
  result.feedback_status = await page.locator(".feedback-status").textContent();
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
