// The reviewers' page: answers users marked wrong (write the correction), the review queue
// (questions a correction may answer: same or different), and the corrections (disable,
// enable, clear a review flag). It calls the admin routes with the token typed in, kept for
// this tab only. All text from the server is set as text, never as HTML.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const TOKEN_KEY = "rag-admin-token";
const AUTHOR_KEY = "rag-review-author";
let token = sessionStorage.getItem(TOKEN_KEY) || "";
const drafts = new Map();  // what was typed for an answer id: kept across reloads and sign-ins
// How many items the two long lists ask for; "Show more" doubles it, up to what the server allows.
const limits = { wrong: { n: 200, max: 10000 }, queue: { n: 50, max: 500 } };
const full = new Set();  // count ids of lists that came back at their limit: more may be waiting

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

function when(iso) {
  return iso ? `${iso.slice(0, 16).replace("T", " ")} UTC` : "";
}

function fill(template, fields) {
  const node = $(template).content.firstElementChild.cloneNode(true);
  for (const [selector, text] of Object.entries(fields)) $(selector, node).textContent = text;
  return node;
}

function describe(item) {  // buttons name the question they act on, for screen readers
  const question = $(".question", item);
  question.id = `q-${crypto.getRandomValues(new Uint32Array(2)).join("")}`;
  item.querySelectorAll("button").forEach((b) => b.setAttribute("aria-describedby", question.id));
}

function setCount(id, n) {
  $(id).textContent = `(${n}${full.has(id) ? "+" : ""})`;
}

// A list that came back at the limit it asked for says so and offers more (its count reads "200+").
function atLimit(name, shown, asked) {
  const capped = shown >= asked;
  if (capped) full.add(`#${name}-count`); else full.delete(`#${name}-count`);
  $(`#${name}-more`).hidden = !capped || asked >= limits[name].max;
}

// Runs `action` from `button` of `item` and says how it went in the item's status; the
// button stays disabled once it worked. Returns the result, or null when nothing was saved.
async function send(item, button, action, done) {
  const status = $(".status", item);
  button.disabled = true;
  status.textContent = "Saving…";
  try {
    const result = await action();
    status.textContent = done(result);
    return result;
  } catch (error) {
    status.textContent = `Not saved: ${error.message}`;
    button.disabled = false;
    if (error.status === 401) signOut("The token was refused: type it again (what you typed is kept).");
    return null;
  }
}

// `send` for what is written in the reviewer's name, which is required.
async function save(item, button, action, done) {
  const author = $("#author").value.trim();
  if (!author) {
    $(".status", item).textContent = "Type your name above first: it is shown on what you write.";
    $("#author").focus();
    return null;
  }
  return send(item, button, () => action(author), done);
}

function renderWrong(items, corrections, asked) {
  const list = $("#wrong");
  list.textContent = "";
  for (const f of items) {
    const reports = f.reports > 1 ? ` · ${f.reports} reports` : "";
    const item = fill("#wrong-item", {
      ".question": f.question,
      ".meta": `Marked wrong ${when(f.created_at)}${reports} · answer ${f.answer_id}`,
      ".given": f.answer || "",
    });
    if (f.comment) {
      const comment = $(".comment", item);
      comment.textContent = `“${f.comment}”`;
      comment.hidden = false;
    }
    const applied = f.correction_id && corrections.get(f.correction_id);
    if (applied) {  // a correction gave this answer: wrong, or applied to another question
      $(".applied", item).hidden = false;
      $(".applied-text", item).textContent = `This answer came from the correction for “${applied.question}”. `
        + "The right answer written below replaces it for this question (asked in the same words, that correction "
        + "is disabled). If only the match was wrong, keep that correction away from this question instead.";
      const button = $(".wrong-match", item);
      button.addEventListener("click", async () => {
        const made = await save(item, button,
          (author) => api("POST", "/v1/corrections", { answer_id: f.answer_id, not_same_as: applied.id, author }),
          () => "Linked: that correction will not answer this question again.");
        if (made) countLink(applied.id, false);
      });
    }
    const text = $(".answer-text", item);
    const reason = $(".reason", item);
    const draft = drafts.get(f.answer_id);
    if (draft) [text.value, reason.value] = draft;
    const keep = () => drafts.set(f.answer_id, [text.value, reason.value]);
    text.addEventListener("input", keep);
    reason.addEventListener("input", keep);
    const form = $(".correct-form", item);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const answer = text.value.trim();
      if (!answer) return;
      const submit = $("button[type=submit]", form);
      const made = await save(item, submit,
        (author) => api("POST", "/v1/corrections", { answer_id: f.answer_id, answer, reason: reason.value.trim() || null, author }),
        (c) => `Saved as correction ${c.id}.` + (c.overlaps && c.overlaps.length
          ? ` ${c.overlaps.length > 1 ? "Corrections" : "Correction"} ${c.overlaps.join(", ")} `
            + `${c.overlaps.length > 1 ? "answer" : "answers"} what the matcher takes for the same question,`
            + " differently: keep one (disable the other below), or make the answers agree."
          : ""));
      if (made) {
        drafts.delete(f.answer_id);
        item.classList.add("settled");
        item.querySelectorAll("button, textarea, input").forEach((b) => { b.disabled = true; });
        setCount("#wrong-count", list.querySelectorAll(".item:not(.settled)").length);
        addCorrection(made);
      }
    });
    describe(item);
    list.append(item);
  }
  atLimit("wrong", items.length, asked);
  setCount("#wrong-count", items.length);
  if (!items.length) list.textContent = "No answer marked wrong is waiting for a reviewer.";
}

function renderQueue(suggestions, corrections, asked) {
  const list = $("#queue");
  list.textContent = "";
  for (const s of suggestions) {
    const correction = corrections.get(s.correction_id);
    const asked = s.times_asked > 1 ? `asked ${s.times_asked} times` : "asked once";
    const item = fill("#queue-item", {
      ".question": s.question,
      ".meta": [asked, s.confirmed_by_asker ? "the asker said it is the same question" : null,
        s.bad_feedback ? "marked wrong" : null, `similarity ${s.similarity.toFixed(2)}`,
        `answer ${s.answer_id}`].filter(Boolean).join(" · "),
      ".correction-question": s.correction_question,
      ".given": correction ? correction.answer : "",
    });
    if (s.nearest_question && s.nearest_question !== s.correction_question) {
      $(".label", item).textContent = `Correction (through the linked question “${s.nearest_question}”) for:`;
    }
    const same = $(".same", item);
    const different = $(".different", item);
    // A later link replaces the earlier one: after either, the other button stays, to change one's mind.
    let decided = null;
    const link = async (isSame) => {
      const made = await save(item, isSame ? same : different,
        (author) => api("POST", "/v1/corrections", { answer_id: s.answer_id, [isSame ? "same_as" : "not_same_as"]: s.correction_id, author }),
        () => (isSame ? "Linked: the correction answers this question now." : "Linked: the correction will not answer it."));
      if (made) {
        (isSame ? different : same).disabled = false;
        item.classList.add("settled");
        setCount("#queue-count", list.querySelectorAll(".item:not(.settled)").length);
        if (decided !== null) countLink(s.correction_id, decided, -1);
        countLink(s.correction_id, isSame);
        decided = isSame;
      }
    };
    same.addEventListener("click", () => link(true));
    different.addEventListener("click", () => link(false));
    describe(item);
    list.append(item);
  }
  atLimit("queue", suggestions.length, asked);
  setCount("#queue-count", suggestions.length);
  if (!suggestions.length) list.textContent = "Nothing to review: no logged question was a near match.";
}

// The corrections list is built once per load; the page's own writes update it in place (a
// new correction on top, a link's count), so nothing re-renders under a reviewer's hand.
const links = new Map();  // correction id -> [same, not same] linked questions
const linkShown = new Map();  // correction id -> a function that shows its count again

function countLink(target, same, delta = 1) {
  const [s, o] = links.get(target) || [0, 0];
  links.set(target, same ? [s + delta, o] : [s, o + delta]);
  if (linkShown.has(target)) linkShown.get(target)();
}

function correctionItem(c) {
  const item = fill("#correction-item", { ".question": c.question, ".given": c.answer });
  const meta = () => {
    const [same, other] = links.get(c.id) || [0, 0];
    const linked = same || other ? `linked questions: ${same} the same, ${other} not` : null;
    $(".meta", item).textContent = [`${c.author}, ${when(c.created_at)}`, c.reason, linked, `id ${c.id}`]
      .filter(Boolean).join(" · ");
  };
  linkShown.set(c.id, meta);
  meta();
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
    const updated = await send(item, button,
      () => api("POST", `/v1/corrections/${encodeURIComponent(c.id)}/${enable ? "enable" : "disable"}`), () => message);
    if (updated) {
      Object.assign(c, updated);
      show();
      button.disabled = false;  // it can be switched back
    }
  };
  toggle.addEventListener("click", () => (c.active
    ? change(toggle, false, "Disabled: it answers nothing until enabled.")
    : change(toggle, true, "Enabled.")));
  checked.addEventListener("click", () => change(checked, true, "Checked: the flag is cleared."));
  describe(item);
  return item;
}

function renderCorrections(all) {
  const list = $("#corrections");
  list.textContent = "";
  links.clear();
  linkShown.clear();
  for (const c of all) {
    const waiting = c.same_as && c.reason === "confirmed by the asker" && c.review;  // an asker's, not yet checked
    if ((c.same_as || c.not_same_as) && !waiting) countLink(c.same_as || c.not_same_as, Boolean(c.same_as));
  }
  const answers = all.filter((c) => !c.same_as && !c.not_same_as).reverse();  // newest first
  for (const c of answers) list.append(correctionItem(c));
  setCount("#corrections-count", answers.length);
  if (!answers.length) list.textContent = "No corrections yet.";
}

function addCorrection(c) {
  const list = $("#corrections");
  if (!list.querySelector(".item")) list.textContent = "";
  list.prepend(correctionItem(c));
  setCount("#corrections-count", list.querySelectorAll(".item").length);
}

function failed(section, error) {
  if (error.status === 401) {
    signOut("The token was refused.");
    return;
  }
  $(`#${section}`).textContent = `Could not load this list: ${error.message}`;
  $(`#${section}-count`).textContent = "";
  full.delete(`#${section}-count`);
  if (section in limits) $(`#${section}-more`).hidden = true;
}

// The two long lists, each asked for up to its limit; `byId` is the corrections of the last load.
// The queue looks back through 20 logged answers per suggestion asked for (1000 for 50), so that
// more of it also reaches further back; the waiting answers' route does the same on its own.
const lists = {
  wrong: { path: (n) => `/v1/feedback/open?limit=${n}`, render: (data, n) => renderWrong(data.feedback, byId, n) },
  queue: {
    path: (n) => `/v1/corrections/suggestions?limit=${n}&scan=${20 * n}`,
    render: (data, n) => renderQueue(data.suggestions, byId, n),
  },
};
let byId = new Map();
const latest = { wrong: 0, queue: 0 };  // a list's newest request: answers to older ones are dropped

function fetchList(name) {
  const asked = limits[name].n;
  const ticket = ++latest[name];
  const more = $(`#${name}-more`);
  more.dataset.label ??= more.textContent;
  more.disabled = true;
  more.textContent = "Loading…";  // the queue reads back through thousands of logged answers: seconds
  $(`#${name}`).setAttribute("aria-busy", "true");
  const request = api("GET", lists[name].path(asked));
  const show = (result) => {
    if (ticket !== latest[name]) return;
    more.disabled = false;
    more.textContent = more.dataset.label;
    $(`#${name}`).setAttribute("aria-busy", "false");
    if (result.status === "fulfilled") lists[name].render(result.value, asked); else failed(name, result.reason);
  };
  return { request, show };
}

// "Show more" reloads its own list only.
async function loadMore(name) {
  const { request, show } = fetchList(name);
  const [result] = await Promise.allSettled([request]);
  show(result);
}

// Each list loads on its own: the review queue and the waiting answers embed logged questions.
async function load() {
  const status = $("#sign-in-status");
  status.textContent = "Loading…";
  const wrong = fetchList("wrong");
  const queue = fetchList("queue");
  const [wrongResult, queueResult, corrections] = await Promise.allSettled([
    wrong.request, queue.request, api("GET", "/v1/corrections"),
  ]);
  if ([wrongResult, queueResult, corrections].some((r) => r.status === "rejected" && r.reason.status === 401)) {
    signOut("The token was refused.");
    return;
  }
  byId = new Map(corrections.status === "fulfilled" ? corrections.value.corrections.map((c) => [c.id, c]) : []);
  wrong.show(wrongResult);
  queue.show(queueResult);
  if (corrections.status === "fulfilled") renderCorrections(corrections.value.corrections);
  else failed("corrections", corrections.reason);
  $("#work").hidden = false;
  $("#reload").hidden = false;
  status.textContent = "";
}

function signOut(message) {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("#work").hidden = true;
  $("#reload").hidden = true;
  $("#token").value = "";
  $("#token").required = true;
  $("#sign-in-status").textContent = message;
  $("#token").focus();
}

$("#author").value = localStorage.getItem(AUTHOR_KEY) || "";
$("#sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("#token").value.trim() || token;  // blank once open: keep the token given
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  localStorage.setItem(AUTHOR_KEY, $("#author").value.trim());
  $("#token").value = "";
  $("#token").required = false;
  load();
});
$("#reload").addEventListener("click", load);
for (const name of Object.keys(limits)) {
  $(`#${name}-more`).addEventListener("click", () => {
    limits[name].n = Math.min(limits[name].n * 2, limits[name].max);
    loadMore(name);  // what was typed is kept (drafts)
  });
}
if (token) {
  $("#token").required = false;
  load();
}
