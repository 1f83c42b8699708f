// The chat page on canned API answers (no server): an answer that names corrections of
// similar questions offers them; "That is what I asked" posts the answer and correction ids to
// /v1/feedback/confirm and shows the corrected answer as a new turn, marked as a correction;
// a failure that is not the server's refusal (a proxy's error page) lets the asker try again.
// A correction's question is shown as text, never as HTML.
//   node confirm_flow.mjs        prints a JSON summary for tests/test_review_page.py
import { openPage } from "./browser.mjs";
import fs from "fs";

const dir = new URL("../../rag/static/", import.meta.url).pathname;  // the page as it ships
const result = {};
const { browser, page } = await openPage(result);
const posted = [];
const related = [{ id: "c1", question: 'How do I resume a failed backup? <img src=x onerror="window.hacked=1">',
                  similarity: 0.61, probability: 0.5 },
                 { id: "c2", question: "How do I delete a backup?", similarity: 0.55, probability: 0.3 }];
const answer = { id: "a1", question: "backup died halfway, continue?", answer: "Check the logs [1].", feedback: true,
                 sources: [{ n: 1, path: "docs/backup.md", title: "Backups", section: [], cited: true }],
                 correction: null, related_corrections: related };
const corrected = { id: "a2", question: answer.question, answer: "Run wombat backup --resume.", feedback: true,
                    sources: [{ n: 1, path: "correction:c1", title: "Human correction by ana, 2026-11-27", section: [], cited: true }],
                    correction: { id: "c1", mode: "verbatim", author: "ana", created_at: "2026-11-27T00:00:00Z",
                                  confirmed_by_asker: true }, related_corrections: [] };
await page.route("http://fixture/**", async (route) => {
  const url = new URL(route.request().url());
  const json = (o, status = 200) => route.fulfill({ status, contentType: "application/json", body: JSON.stringify(o) });
  if (url.pathname === "/") return route.fulfill({ status: 200, contentType: "text/html", body: fs.readFileSync(dir + "index.html") });
  if (url.pathname.startsWith("/static/")) {
    const type = url.pathname.endsWith(".js") ? "text/javascript" : "text/css";
    return route.fulfill({ status: 200, contentType: type, body: fs.readFileSync(dir + url.pathname.slice(8)) });
  }
  if (url.pathname === "/v1/ask/stream") {
    const body = `event: delta\ndata: ${JSON.stringify({ text: answer.answer })}\n\nevent: answer\ndata: ${JSON.stringify(answer)}\n\n`;
    return route.fulfill({ status: 200, contentType: "text/event-stream", body });
  }
  if (url.pathname === "/v1/feedback/confirm") {
    posted.push(JSON.parse(route.request().postData()));
    if (posted.length === 1) return route.fulfill({ status: 502, contentType: "text/html", body: "<h1>Bad gateway</h1>" });
    return json(corrected);
  }
  return route.fulfill({ status: 404, body: "" });
});

await page.goto("http://fixture/");
await page.fill("#question", answer.question);
await page.press("#question", "Enter");
await page.waitForSelector(".answer[data-answer-id] .related:not([hidden])");
const offered = { questions: await page.locator(".related li q").allTextContents(),
                  images: await page.locator(".related img").count() };
await page.click(".related li:first-child .related-confirm");
await page.waitForFunction(() => document.querySelector(".related-status").textContent.startsWith("Could not"));
const refused = { status: await page.textContent(".related-status"),
                  enabled: await page.isEnabled(".related li:first-child .related-confirm") };
await page.click(".related li:first-child .related-confirm");
await page.waitForFunction(() => document.querySelectorAll(".answer[data-answer-id]").length === 2);
const turns = page.locator(".turn");
const shown = {
  status: await page.textContent(".related-status"),
  enabled: await page.locator(".turn:first-child .related-confirm:enabled").count(),
  question: await turns.nth(1).locator(".question").textContent(),
  text: await turns.nth(1).locator(".text").textContent(),
  mark: await turns.nth(1).locator(".correction").textContent(),
  offersAgain: await turns.nth(1).locator(".related").isVisible(),
  hacked: await page.evaluate(() => window.hacked === 1),
};
console.log(JSON.stringify({ offered, refused, shown, posted, console: result.console }));
await browser.close();
