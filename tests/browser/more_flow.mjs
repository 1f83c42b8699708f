// The reviewers' page with a long backlog, on canned API answers (no server): a list that comes
// back at its limit says so ("200+") and "Show more" asks for twice as many of that list only,
// keeping what was typed, and says it is loading meanwhile; a list that fails to load loses its
// count and its "Show more".
//   node more_flow.mjs        prints a JSON summary for tests/test_review_page.py
import { openPage } from "./browser.mjs";
import fs from "fs";

const dir = new URL("../../rag/static/", import.meta.url).pathname;  // the page as it ships
const result = {};
const { browser, page } = await openPage(result);
const seen = [];
const backlog = { wrong: 250, queue: 70, failWrong: false };
await page.route("http://fixture/**", async (route) => {
  const url = new URL(route.request().url());
  seen.push(url.pathname + url.search);
  const json = (o) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(o) });
  const limit = Number(url.searchParams.get("limit"));
  await new Promise((done) => setTimeout(done, 150));  // slow enough to click twice meanwhile
  if (url.pathname === "/review") return route.fulfill({ status: 200, contentType: "text/html", body: fs.readFileSync(dir + "review.html") });
  if (url.pathname.startsWith("/static/")) {
    const type = url.pathname.endsWith(".js") ? "text/javascript" : "text/css";
    return route.fulfill({ status: 200, contentType: type, body: fs.readFileSync(dir + url.pathname.slice(8)) });
  }
  if (url.pathname === "/v1/feedback/open") {
    if (backlog.failWrong) return route.fulfill({ status: 500, contentType: "application/json", body: '{"error": "boom"}' });
    return json({ feedback: Array.from({ length: Math.min(limit, backlog.wrong) }, (_, i) => (
      { answer_id: `a${i}`, question: `q${i}`, answer: "x", created_at: "2026-11-27T00:00:00Z", reports: 1 })) });
  }
  if (url.pathname === "/v1/corrections/suggestions") {
    return json({ suggestions: Array.from({ length: Math.min(limit, backlog.queue) }, (_, i) => (
      { answer_id: `s${i}`, question: `sq${i}`, correction_id: "c1", correction_question: "cq", similarity: 0.6,
        times_asked: 1, bad_feedback: false, probability: 0.5 })) });
  }
  if (url.pathname === "/v1/corrections") return json({ corrections: [] });
  return route.fulfill({ status: 404, body: "" });
});
const state = async () => ({
  wrong: await page.textContent("#wrong-count"), wrongMore: await page.isVisible("#wrong-more"),
  queue: await page.textContent("#queue-count"), queueMore: await page.isVisible("#queue-more"),
});
const requests = () => seen.filter((s) => s.startsWith("/v1/"));

await page.goto("http://fixture/review");
await page.fill("#token", "t");
await page.fill("#author", "me");
await page.click("#sign-in button[type=submit]");
await page.waitForSelector("#wrong .item");
await page.waitForSelector("#queue .item");
const before = { ...(await state()), items: await page.locator("#wrong .item").count() };
const first = requests();
seen.length = 0;

await page.fill("#wrong .item:nth-child(3) .answer-text", "draft kept");
await page.click("#wrong-more");
await page.click("#wrong-more", { force: true, noWaitAfter: true }).catch(() => {});  // a second click while it loads
const loading = { label: await page.textContent("#wrong-more"), busy: await page.getAttribute("#wrong", "aria-busy") };
await page.waitForFunction(() => document.querySelectorAll("#wrong .item").length === 250);
const wrongMore = { ...(await state()), draft: await page.inputValue("#wrong .item:nth-child(3) .answer-text"), requests: requests(),
  loading, label: await page.textContent("#wrong-more"), busy: await page.getAttribute("#wrong", "aria-busy") };
seen.length = 0;

await page.click("#queue-more");
await page.waitForFunction(() => document.querySelectorAll("#queue .item").length === 70);
const queueMore = { ...(await state()), requests: requests() };
seen.length = 0;

backlog.failWrong = true;
await page.click("#reload");
await page.waitForFunction(() => document.querySelector("#wrong").textContent.startsWith("Could not load"));
const failed = { ...(await state()), text: await page.textContent("#wrong") };

console.log(JSON.stringify({ before, first, wrongMore, queueMore, failed, console: result.console }));
await browser.close();
