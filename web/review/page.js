// raer's review page. Every text from the store is set with textContent (never innerHTML):
// seller text cannot add markup. Keys: 1/2/3 label, s skip, u undo, n note.
"use strict";
const $ = (id) => document.getElementById(id);
const KEYS = { "1": "highly relevant", "2": "acceptable substitute", "3": "irrelevant", "s": "skip" };
let current = null;   // the pair on screen
let busy = false;

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}

function say(text) { $("message").textContent = text; }
function reviewer() { return $("reviewer").value.trim(); }

function fill(list, items, render) {
  list.replaceChildren(...items.map((item) => { const li = document.createElement("li"); render(li, item); return li; }));
}

function pairs(dl, entries) {
  dl.replaceChildren();
  for (const [name, value] of entries) {
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = String(value);
    dl.append(dt, dd);
  }
}

function show(item) {
  current = item;
  $("pair").hidden = false; $("done").hidden = true;
  $("query").textContent = item.query;
  $("where").textContent = `engine ${item.engine || "-"} · rank ${item.rank ?? "-"} · ${item.language} · ${item.judgment_id}`;
  $("title").textContent = item.product.title;
  const attributes = Object.entries(item.product.attributes || {});
  pairs($("product"), [["id", item.product.product_id], ["brand", item.product.brand],
    ["colour", item.product.colour], ["category", item.product.category],
    ["description", item.product.description], ...attributes]);
  const img = $("packshot");
  const missing = () => {
    img.hidden = true; img.removeAttribute("src");
    $("no-packshot").hidden = false;
    $("no-packshot").textContent = item.image_note || (item.packshot ? "packshot unavailable" : "no packshot");
  };
  img.onerror = missing;
  if (item.packshot) {
    img.hidden = false; img.src = item.packshot; $("no-packshot").hidden = true;
  } else {
    missing();
  }
  fill($("reasons"), item.review.reasons, (li, r) => { li.textContent = r; });
  if (item.review.status === "disputed") {
    const li = document.createElement("li"); li.textContent = "reviewers disagree: waiting for an adjudicator";
    $("reasons").append(li);
  }
  $("judge-label").textContent = item.judge.label || "(none)";
  $("judge-confidence").textContent = item.judge.confidence ?? "-";
  $("judge-brand").textContent = item.judge.brand_check || "-";
  $("judge-reasoning").textContent = item.judge.reasoning || item.judge.error || "";
  const body = $("verdicts").tBodies[0];
  body.replaceChildren(...(item.judge.verdicts || []).map((v) => {
    const tr = document.createElement("tr");
    for (const text of [v.requirement, v.verdict]) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
    return tr;
  }));
  fill($("requirements"), item.requirements, (li, r) => {
    li.textContent = `${r.importance}: ${r.kind} = ${r.value}` + (r.brand_or_literal ? " (brand or plain word?)" : "");
  });
  const g = item.guidelines || {};
  pairs($("guidelines"), [["highly relevant", g.highly_relevant], ["acceptable substitute", g.acceptable_substitute], ["irrelevant", g.irrelevant]]);
  fill($("decisions"), item.review.decisions, (li, d) => {
    li.textContent = `${d.reviewer} (${d.role}): ${d.label}` + (d.note ? ` — ${d.note}` : "");
  });
  $("note").value = "";
}

const PAUSED = "__paused__";  // interactive threads paused on the LangGraph server

function fromPaused(p) {
  return { judgment_id: p.thread_id, thread_id: p.thread_id, interrupt_id: p.interrupt_id,
    query: p.query, engine: p.engine, rank: null, language: "paused thread",
    product: { product_id: p.product_id, title: p.title, attributes: {} },
    packshot: "", image_note: "a paused thread's payload carries no packshot",
    review: { status: "paused", reasons: p.reasons || [], decisions: [] },
    judge: { label: p.label, confidence: p.confidence, reasoning: p.reasoning, verdicts: [] },
    requirements: [], guidelines: null };
}

async function loadPaused() {
  const data = await api("api/paused");
  $("progress").textContent = `${data.items.length} paused`;
  $("priority").textContent = "Interactive runs waiting for a person: your label resumes the thread.";
  if (!data.items.length) { current = null; $("pair").hidden = true; $("done").hidden = false; return; }
  show(fromPaused(data.items[0]));
}

async function load(prefer) {
  const run = $("run").value;
  if (run === PAUSED) { await loadPaused(); return; }
  if (!run) { say("No run has pairs for review."); return; }
  const params = new URLSearchParams({ run, reviewer: reviewer(), overlap: $("overlap").value,
    adjudicator: $("adjudicator").checked ? "1" : "" });
  const q = await api(`api/queue?${params}`);
  $("progress").textContent = `${q.left} of ${q.total} left`;
  $("priority").textContent = `Order: ${q.priority}.`;
  if (!q.items.length) { current = null; $("pair").hidden = true; $("done").hidden = false; return; }
  const next = q.items.find((i) => i.judgment_id === prefer) || q.items[0];
  show(await api(`api/pair/${encodeURIComponent(next.judgment_id)}`));
}

async function decideLabel(label) {
  if (!current || busy) return;
  if (!reviewer()) { say("Type your name first (reviewer)."); $("reviewer").focus(); return; }
  busy = true;
  if (current.thread_id) {
    try {
      await api("api/resume", { thread_id: current.thread_id, interrupt_id: current.interrupt_id,
        label, reviewer: reviewer() });
      say(`${label} sent: thread ${current.thread_id} resumes`);
      await load();
    } catch (error) { say(`not sent: ${error.message}`); }
    finally { busy = false; }
    return;
  }
  try {
    const out = await api("api/decide", { judgment_id: current.judgment_id, label,
      reviewer: reviewer(), note: $("note").value,
      role: $("adjudicator").checked ? "adjudicator" : "reviewer" });
    say(`${label} recorded for ${current.judgment_id} (now ${out.status}${out.human_label ? ": " + out.human_label : ""})`);
    await load();
  } catch (error) { say(`not recorded: ${error.message}`); }
  finally { busy = false; }
}

async function undo() {
  if (busy) return;
  if (!reviewer()) { say("Type your name first (reviewer)."); return; }
  busy = true;
  try {
    const out = await api("api/undo", { reviewer: reviewer(), run: $("run").value });
    if (!out.undone) { say("nothing to undo"); return; }
    say(`undone: ${out.undone.label} on ${out.undone.judgment_id}`);
    await load(out.undone.judgment_id);
  } catch (error) { say(`undo failed: ${error.message}`); }
  finally { busy = false; }
}

document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
  if (event.key === "Escape" && typing) { document.activeElement.blur(); return; }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (KEYS[event.key]) { event.preventDefault(); decideLabel(KEYS[event.key]); }
  else if (event.key === "u") { event.preventDefault(); undo(); }
  else if (event.key === "n") { event.preventDefault(); $("note").focus(); }
});

async function start() {
  for (const button of document.querySelectorAll("button[data-label]")) {
    button.addEventListener("click", () => decideLabel(button.dataset.label));
  }
  $("undo").addEventListener("click", undo);
  const params = new URLSearchParams(location.search);
  $("reviewer").value = params.get("reviewer") || localStorage.getItem("raer-reviewer") || "";
  $("reviewer").addEventListener("change", () => { localStorage.setItem("raer-reviewer", reviewer()); load(); });
  for (const id of ["run", "overlap", "adjudicator"]) $(id).addEventListener("change", () => load());
  try {
    const me = await api("api/whoami");
    if (me.bound) {  // the token names the reviewer: the page acts under that name only
      $("reviewer").value = me.reviewer;
      $("reviewer").readOnly = true;
    }
    if (!me.adjudicator && me.bound) $("adjudicator").disabled = true;
    const data = await api("api/runs");
    $("run").replaceChildren(...data.runs.map((r) => {
      const option = document.createElement("option");
      option.value = r.run_id;
      option.textContent = `${r.run_id} (${r.open} open, ${r.disputed} disputed, ${r.pairs} in all)`;
      return option;
    }));
    try {
      const paused = await api("api/paused");
      if (paused.items.length) {
        const option = document.createElement("option");
        option.value = PAUSED;
        option.textContent = `paused interactive threads (${paused.items.length})`;
        $("run").append(option);
      }
    } catch (error) { /* standalone page: no LangGraph server behind it */ }
    if (params.get("run")) $("run").value = params.get("run");
    await load();
  } catch (error) { say(error.message); }
}
start();
