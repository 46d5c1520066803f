// The sealing page's behaviour: loads the controller's public keys (same
// origin, `v1/keys`) or reads pasted ones, keeps the form in step with a
// pasted SealedSecret, and on Seal hands the values to seal.js and shows
// the result. The values never leave this script: the only request the
// page makes is the GET for public keys, nothing is stored (no cookies, no
// storage), nothing is logged, and errors never repeat a value.

import { SealError } from "./envelope.js";
import { KeyError, parseKeysJson, parsePastedKeys } from "./keys.js";
import { ManifestError, readSealedSecret } from "./manifest.js";
import { formatBytes, MAX_SECRET_BYTES } from "./names.js";
import { FormError, sealForm } from "./seal.js";

const $ = (id) => document.getElementById(id);

const state = {
  controller: null, // { keys, active } from v1/keys
  pasted: { kind: "none" },
  target: null, // the pasted SealedSecret, read
  rows: [], // item rows, in order
  nextRow: 0,
  result: null,
};

function setError(id, message) {
  const el = $(`${id}-error`);
  const input = $(id);
  if (el) {
    el.textContent = message ?? "";
    el.hidden = !message;
  }
  if (input && ["INPUT", "TEXTAREA", "SELECT"].includes(input.tagName)) {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

function clearErrors() {
  for (const el of document.querySelectorAll(".error")) {
    el.textContent = "";
    el.hidden = true;
  }
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  $("summary").hidden = true;
  $("summary-list").replaceChildren();
}

// ---- keys ----------------------------------------------------------------

function recipients() {
  const out = [];
  const from = new Map();
  const add = (r, label) => {
    if (!from.has(r.keyId)) {
      out.push(r);
      from.set(r.keyId, label);
    }
  };
  if (state.controller && $("use-controller").checked) add(state.controller.active, "this controller's active key");
  const p = state.pasted;
  if (p.kind === "recipients" || p.kind === "list") for (const r of p.recipients) add(r, p.kind === "list" ? "pasted key list, active key" : "pasted");
  if (p.kind === "keyring") {
    const env = p.environments.get($("environment").value);
    for (const r of env?.recipients ?? []) add(r, `keyring environment ${$("environment").value}`);
  }
  return { list: out, from };
}

function showRecipients() {
  const { list, from } = recipients();
  const el = $("recipients-summary");
  if (list.length === 0) {
    el.textContent = "No key chosen yet.";
    return;
  }
  el.replaceChildren(`Sealing to ${list.length} key${list.length === 1 ? "" : "s"}: `);
  list.forEach((r, i) => {
    const code = document.createElement("code");
    code.textContent = r.keyId;
    code.title = r.text;
    el.append(i === 0 ? "" : ", ", code, ` (${from.get(r.keyId)})`);
  });
  el.append(".");
}

async function loadControllerKeys() {
  const status = $("controller-status");
  if (location.protocol === "file:") {
    status.textContent = "Opened from disk: paste the cluster's public key below (gitseal fetch-key prints it).";
    return;
  }
  let text;
  try {
    const resp = await fetch("v1/keys", { credentials: "omit", cache: "no-store", redirect: "error" });
    if (!resp.ok) {
      status.textContent = `This server did not publish its keys (HTTP ${resp.status}); paste the cluster's public key below.`;
      return;
    }
    text = await resp.text();
  } catch {
    status.textContent = "Could not reach this server's key list; paste the cluster's public key below.";
    return;
  }
  try {
    state.controller = parseKeysJson(text, "this controller's key list (v1/keys)");
  } catch (e) {
    if (!(e instanceof KeyError)) throw e;
    status.textContent = "";
    status.append(`Refused: ${e.message}. `, "Nothing will be sealed to it; paste a key you trust below.");
    status.classList.add("problem");
    showRecipients();
    return;
  }
  const active = state.controller.active;
  status.textContent = `This controller publishes ${state.controller.keys.length} key${state.controller.keys.length === 1 ? "" : "s"}; new values are sealed to the active one.`;
  $("controller-key-id").textContent = active.keyId;
  $("controller-key-id").title = active.text;
  $("controller-choice").hidden = false;
  showRecipients();
}

function onPastedKeys() {
  setError("keys", null);
  const row = $("environment-row");
  try {
    state.pasted = parsePastedKeys($("pasted-keys").value);
  } catch (e) {
    if (!(e instanceof KeyError)) throw e;
    state.pasted = { kind: "none" };
    row.hidden = true;
    setError("keys", e.message);
    $("pasted-keys").setAttribute("aria-invalid", "true");
    showRecipients();
    return;
  }
  $("pasted-keys").removeAttribute("aria-invalid");
  if (state.pasted.kind === "keyring") {
    const select = $("environment");
    const before = select.value;
    select.replaceChildren(
      ...[...state.pasted.environments.keys()].map((name) => {
        const o = document.createElement("option");
        o.value = name;
        o.textContent = name;
        return o;
      }),
    );
    select.value = state.pasted.environments.has(before) ? before : (state.pasted.defaultEnvironment ?? select.options[0].value);
    row.hidden = false;
    applyEnvironmentScope();
  } else {
    row.hidden = true;
  }
  showRecipients();
}

function applyEnvironmentScope() {
  if (state.target || state.pasted.kind !== "keyring") return;
  const scope = state.pasted.environments.get($("environment").value)?.scope;
  if (scope) $(`scope-${scope}`).checked = true;
}

// ---- the pasted SealedSecret ---------------------------------------------

function onExisting() {
  setError("existing", null);
  const info = $("existing-info");
  info.replaceChildren();
  const text = $("existing").value;
  state.target = null;
  if (text.trim() !== "") {
    try {
      state.target = readSealedSecret(text);
    } catch (e) {
      if (!(e instanceof ManifestError || e instanceof SealError)) throw e;
      setError("existing", e.message);
    }
  }
  const t = state.target;
  for (const id of ["name", "type", "scope-strict", "scope-namespace", "scope-cluster"]) $(id).disabled = Boolean(t);
  $("namespace").disabled = Boolean(t?.namespace);
  if (!t) return;
  $("name").value = t.name;
  if (t.namespace) $("namespace").value = t.namespace;
  $(`scope-${t.scope}`).checked = true;
  $("type").value = t.type ?? "";
  const where = t.namespace ? `${t.namespace}/${t.name}` : t.name;
  const p = document.createElement("p");
  p.textContent = `Adding to ${where} (${t.scope} scope). Items with a key it already has are replaced; the others are kept.`;
  info.append(p);
  if (t.items.length > 0) {
    const ul = document.createElement("ul");
    for (const item of t.items) {
      const li = document.createElement("li");
      li.textContent = `${item.key}: ${formatBytes(item.plaintextLength)}, sealed to ${item.keyIds.join(", ")}`;
      ul.append(li);
    }
    info.append(ul);
  }
  if (t.vaultKeys.length > 0) {
    const v = document.createElement("p");
    v.textContent = `Vault references, kept: ${t.vaultKeys.join(", ")}.`;
    info.append(v);
  }
}

// ---- items ---------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function renumber() {
  state.rows.forEach((row, i) => {
    row.heading.textContent = `Item ${i + 1}`;
    row.remove.setAttribute("aria-label", `Remove item ${i + 1}`);
    row.remove.disabled = state.rows.length === 1;
  });
}

function addItem(focus = true) {
  const n = state.nextRow++;
  const id = `row${n}`;
  const heading = el("h3", { id: `${id}-heading` });
  const key = el("input", { id: `${id}-key`, autocomplete: "off", spellcheck: "false", autocapitalize: "off", "aria-describedby": `${id}-key-error` });
  const keyErr = el("p", { class: "error", id: `${id}-key-error`, hidden: "" });
  const textRadio = el("input", { type: "radio", name: `${id}-source`, id: `${id}-source-text`, value: "text", checked: "" });
  const fileRadio = el("input", { type: "radio", name: `${id}-source`, id: `${id}-source-file`, value: "file" });
  const text = el("textarea", {
    id: `${id}-text`,
    rows: "2",
    autocomplete: "off",
    spellcheck: "false",
    autocapitalize: "off",
    "aria-describedby": `${id}-value-error`,
  });
  const file = el("input", { type: "file", id: `${id}-file`, "aria-describedby": `${id}-file-info ${id}-value-error` });
  const fileInfo = el("p", { class: "hint", id: `${id}-file-info` });
  const textField = el("div", { class: "field" }, el("label", { for: `${id}-text`, text: "Value" }), text);
  const fileField = el("div", { class: "field", hidden: "" }, el("label", { for: `${id}-file`, text: "File (binary is fine)" }), file, fileInfo);
  const valueErr = el("p", { class: "error", id: `${id}-value-error`, hidden: "" });
  const remove = el("button", { type: "button", class: "remove", text: "Remove" });
  const li = el(
    "li",
    { class: "item", "aria-labelledby": `${id}-heading` },
    heading,
    el(
      "div",
      { class: "pair" },
      el("div", { class: "field" }, el("label", { for: `${id}-key`, text: "Item key" }), key, keyErr),
      el(
        "fieldset",
        { class: "choices inline" },
        el("legend", { text: "Value from" }),
        el("div", {}, textRadio, el("label", { for: `${id}-source-text`, text: "text" })),
        el("div", {}, fileRadio, el("label", { for: `${id}-source-file`, text: "a file" })),
      ),
    ),
    textField,
    fileField,
    valueErr,
    el("div", { class: "item-actions" }, remove),
  );
  const row = { id, li, heading, key, text, file, fileInfo, textRadio, fileRadio, remove, bytes: null, fileProblem: null };
  const toggle = () => {
    textField.hidden = fileRadio.checked;
    fileField.hidden = !fileRadio.checked;
  };
  textRadio.addEventListener("change", toggle);
  fileRadio.addEventListener("change", toggle);
  file.addEventListener("change", () => readFile(row));
  remove.addEventListener("click", () => {
    const at = state.rows.indexOf(row);
    state.rows.splice(at, 1);
    li.remove();
    renumber();
    const next = state.rows[Math.min(at, state.rows.length - 1)];
    next?.key.focus();
  });
  state.rows.push(row);
  $("items").append(li);
  renumber();
  if (focus) key.focus();
  return row;
}

async function readFile(row) {
  row.bytes = null;
  row.fileProblem = null;
  setRowError(row, "value", null);
  const f = row.file.files[0];
  row.fileInfo.textContent = "";
  if (!f) return;
  if (f.size > MAX_SECRET_BYTES) {
    // Not read at all: a Secret cannot hold it.
    row.fileProblem = `the file is ${formatBytes(f.size)}; a Secret holds at most 1 MiB, so it cannot be sealed`;
    setRowError(row, "value", row.fileProblem);
    return;
  }
  row.bytes = new Uint8Array(await f.arrayBuffer());
  row.fileInfo.textContent = `${formatBytes(row.bytes.length)} read.`;
  if (!row.key.value) row.key.value = f.name.replace(/[^-._a-zA-Z0-9]/g, "_").slice(0, 253);
}

function setRowError(row, part, message) {
  const err = $(`${row.id}-${part}-error`);
  err.textContent = message ?? "";
  err.hidden = !message;
  const input = part === "key" ? row.key : row.fileRadio.checked ? row.file : row.text;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

// ---- sealing -------------------------------------------------------------

const utf8 = new TextEncoder();

function fieldFor(field) {
  const m = /^item-(\d+)-(key|value)$/.exec(field);
  if (m) {
    const row = state.rows[Number(m[1])];
    return { row, part: m[2], input: m[2] === "key" ? row.key : row.fileRadio.checked ? row.file : row.text };
  }
  const input = { keys: $("pasted-keys"), scope: $("scope-strict"), items: $("add-item") }[field] ?? $(field);
  return { input };
}

function showProblems(problems) {
  const list = $("summary-list");
  for (const p of problems) {
    const { row, part, input } = fieldFor(p.field);
    if (row) setRowError(row, part, p.message);
    else setError(p.field, p.message);
    const a = el("a", { href: `#${input.id}`, text: p.message });
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      input.focus();
    });
    list.append(el("li", {}, a));
  }
  $("summary").hidden = false;
  $("summary").focus();
}

async function onSeal(ev) {
  ev.preventDefault();
  clearErrors();
  $("result").hidden = true;
  state.result = null;
  const items = [];
  const problems = [];
  state.rows.forEach((row, i) => {
    if (row.fileRadio.checked) {
      if (row.bytes === null) {
        problems.push({ field: `item-${i}-value`, message: `item ${i + 1}: ${row.fileProblem ?? "choose a file (of at most 1 MiB)"}` });
        return;
      }
      items.push({ key: row.key.value.trim(), value: row.bytes });
    } else {
      items.push({ key: row.key.value.trim(), value: utf8.encode(row.text.value) });
    }
  });
  if (problems.length > 0) {
    showProblems(problems);
    return;
  }
  const form = {
    recipients: recipients().list,
    namespace: $("namespace").value,
    name: $("name").value,
    scope: document.querySelector('input[name="scope"]:checked')?.value ?? "",
    type: $("type").value,
    items,
    existing: $("existing").value,
  };
  $("seal").disabled = true;
  try {
    state.result = await sealForm(form);
  } catch (e) {
    if (e instanceof FormError) {
      showProblems(e.problems);
      return;
    }
    showProblems([{ field: "items", message: "sealing failed unexpectedly; nothing was sealed (reload the page and try again)" }]);
    return;
  } finally {
    $("seal").disabled = !sealingPossible;
  }
  const r = state.result;
  $("output").value = r.text;
  const keys = $("result-keys");
  keys.replaceChildren("Sealed to key ids ");
  r.keyIds.forEach((id, i) => keys.append(i === 0 ? "" : ", ", el("code", { text: id })));
  keys.append(". Commit the file; the controller turns it into a Secret.");
  $("result-changes").replaceChildren(...r.changes.map((c) => el("li", { text: c })));
  $("action-status").textContent = "";
  $("result").hidden = false;
  $("result-heading").focus();
}

async function onCopy() {
  const status = $("action-status");
  try {
    await navigator.clipboard.writeText($("output").value);
    status.textContent = "Copied.";
  } catch {
    $("output").select();
    status.textContent = "Copying is blocked here: the text is selected, press Ctrl+C (or ⌘C).";
  }
}

function onDownload() {
  if (!state.result) return;
  const url = URL.createObjectURL(new Blob([state.result.text], { type: "application/yaml" }));
  const a = el("a", { href: url, download: state.result.filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  $("action-status").textContent = `Downloaded ${state.result.filename}.`;
}

// ---- start ---------------------------------------------------------------

let sealingPossible = true;

function start() {
  // HPKE runs on the browser's Web Crypto, which exists only in a secure
  // context. Outside one (plain HTTP from another host) the page itself
  // could have been changed on the way, so it does not offer to seal.
  if (!window.isSecureContext || !globalThis.crypto?.subtle) {
    sealingPossible = false;
    const p = $("context-problem");
    p.textContent =
      "Sealing is off: this page came over plain HTTP from another machine, so it may have been changed on the way. " +
      "Open it over HTTPS, through `kubectl port-forward` (http://localhost:…), or save it and open the file.";
    p.hidden = false;
    $("seal").disabled = true;
  }
  $("seal-form").addEventListener("submit", onSeal);
  $("add-item").addEventListener("click", () => addItem());
  $("pasted-keys").addEventListener("input", onPastedKeys);
  $("environment").addEventListener("change", () => {
    applyEnvironmentScope();
    showRecipients();
  });
  $("use-controller").addEventListener("change", showRecipients);
  $("existing").addEventListener("input", onExisting);
  $("copy").addEventListener("click", onCopy);
  $("download").addEventListener("click", onDownload);
  addItem(false);
  showRecipients();
  loadControllerKeys();
}

start();
