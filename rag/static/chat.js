// The chat page: asks /v1/ask/stream, shows text as it arrives, then the cited sources,
// and posts thumbs up/down to /v1/feedback. When a person corrected the answer to a similar
// question, it offers that answer; the asker's yes goes to /v1/feedback/confirm. Model output and document text are only ever
// set as text (never as HTML), and only http(s) URLs become links.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
let conversationId = newId();

function newId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

// Text with [n] / [n, m] citations turned into links to the sources they name.
function renderText(node, text, sources) {
  node.textContent = "";
  const byNumber = new Map((sources || []).map((s) => [s.n, s]));
  let last = 0;
  for (const match of text.matchAll(/\[(\d+(?:\s*,\s*\d+)*)\]/g)) {
    node.append(text.slice(last, match.index));
    const numbers = match[1].split(",").map((n) => parseInt(n, 10));
    numbers.forEach((n, i) => {
      const source = byNumber.get(n);
      const url = source && (safeUrl(source.url) || null);
      const link = document.createElement("a");
      link.className = "cite";
      link.textContent = `[${n}]`;
      if (url) {
        link.href = url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
      } else if (source) {
        link.href = `#${node.dataset.answer}-src-${n}`;
      }
      if (source) link.title = source.title || source.path;
      node.append(link);
      if (i < numbers.length - 1) node.append(" ");
    });
    last = match.index + match[0].length;
  }
  node.append(text.slice(last));
}

function renderSources(list, answer) {
  list.textContent = "";
  const shown = answer.sources || [];
  const cited = shown.some((s) => s.cited);
  const attributed = shown.some((s) => s.attributed);
  list.dataset.label = attributed
    ? "Sources (matched to the answer by wording; the model cited none)"
    : cited ? "Sources" : "Sources found (the answer cites none of them)";
  for (const source of shown) {
    const item = document.createElement("li");
    item.value = source.n;
    item.id = `${answer.id}-src-${source.n}`;
    const label = [source.title, ...(source.section || [])].filter(Boolean);
    const name = Array.from(new Set(label)).join(" › ") || source.path;
    const url = safeUrl(source.url);
    if (url) {
      const link = document.createElement("a");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = name;
      item.append(link);
    } else {
      item.append(name);
      if (source.path && source.path !== name) {
        const code = document.createElement("code");
        code.textContent = ` ${source.path}`;
        item.append(code);
      }
    }
    if (!source.cited) item.classList.add("uncited");
    list.append(item);
  }
  list.hidden = shown.length === 0;
}

function wireFeedback(box, answerId) {
  const status = $(".feedback-status", box);
  const form = $(".feedback-form", box);
  let sending = false;
  const send = async (good) => {
    if (sending) return;
    sending = true;
    status.textContent = "Sending…";
    const comment = $(".feedback-comment", box).value.trim() || null;
    try {
      const response = await fetch("/v1/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ answer_id: answerId, good, comment }),
      });
      if (!response.ok) throw new Error((await response.json()).error || response.statusText);
      status.textContent = good ? "Thanks!" : "Thanks, we will look at it.";
      box.querySelectorAll("button").forEach((b) => (b.disabled = true));
      form.hidden = true;
    } catch (error) {
      status.textContent = `Could not send: ${error.message}`;
      sending = false;
    }
  };
  $(".thumbs-up", box).addEventListener("click", () => send(true));
  $(".thumbs-down", box).addEventListener("click", () => {
    form.hidden = false;
    $(".feedback-comment", box).focus();
  });
  $(".feedback-send", box).addEventListener("click", () => send(false));
  $(".feedback-comment", box).addEventListener("keydown", (event) => {
    if (event.key === "Enter") send(false);
  });
  box.hidden = false;
}

function wireRelated(turn, answer) {
  const box = $(".related", turn);
  const status = $(".related-status", box);
  const list = $(".related-list", box);
  list.textContent = "";
  for (const related of answer.related_corrections) {
    const item = document.createElement("li");
    const question = document.createElement("q");
    question.textContent = related.question;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "related-confirm";
    button.textContent = "That is what I asked";
    button.title = "See the corrected answer, and tell us it answers your question";
    button.addEventListener("click", async () => {
      const buttons = box.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      status.textContent = "Loading…";
      try {
        const response = await fetch("/v1/feedback/confirm", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ answer_id: answer.id, correction_id: related.id }),
        });
        let payload = {};
        try { payload = await response.json(); } catch { /* not JSON: a proxy's error page */ }
        if (!response.ok) {
          const error = new Error(payload.error || response.statusText || `HTTP ${response.status}`);
          // refused (not offered any more, unknown answer): trying again will not help; busy or down: it may
          error.final = response.status >= 400 && response.status < 500 && response.status !== 429;
          throw error;
        }
        status.textContent = "Thanks: the corrected answer is below.";
        const next = $("#turn").content.firstElementChild.cloneNode(true);
        $(".question", next).textContent = answer.question;
        $("#log").append(next);
        showAnswer(next, payload);
        next.scrollIntoView({ block: "end" });
      } catch (error) {
        status.textContent = `Could not load it: ${error.message}`;
        if (!error.final) buttons.forEach((b) => (b.disabled = false));
      }
    });
    item.append(question, " ", button);
    list.append(item);
  }
  box.hidden = false;
}

function showAnswer(turn, answer) {
  const article = $(".answer", turn);
  const text = $(".text", turn);
  text.dataset.answer = answer.id;
  renderText(text, answer.answer, answer.sources);
  renderSources($(".sources", turn), answer);
  if (answer.correction) {
    const c = answer.correction;
    const mark = $(".correction", turn);
    const who = (c.author ? ` by ${c.author}` : "") + (c.created_at ? ` (${c.created_at.slice(0, 10)})` : "");
    mark.textContent = c.mode === "verbatim"
      ? `✔ Answer from a human correction${who}`
      : `✔ Written with a human correction${who} as its first source`;
    if (c.review) mark.textContent += " (a document it cites has changed since; a reviewer will check it)";
    mark.hidden = false;
    article.classList.add("corrected");
  }
  if (answer.error) showError(turn, "No answer could be generated; the sources found are listed.");
  if ((answer.related_corrections || []).length && answer.feedback !== false) wireRelated(turn, answer);
  article.dataset.answerId = answer.id;
  if (answer.feedback !== false) wireFeedback($(".feedback", turn), answer.id);  // false: answers are not logged
}

function showError(turn, message) {
  const node = $(".error", turn);
  node.textContent = message;
  node.hidden = false;
}

async function ask(question) {
  const turn = $("#turn").content.firstElementChild.cloneNode(true);
  $(".question", turn).textContent = question;
  const article = $(".answer", turn);
  const text = $(".text", turn);
  article.classList.add("pending");
  $("#log").append(turn);
  turn.scrollIntoView({ block: "end" });

  let streamed = "";
  let finished = false;
  try {
    const response = await fetch("/v1/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, conversation_id: conversationId }),
    });
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error || message; } catch { /* not JSON */ }
      throw new Error(message);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (!data) continue;
        const payload = JSON.parse(data);
        if (event === "delta") {
          streamed += payload.text;
          text.textContent = streamed;
        } else if (event === "answer") {
          finished = true;
          showAnswer(turn, payload);
        } else if (event === "error") {
          throw new Error(payload.error);
        }
      }
      turn.scrollIntoView({ block: "end" });
    }
    if (!finished) throw new Error("the connection closed before the answer was complete");
  } catch (error) {
    showError(turn, `Error: ${error.message}`);
  } finally {
    article.classList.remove("pending");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = $("#ask");
  const input = $("#question");
  const button = $("#send");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || button.disabled) return;
    input.value = "";
    button.disabled = true;
    try {
      await ask(question);
    } finally {
      button.disabled = false;
      input.focus();
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $("#new-conversation").addEventListener("click", () => {
    conversationId = newId();
    $("#log").textContent = "";
    input.focus();
  });
  input.focus();
});
