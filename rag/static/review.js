// The reviewers' page: answers users marked wrong (write the correction), the review queue
// (questions a correction may answer: same or different), and the corrections (disable or
// enable). It calls the admin routes with the token typed in, kept for this tab only. All
// text from the server is set as text, never as HTML.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const TOKEN_KEY = "rag-admin-token";
const AUTHOR_KEY = "rag-review-author";
let token = sessionStorage.getItem(TOKEN_KEY) || "";

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: described by the status below
  }
  if (!response.ok) {
    const error = new Error((data && data.error) || `the server answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function author() {
  return $("#author").value.trim();
}

function when(iso) {
  return iso ? iso.slice(0, 16).replace("T", " ") : "";
}

function fill(template, fields) {
  const node = $(template).content.firstElementChild.cloneNode(true);
  for (const [selector, text] of Object.entries(fields)) $(selector, node).textContent = text;
  return node;
}

// Runs `action` for a button; shows what happened in the item's status; on success the
// item's buttons stay disabled: it is settled.
async function settle(item, action, done) {
  const buttons = item.querySelectorAll("button");
  const status = $(".status", item);
  buttons.forEach((b) => { b.disabled = true; });
  status.textContent = "Saving…";
  try {
    const result = await action();
    status.textContent = done(result);
    item.classList.add("settled");
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
    buttons.forEach((b) => { b.disabled = false; });
    if (error.status === 401) signOut("The token was refused.");
  }
}

function renderWrong(feedback, corrections) {
  const list = $("#wrong");
  list.textContent = "";
  const seen = new Set();
  const open = feedback.filter((f) => !f.corrected_by && !seen.has(f.answer_id) && seen.add(f.answer_id));
  for (const f of open) {
    const item = fill("#wrong-item", {
      ".question": f.question || "(the answer is no longer in the log)",
      ".meta": `Marked wrong ${when(f.created_at)} · answer ${f.answer_id}`,
      ".given": f.answer || "",
    });
    if (f.comment) {
      const comment = $(".comment", item);
      comment.textContent = `“${f.comment}”`;
      comment.hidden = false;
    }
    const applied = f.correction_id && corrections.get(f.correction_id);
    if (applied) {
      const button = $(".wrong-match", item);
      button.hidden = false;
      button.title = `It was answered by the correction for “${applied.question}”. This keeps that correction away from it.`;
      button.addEventListener("click", () => settle(item,
        () => api("POST", "/v1/corrections", { answer_id: f.answer_id, not_same_as: applied.id, author: author() }),
        () => "Linked: that correction will not answer this question again."));
    }
    $(".correct-form", item).addEventListener("submit", (event) => {
      event.preventDefault();
      const answer = $(".answer-text", item).value.trim();
      const reason = $(".reason", item).value.trim() || null;
      if (!answer) return;
      settle(item, () => api("POST", "/v1/corrections", { answer_id: f.answer_id, answer, reason, author: author() }),
        (c) => `Saved as correction ${c.id}.`);
    });
    list.append(item);
  }
  $("#wrong-count").textContent = `(${open.length})`;
  if (!open.length) list.textContent = "No answer marked wrong is waiting for a correction.";
}

function renderQueue(suggestions, corrections) {
  const list = $("#queue");
  list.textContent = "";
  for (const s of suggestions) {
    const correction = corrections.get(s.correction_id);
    const asked = s.times_asked > 1 ? `asked ${s.times_asked} times` : "asked once";
    const item = fill("#queue-item", {
      ".question": s.question,
      ".meta": [asked, s.bad_feedback ? "marked wrong" : null, `similarity ${s.similarity.toFixed(2)}`,
        `answer ${s.answer_id}`].filter(Boolean).join(" · "),
      ".correction-question": s.correction_question,
      ".given": correction ? correction.answer : "",
    });
    if (s.nearest_question && s.nearest_question !== s.correction_question) {
      $(".label", item).textContent = `Correction (through the linked question “${s.nearest_question}”) for:`;
    }
    const link = (same) => settle(item,
      () => api("POST", "/v1/corrections", { answer_id: s.answer_id, [same ? "same_as" : "not_same_as"]: s.correction_id,
        author: author() }),
      () => (same ? "Linked: the correction answers this question now." : "Linked: the correction will not answer it."));
    $(".same", item).addEventListener("click", () => link(true));
    $(".different", item).addEventListener("click", () => link(false));
    list.append(item);
  }
  $("#queue-count").textContent = `(${suggestions.length})`;
  if (!suggestions.length) list.textContent = "Nothing to review: no logged question was a near match.";
}

function renderCorrections(all) {
  const list = $("#corrections");
  list.textContent = "";
  const linked = new Map();
  for (const c of all) {
    if (c.same_as) linked.set(c.same_as, (linked.get(c.same_as) || 0) + 1);
  }
  const answers = all.filter((c) => !c.same_as && !c.not_same_as).reverse();  // newest first
  for (const c of answers) {
    const extra = linked.get(c.id) ? `${linked.get(c.id)} linked question(s)` : null;
    const item = fill("#correction-item", {
      ".question": c.question,
      ".meta": [`${c.author}, ${when(c.created_at)}`, c.reason, extra, `id ${c.id}`].filter(Boolean).join(" · "),
      ".given": c.answer,
    });
    const toggle = $(".toggle", item);
    const checked = $(".checked", item);
    const show = () => {
      toggle.textContent = c.active ? "Disable" : "Enable";
      item.classList.toggle("inactive", !c.active);
      const flag = $(".flag", item);
      flag.textContent = c.review ? `To check: ${c.review}` : "";
      flag.hidden = !c.review;
      checked.hidden = !(c.review && c.active);
    };
    show();
    // enable also clears the review flag (as `rag corrections enable` does)
    const change = async (button, enable, message) => {
      const status = $(".status", item);
      button.disabled = true;
      try {
        Object.assign(c, await api("POST", `/v1/corrections/${encodeURIComponent(c.id)}/${enable ? "enable" : "disable"}`));
        show();
        status.textContent = message;
      } catch (error) {
        status.textContent = `Not saved: ${error.message}`;
        if (error.status === 401) signOut("The token was refused.");
      } finally {
        button.disabled = false;
      }
    };
    toggle.addEventListener("click", () => (c.active
      ? change(toggle, false, "Disabled: it answers nothing until enabled.")
      : change(toggle, true, "Enabled.")));
    checked.addEventListener("click", () => change(checked, true, "Checked: the flag is cleared."));
    list.append(item);
  }
  $("#corrections-count").textContent = `(${answers.length})`;
  if (!answers.length) list.textContent = "No corrections yet.";
}

async function load() {
  const status = $("#sign-in-status");
  status.textContent = "Loading…";
  try {
    const [feedback, queue, corrections] = await Promise.all([
      api("GET", "/v1/feedback?bad=true"),
      api("GET", "/v1/corrections/suggestions?limit=50"),
      api("GET", "/v1/corrections"),
    ]);
    const byId = new Map(corrections.corrections.map((c) => [c.id, c]));
    renderWrong(feedback.feedback, byId);
    renderQueue(queue.suggestions, byId);
    renderCorrections(corrections.corrections);
    $("#work").hidden = false;
    $("#reload").hidden = false;
    status.textContent = "";
  } catch (error) {
    if (error.status === 401) signOut("The token was refused.");
    else status.textContent = `Could not load: ${error.message}`;
  }
}

function signOut(message) {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("#work").hidden = true;
  $("#reload").hidden = true;
  $("#token").value = "";
  $("#sign-in-status").textContent = message;
}

$("#author").value = localStorage.getItem(AUTHOR_KEY) || "";
$("#sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("#token").value.trim() || token;  // blank once open: keep the token given
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  localStorage.setItem(AUTHOR_KEY, author());
  $("#token").value = "";
  $("#token").required = false;
  load();
});
$("#reload").addEventListener("click", load);
if (token && author()) {
  $("#token").required = false;
  load();
}
