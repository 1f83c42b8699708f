// What the page flows share: Debian's headless Chromium (or $CHROMIUM), offline, and a page
// that records console errors and the host of every request into `result`.
import { chromium } from "playwright-core";

export async function openPage(result) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  result.console = [];
  result.requests = [];
  const page = await browser.newPage();
  page.on("console", (m) => { if (m.type() === "error") result.console.push(m.text()); });
  page.on("request", (r) => result.requests.push(new URL(r.url()).host));
  return { browser, page };
}
