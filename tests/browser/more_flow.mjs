// The reviewers' page with a long backlog, on canned API answers (no server): a list that comes
// back at its limit says so ("200+") and "Show more" asks for twice as many, keeping what was typed.
//   node more_flow.mjs        prints a JSON summary for tests/test_serve_ray.py
import { openPage } from "./browser.mjs";
import fs from "fs";
const dir = new URL("../../rag/static/", import.meta.url).pathname;  // the page as it ships
const result = {};
const { browser, page } = await openPage(result);
const seen = [];
await page.route("http://fixture/**", async (route) => {
  const url = new URL(route.request().url());
  seen.push(url.pathname + url.search);
  const json = (o) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(o) });
  if (url.pathname === "/review") return route.fulfill({ status: 200, contentType: "text/html", body: fs.readFileSync(dir + "review.html") });
  if (url.pathname.startsWith("/static/")) return route.fulfill({ status: 200, contentType: url.pathname.endsWith(".js") ? "text/javascript" : "text/css", body: fs.readFileSync(dir + url.pathname.slice(8)) });
  if (url.pathname === "/v1/feedback/open") {
    const n = Math.min(Number(url.searchParams.get("limit")), 250);
    return json({ feedback: Array.from({ length: n }, (_, i) => ({ answer_id: `a${i}`, question: `q${i}`, answer: "x", created_at: "2026-11-27T00:00:00Z", reports: 1 })) });
  }
  if (url.pathname === "/v1/corrections/suggestions") return json({ suggestions: [] });
  if (url.pathname === "/v1/corrections") return json({ corrections: [] });
  return route.fulfill({ status: 404, body: "" });
});
await page.goto("http://fixture/review");
await page.fill("#token", "t"); await page.fill("#author", "me"); await page.click("#sign-in button[type=submit]");
await page.waitForSelector("#wrong .item");
const before = { count: await page.textContent("#wrong-count"), more: await page.isVisible("#wrong-more"), queueMore: await page.isVisible("#queue-more"), items: await page.locator("#wrong .item").count() };
await page.fill("#wrong .item:nth-child(3) .answer-text", "draft kept");
await page.click("#wrong-more");
await page.waitForFunction(() => document.querySelectorAll("#wrong .item").length === 250);
const after = { count: await page.textContent("#wrong-count"), more: await page.isVisible("#wrong-more"), draft: await page.inputValue("#wrong .item:nth-child(3) .answer-text") };
console.log(JSON.stringify({ before, after, seen: seen.filter((s) => s.startsWith("/v1/feedback")), console: result.console }));
await browser.close();
