// SealedSecret manifests on the page: writing a new one (laid out as
// `gitseal seal` writes it), reading a pasted one, and adding or replacing
// items in it the way `gitseal seal --merge-into` does: only the new items
// are written; every other byte of the pasted text stays as it was. The
// text is edited in place (a replaced value swapped where it stands, an
// added item given its own line in sorted place); when the layout is not
// the plain block style this understands, the one document is written
// again through the YAML library, which keeps comments. Either way the
// result is parsed again and checked: the same documents as before plus
// exactly the new items, and the text of every untouched item unchanged.
// A merge that fails the check is refused, never shown.

import YAML from "yaml";
import { parseEnvelope, SCOPES } from "./envelope.js";

export const API_VERSION = "gitseal.dev/v1alpha1";

/** A problem with the pasted SealedSecret, in words a user can act on. */
export class ManifestError extends Error {
  constructor(message) {
    super(message);
    this.name = "ManifestError";
  }
}

// Words that YAML 1.1 (kubectl's reader) or 1.2 (serde_yaml, the `yaml`
// library) read as something other than a string.
const SPECIAL = /^(?:y|yes|n|no|true|false|on|off|null)$/i;

/**
 * One scalar as YAML that every reader takes for the same string: plain
 * when it is a word that no YAML version reads as a boolean, null or
 * number, else single-quoted.
 */
export function scalar(s) {
  if (/^[A-Za-z_][-._A-Za-z0-9/:+=]*$/.test(s) && !SPECIAL.test(s)) return s;
  return `'${s.replaceAll("'", "''")}'`;
}

function byteCompare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A new SealedSecret as YAML, in the CLI's layout: apiVersion, kind,
 * metadata (name, namespace), spec (scope unless strict, encryptedData
 * sorted by key, template type when given).
 */
export function renderSealedSecret({ name, namespace, scope, type, encryptedData }) {
  const lines = [`apiVersion: ${API_VERSION}`, "kind: SealedSecret", "metadata:", `  name: ${scalar(name)}`];
  if (namespace) lines.push(`  namespace: ${scalar(namespace)}`);
  lines.push("spec:");
  if (scope !== "strict") lines.push(`  scope: ${scalar(scope)}`);
  lines.push("  encryptedData:");
  for (const [k, v] of [...encryptedData].sort((a, b) => byteCompare(a[0], b[0]))) {
    lines.push(`    ${scalar(k)}: ${scalar(v)}`);
  }
  if (type) lines.push("  template:", `    type: ${scalar(type)}`);
  return lines.join("\n") + "\n";
}

function parseDocs(text) {
  const docs = YAML.parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
  if (!Array.isArray(docs)) return [];
  for (const [i, d] of docs.entries()) {
    const err = d.errors[0];
    if (err) {
      const line = err.linePos?.[0]?.line;
      throw new ManifestError(
        `the pasted SealedSecret is not valid YAML (document ${i + 1}${line ? `, line ${line}` : ""}): ${err.message.split("\n")[0]}`,
      );
    }
  }
  return docs;
}

function str(doc, path) {
  const v = doc.getIn(path);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new ManifestError(`the pasted SealedSecret's ${path.join(".")} is not a string`);
  return v;
}

/**
 * Reads the pasted text: exactly one SealedSecret (other documents are
 * kept as they are). Returns what the form needs: `{ name, namespace,
 * scope, type, items: [{ key, keyIds, plaintextLength, binding }],
 * vaultKeys }`.
 */
export function readSealedSecret(text) {
  const docs = parseDocs(text);
  const sealed = docs.filter((d) => d.get("kind") === "SealedSecret");
  if (sealed.length === 0) {
    throw new ManifestError("the pasted text holds no SealedSecret (kind: SealedSecret); clear the field to make a new one");
  }
  if (sealed.length > 1) {
    const names = sealed.map((d) => [d.getIn(["metadata", "namespace"]), d.getIn(["metadata", "name"])].filter(Boolean).join("/"));
    throw new ManifestError(`the pasted text holds ${sealed.length} SealedSecrets (${names.join(", ")}); paste only the one to add items to`);
  }
  const doc = sealed[0];
  if (doc.get("apiVersion") !== API_VERSION) {
    throw new ManifestError(`the pasted SealedSecret has apiVersion ${JSON.stringify(doc.get("apiVersion") ?? null)}; this page writes ${API_VERSION}`);
  }
  const name = str(doc, ["metadata", "name"]);
  if (!name) throw new ManifestError("the pasted SealedSecret has no metadata.name");
  const namespace = str(doc, ["metadata", "namespace"]);
  const scope = str(doc, ["spec", "scope"]) ?? "strict";
  if (!SCOPES.includes(scope)) {
    throw new ManifestError(`the pasted SealedSecret has spec.scope ${JSON.stringify(scope)}; expected strict, namespace or cluster`);
  }
  const type = str(doc, ["spec", "template", "type"]);
  const data = doc.getIn(["spec", "encryptedData"], true);
  const items = [];
  if (data !== undefined && data !== null && !YAML.isMap(data) && !(YAML.isScalar(data) && data.value === null)) {
    throw new ManifestError("the pasted SealedSecret's spec.encryptedData is not a mapping");
  }
  const values = YAML.isMap(data) ? doc.toJS({ maxAliasCount: 100 })?.spec?.encryptedData : {};
  for (const pair of YAML.isMap(data) ? data.items : []) {
    const key = YAML.isScalar(pair.key) ? String(pair.key.value) : undefined;
    const value = key === undefined ? undefined : values[key];
    if (key === undefined || typeof value !== "string") {
      throw new ManifestError(`the pasted SealedSecret's spec.encryptedData has an entry that is not item key: gs1:… text`);
    }
    let info;
    try {
      info = parseEnvelope(value);
    } catch (e) {
      throw new ManifestError(`item ${JSON.stringify(key)} of the pasted SealedSecret: ${e.message}`);
    }
    items.push({ key, ...info });
  }
  const vault = doc.getIn(["spec", "vaultData"], true);
  const vaultKeys = YAML.isMap(vault) ? vault.items.map((p) => String(YAML.isScalar(p.key) ? p.key.value : p.key)) : [];
  return { name, namespace, scope, type, items, vaultKeys };
}

function lineStart(text, pos) {
  return text.lastIndexOf("\n", pos - 1) + 1;
}

/**
 * The edits (`[offset, deleteCount, insert]`) that add or replace `sealed`
 * items in the block mapping `data`, or null when its layout is not a plain
 * block mapping with at least one item.
 */
function inPlaceEdits(text, data, sealed) {
  if (!YAML.isMap(data) || data.flow || data.items.length === 0) return null;
  const pairs = data.items;
  if (!pairs.every((p) => YAML.isScalar(p.key) && p.key.range && p.value?.range)) return null;
  if (pairs.some((p) => sealed.has(String(p.key.value)) && !YAML.isScalar(p.value))) return null;
  const first = pairs[0].key.range[0];
  const indent = first - lineStart(text, first);
  if (text.slice(lineStart(text, first), first).trim() !== "") return null;
  const keys = pairs.map((p) => String(p.key.value));
  const sorted = keys.every((k, i) => i === 0 || byteCompare(keys[i - 1], k) <= 0);
  const edits = [];
  for (const [key, value] of sealed) {
    const at = keys.indexOf(key);
    if (at >= 0) {
      const [start, end] = pairs[at].value.range;
      edits.push([start, end - start, scalar(value)]);
      continue;
    }
    const line = `${" ".repeat(indent)}${scalar(key)}: ${scalar(value)}\n`;
    const before = sorted ? keys.findIndex((k) => byteCompare(k, key) > 0) : -1;
    if (before >= 0) {
      // Before that item's line and the comment lines just above it.
      let pos = lineStart(text, pairs[before].key.range[0]);
      while (pos > 0) {
        const prev = lineStart(text, pos - 1);
        if (!text.slice(prev, pos).trim().startsWith("#")) break;
        pos = prev;
      }
      edits.push([pos, 0, line]);
    } else {
      const end = pairs[pairs.length - 1].value.range[1];
      const nl = text.indexOf("\n", end);
      edits.push(nl < 0 ? [text.length, 0, "\n" + line] : [nl + 1, 0, line]);
    }
  }
  return edits;
}

function applyEdits(text, edits) {
  // Stable for equal offsets: later inserts at one offset go after earlier ones.
  const ordered = edits.map((e, i) => [...e, i]).sort((a, b) => b[0] - a[0] || b[3] - a[3]);
  let out = text;
  for (const [offset, del, insert] of ordered) out = out.slice(0, offset) + insert + out.slice(offset + del);
  return out;
}

function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  }
  return v;
}

function sealedDocIndex(docs) {
  return docs.findIndex((d) => d.get("kind") === "SealedSecret");
}

/** The source text of every item value of the SealedSecret: key → text. */
function itemSources(text, docs) {
  const data = docs[sealedDocIndex(docs)]?.getIn(["spec", "encryptedData"], true);
  const out = new Map();
  for (const p of YAML.isMap(data) ? data.items : []) {
    if (YAML.isScalar(p.key) && p.value?.range) out.set(String(p.key.value), text.slice(p.value.range[0], p.value.range[1]));
  }
  return out;
}

/**
 * Adds or replaces the items `sealed` (Map key → gs1 text) in the one
 * SealedSecret of `text`. Returns `{ text, changes }`; throws a
 * ManifestError when the merge would change anything else.
 */
export function mergeInto(text, sealed) {
  const docs = parseDocs(text);
  const index = sealedDocIndex(docs);
  if (index < 0) throw new ManifestError("the pasted text holds no SealedSecret");
  const doc = docs[index];
  const vault = doc.getIn(["spec", "vaultData"], true);
  for (const key of sealed.keys()) {
    if (YAML.isMap(vault) && vault.has(key)) {
      throw new ManifestError(
        `item ${JSON.stringify(key)} is a Vault reference in the pasted SealedSecret (spec.vaultData); ` +
          "remove it there first, or use `gitseal seal --merge-into`, which replaces it",
      );
    }
  }
  const data = doc.getIn(["spec", "encryptedData"], true);
  const before = itemSources(text, docs);
  const changes = [];
  const where = [doc.getIn(["metadata", "namespace"]), doc.getIn(["metadata", "name"])].filter(Boolean).join("/");
  for (const key of sealed.keys()) {
    changes.push(before.has(key) ? `replaced item "${key}" in ${where}` : `added item "${key}" to ${where}`);
  }

  let merged;
  const edits = inPlaceEdits(text, data, sealed);
  if (edits) {
    merged = applyEdits(text, edits);
  } else {
    // Written again through the YAML library: comments are kept, layout may change.
    let rendered;
    try {
      rendered = rewrite(doc, sealed);
    } catch (e) {
      throw new ManifestError(
        `cannot add the items without changing other parts of the pasted text (${e.message}); use \`gitseal seal --merge-into\``,
      );
    }
    const [start, , end] = doc.range;
    merged = text.slice(0, start) + rendered + text.slice(end);
  }
  check(text, docs, index, sealed, before, merged);
  return { text: merged, changes };
}

/** The document `doc` with the `sealed` items set, as text. */
function rewrite(doc, sealed) {
  const copy = doc.clone();
  if (!YAML.isMap(copy.getIn(["spec", "encryptedData"], true))) copy.setIn(["spec", "encryptedData"], copy.createNode({}));
  const map = copy.getIn(["spec", "encryptedData"], true);
  const keys = map.items.map((p) => String(YAML.isScalar(p.key) ? p.key.value : p.key));
  const sorted = keys.every((k, i) => i === 0 || byteCompare(keys[i - 1], k) <= 0);
  for (const [key, value] of sealed) {
    const node = copy.createNode(value);
    if (scalar(value) !== value) node.type = "QUOTE_SINGLE";
    map.set(key, node);
  }
  if (sorted) map.items.sort((a, b) => byteCompare(String(a.key.value ?? a.key), String(b.key.value ?? b.key)));
  map.flow = false;
  return copy.toString({ lineWidth: 0, singleQuote: true });
}

/** Refuses a merge whose result is anything but the original plus the new items. */
function check(text, docs, index, sealed, before, merged) {
  const fail = (why) =>
    new ManifestError(`cannot add the items without changing other parts of the pasted text (${why}); use \`gitseal seal --merge-into\``);
  let again;
  try {
    again = parseDocs(merged);
  } catch {
    throw fail("the result does not parse");
  }
  if (again.length !== docs.length) throw fail("the number of documents changed");
  for (const [i, d] of docs.entries()) {
    const expected = d.toJS();
    if (i === index) {
      expected.spec ??= {};
      expected.spec.encryptedData ??= {};
      for (const [k, v] of sealed) expected.spec.encryptedData[k] = v;
    }
    if (JSON.stringify(canonical(again[i].toJS())) !== JSON.stringify(canonical(expected))) {
      throw fail(`document ${i + 1} would differ`);
    }
  }
  const after = itemSources(merged, again);
  for (const [key, source] of before) {
    if (!sealed.has(key) && after.get(key) !== source) throw fail(`item "${key}" would be rewritten`);
  }
  if (index > 0 || docs.length > 1) {
    // Untouched documents keep their exact text.
    for (const [i, d] of docs.entries()) {
      if (i === index) continue;
      if (text.slice(d.range[0], d.range[2]) !== merged.slice(again[i].range[0], again[i].range[2])) {
        throw fail(`document ${i + 1} would be rewritten`);
      }
    }
  }
}
