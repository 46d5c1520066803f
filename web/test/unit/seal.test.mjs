// The Seal button's logic without a browser: every problem reported
// against its field at once, nothing sealed unless all is right, the
// Secret size limit counting the items a merge keeps.

import assert from "node:assert/strict";
import { test } from "node:test";
import { parseEnvelope } from "../../src/envelope.js";
import { readSealedSecret } from "../../src/manifest.js";
import { FormError, sealForm } from "../../src/seal.js";
import { keyPair } from "../gen-vectors.mjs";

const utf8 = new TextEncoder();

async function form(over = {}) {
  const { recipient } = await keyPair("a");
  return {
    recipients: [recipient],
    namespace: "prod",
    name: "db",
    scope: "strict",
    type: "",
    items: [{ key: "password", value: utf8.encode("hunter2") }],
    existing: "",
    ...over,
  };
}

async function problems(over) {
  try {
    await sealForm(await form(over));
  } catch (e) {
    assert.ok(e instanceof FormError, e.stack);
    return e.problems;
  }
  assert.fail("sealed");
}

test("a good form seals every item bound to its place", async () => {
  const r = await sealForm(await form({ scope: "namespace", items: [{ key: "a", value: utf8.encode("1") }, { key: "b", value: new Uint8Array([0, 255]) }] }));
  const t = readSealedSecret(r.text);
  assert.deepEqual([t.name, t.namespace, t.scope], ["db", "prod", "namespace"]);
  assert.deepEqual(t.items.map((i) => [i.key, i.binding.namespace, i.binding.name, i.plaintextLength]), [["a", "prod", undefined, 1], ["b", "prod", undefined, 2]]);
  assert.equal(r.filename, "db.yaml");
  assert.deepEqual(r.keyIds, [(await keyPair("a")).recipient.keyId]);
});

test("every problem is reported at once, against its field", async () => {
  const p = await problems({
    recipients: [],
    namespace: "Prod",
    name: "db_1",
    type: "my type",
    items: [
      { key: "a b", value: new Uint8Array(1) },
      { key: "x", value: new Uint8Array(1) },
      { key: "x", value: new Uint8Array(1) },
      { key: "..", value: new Uint8Array(1) },
    ],
  });
  assert.deepEqual(
    p.map((x) => x.field),
    ["name", "type", "namespace", "keys", "item-0-key", "item-2-key", "item-3-key"],
  );
  assert.match(p.find((x) => x.field === "item-2-key").message, /item 3: the item key "x" is already used by item 2/);
  assert.match(p.find((x) => x.field === "namespace").message, /lowercase letters, digits and '-'/);
  // Cluster scope needs no namespace; a given one must still be valid.
  assert.deepEqual(await problems({ scope: "cluster", namespace: "Bad" }).then((x) => x.map((y) => y.field)), ["namespace"]);
  const cluster = await sealForm(await form({ scope: "cluster", namespace: "" }));
  assert.ok(!cluster.text.includes("namespace:"));
  assert.deepEqual(await problems({ items: [] }).then((x) => x.map((y) => y.message)), ["add at least one item"]);
});

test("values over 1 MiB in all are refused at the largest item", async () => {
  const big = new Uint8Array(1024 * 1024);
  assert.equal((await sealForm(await form({ items: [{ key: "a", value: big }] }))).text.length > 1024 * 1024, true);
  const p = await problems({ items: [{ key: "a", value: new Uint8Array(10) }, { key: "b", value: big }] });
  assert.deepEqual(p, [{ field: "item-1-value", message: "the values are too large: the Secret would hold 1,048,586 bytes, and Kubernetes refuses Secrets larger than 1 MiB (1,048,576 bytes)" }]);
});

test("merge: the pasted object decides the place; kept items count toward the limit", async () => {
  const first = await sealForm(await form({ items: [{ key: "big", value: new Uint8Array(1024 * 1024 - 10) }, { key: "small", value: new Uint8Array(5) }] }));
  // Form fields for the place are ignored in merge mode.
  const merged = await sealForm(await form({ existing: first.text, name: "ignored", namespace: "ignored", scope: "cluster", items: [{ key: "small", value: new Uint8Array(10) }] }));
  const t = readSealedSecret(merged.text);
  assert.deepEqual([t.name, t.namespace, t.scope], ["db", "prod", "strict"]);
  assert.deepEqual(merged.changes, ['replaced item "small" in prod/db']);
  assert.equal(parseEnvelope(merged.text.match(/small: (\S+)/)[1]).binding.name, "db");
  const p = await problems({ existing: first.text, items: [{ key: "more", value: new Uint8Array(11) }] });
  assert.deepEqual(p.map((x) => x.field), ["item-0-value"]);
  const bad = await problems({ existing: "kind: ConfigMap\n" });
  assert.deepEqual(bad.map((x) => x.field), ["existing"]);
});
