// The page's sealer against docs/envelope.md: the exact bytes of the
// committed vectors (which the Rust opener opens), the layout of the body,
// the sealer's refusals, and the strict reading of a value's clear header.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { base64 } from "@scure/base";
import { binding, createSealer, encodeBinding, hexToBytes, parseEnvelope, SealError } from "../../src/envelope.js";
import { keyPair, makeVectors, render } from "../gen-vectors.mjs";

const committed = readFileSync(new URL("../data/gs1-vectors.json", import.meta.url), "utf8");

test("the sealer makes exactly the committed test vectors", async () => {
  assert.equal(render(await makeVectors()), committed);
});

test("the committed vectors: values of one object share an enc, not a wrapped key", () => {
  const { vectors } = JSON.parse(committed);
  const two = vectors.find((v) => v.values.length === 2);
  const bodies = two.values.map((v) => base64.decode(v.envelope.slice(4)));
  const stanza = (body, b) => body.subarray(encodeBinding(b).length + 1, encodeBinding(b).length + 1 + 72);
  const [s0, s1] = two.values.map((v, i) => stanza(bodies[i], { ...v.binding, namespace: v.binding.namespace ?? undefined, name: v.binding.name ?? undefined }));
  assert.deepEqual(s0.subarray(0, 40), s1.subarray(0, 40), "same key id and enc");
  assert.notDeepEqual(s0.subarray(40), s1.subarray(40), "different wrapped data keys");
});

test("body layout: binding, count, 72-byte stanzas, value plus 16-byte tag", async () => {
  const a = await keyPair("a");
  const b = await keyPair("b");
  const sealer = await createSealer([a.recipient, b.recipient, a.recipient]);
  assert.deepEqual(sealer.keyIds, [a.recipient.keyId, b.recipient.keyId], "duplicates sealed to once, in order");
  const value = new TextEncoder().encode("hunter2");
  const bnd = binding("strict", "prod", "db", "password");
  const text = await sealer.seal(value, bnd);
  assert.match(text, /^gs1:[A-Za-z0-9+/]+={0,2}$/);
  const body = base64.decode(text.slice(4));
  const head = encodeBinding(bnd);
  assert.deepEqual([...head], [0, 4, ...Buffer.from("prod"), 2, ...Buffer.from("db"), 8, ...Buffer.from("password")]);
  assert.deepEqual(body.subarray(0, head.length), head);
  assert.equal(body[head.length], 2);
  assert.deepEqual(body.subarray(head.length + 1, head.length + 9), hexToBytes(a.recipient.keyId));
  assert.deepEqual(body.subarray(head.length + 73, head.length + 81), hexToBytes(b.recipient.keyId));
  // One recipient: 93 bytes plus the binding's text, as docs/envelope.md says.
  const one = base64.decode((await (await createSealer([a.recipient])).seal(value, bnd)).slice(4));
  assert.equal(one.length, value.length + 93 + "prod".length + "db".length + "password".length);
  assert.deepEqual(parseEnvelope(text), {
    binding: { scope: "strict", namespace: "prod", name: "db", key: "password" },
    keyIds: [a.recipient.keyId, b.recipient.keyId],
    plaintextLength: 7,
  });
});

test("scopes bind only what they cover", () => {
  assert.deepEqual([...encodeBinding(binding("namespace", "prod", "ignored", "k"))], [1, 4, ...Buffer.from("prod"), 1, 107]);
  assert.deepEqual([...encodeBinding(binding("cluster", "ignored", "ignored", "k"))], [2, 1, 107]);
  assert.throws(() => binding("wide", "a", "b", "c"), SealError);
});

test("the sealer refuses what the spec refuses", async () => {
  const a = await keyPair("a");
  await assert.rejects(createSealer([]), /no recipients/);
  const many = [];
  for (let i = 0; i < 65; i++) many.push({ ...a.recipient, keyId: i.toString(16).padStart(16, "0") });
  await assert.rejects(createSealer(many), /at most 64/);
  // A low-order point (here: zero) gives an all-zero shared secret.
  await assert.rejects(createSealer([{ publicKey: new Uint8Array(32), keyId: "0000000000000000" }]), /low-order point/);
  const sealer = await createSealer([a.recipient]);
  const b = binding("strict", "prod", "db", "k");
  await sealer.seal(new Uint8Array(1), b);
  await assert.rejects(sealer.seal(new Uint8Array(1), b), /already sealed a value for this binding/);
  await assert.rejects(sealer.seal(new Uint8Array(1), binding("strict", "", "db", "x")), /namespace is empty/);
  await assert.rejects(sealer.seal(new Uint8Array(1), binding("strict", "prod", "db", "é".repeat(128))), /item key is longer than 255 bytes/);
});

test("two sealings of one value differ (fresh data key and encapsulation)", async () => {
  const a = await keyPair("a");
  const b = binding("cluster", "", "", "k");
  const x = await (await createSealer([a.recipient])).seal(new Uint8Array(3), b);
  const y = await (await createSealer([a.recipient])).seal(new Uint8Array(3), b);
  assert.notEqual(x, y);
});

test("reading a value's header is strict and total", async () => {
  const a = await keyPair("a");
  const good = await (await createSealer([a.recipient])).seal(new Uint8Array(5), binding("strict", "ns", "n", "k"));
  const body = base64.decode(good.slice(4));
  const bad = (bytes) => "gs1:" + base64.encode(Uint8Array.from(bytes));
  const cases = [
    ["gs2:AAAA", /version "gs2"/],
    ["hunter2", /not a sealed value/],
    ["gs1:***", /not valid base64/],
    ["gs1:AQIDBB==", /not valid base64/],
    [bad([3]), /unknown scope byte/],
    [bad([0, 0]), /empty binding field/],
    [bad([2, 1, 107, 0]), /no recipients/],
    [bad([2, 1, 107, 65]), /more than 64 recipients/],
    [bad([2, 1, 107, 1, 1, 2]), /truncated recipient stanza/],
    [bad([2, 5, 107]), /truncated binding field/],
    [bad([2, 1, 0xc3]), /binding field is not UTF-8/],
    [bad([...body.subarray(0, body.length - 5 - 1)]), /shorter than its tag/],
  ];
  const h = encodeBinding(binding("strict", "ns", "n", "k")).length;
  const stanza = body.subarray(h + 1, h + 73);
  const twice = [...body.subarray(0, h), 2, ...stanza, ...stanza, ...body.subarray(h + 73)];
  cases.push([bad(twice), /the same key id appears twice/]);
  for (const [text, message] of cases) assert.throws(() => parseEnvelope(text), message, text);
  // Every truncation of a good body is refused with a SealError, never a crash.
  for (let n = 0; n < body.length - 16 - 5; n++) {
    assert.throws(() => parseEnvelope(bad(body.subarray(0, n))), SealError, `truncated to ${n}`);
  }
  assert.equal(parseEnvelope(`  ${good}\n`).plaintextLength, 5);
});
