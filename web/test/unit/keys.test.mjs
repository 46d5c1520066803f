// Public keys as the page reads them: age recipients, the controller's
// published list (with the tamper check `gitseal fetch-key` makes), and
// keyring files (the repository's own keys.example).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { bech32 } from "@scure/base";
import { KeyError, parseKeyring, parseKeysJson, parsePastedKeys, parseRecipient } from "../../src/keys.js";
import { keyPair } from "../gen-vectors.mjs";

const EXAMPLE = readFileSync(new URL("../../../keys.example", import.meta.url), "utf8");

test("recipients: age1… parses to its key bytes and key id; upper case is the same key", async () => {
  const { recipient } = await keyPair("a");
  const r = parseRecipient(`  ${recipient.text}\n`);
  assert.deepEqual(r, recipient);
  assert.deepEqual(parseRecipient(recipient.text.toUpperCase()), recipient);
});

test("recipients: bad ones are refused, and a private key is never repeated", async () => {
  const { identity, recipient } = await keyPair("a");
  const err = (s) => {
    try {
      parseRecipient(s);
    } catch (e) {
      assert.ok(e instanceof KeyError);
      return e.message;
    }
    assert.fail(`accepted ${s}`);
  };
  const priv = err(identity);
  assert.match(priv, /private key/);
  assert.ok(!priv.includes(identity.slice(15)), "the private key is not echoed");
  assert.match(err(identity.toLowerCase()), /private key/);
  const flipped = recipient.text.slice(0, -1) + (recipient.text.endsWith("q") ? "p" : "q");
  assert.match(err(flipped), /is not an age recipient/);
  assert.match(err(bech32.encode("age", bech32.toWords(new Uint8Array(31)))), /wrong key length/);
  assert.match(err(bech32.encode("ssh", bech32.toWords(new Uint8Array(32)))), /the text is not an age X25519 recipient/);
  // Text that may be a secret pasted into the wrong field is not repeated.
  const secret = "hunter2-s3cret"; // gitseal:allow made-up value, checked not to be echoed
  assert.ok(!err(secret).includes(secret));
});

test("published key list: checked like gitseal fetch-key checks it", async () => {
  const a = (await keyPair("a")).recipient;
  const b = (await keyPair("b")).recipient;
  const list = [
    { recipient: a.text, keyId: a.keyId, active: true, created: "2026-01-01T00:00:00Z" },
    { recipient: b.text, keyId: b.keyId, active: false, created: "2025-01-01T00:00:00Z" },
  ];
  const ok = parseKeysJson(JSON.stringify(list), "v1/keys");
  assert.equal(ok.active.keyId, a.keyId);
  assert.equal(ok.keys.length, 2);

  const refused = (value, message) => assert.throws(() => parseKeysJson(typeof value === "string" ? value : JSON.stringify(value), "v1/keys"), message);
  // Tampered: an attacker's key published under the real key's id.
  refused([{ ...list[0], recipient: b.text }, list[1]], /key #1 .* is published with key id "[0-9a-f]{16}", but its key id is [0-9a-f]{16}; the list is corrupt or tampered with, refusing it/);
  refused([list[0], { ...list[1], keyId: a.keyId }], /key #2 .*tampered with/);
  refused("{not json", /not valid JSON/);
  refused({ keys: list }, /not a JSON array/);
  refused([], /no keys are published/);
  refused([{ keyId: a.keyId, active: true }], /key #1 has no "recipient" string/);
  refused([{ recipient: a.text, active: true }], /key #1 has no "keyId" string/);
  refused([{ ...list[0], recipient: "age1nope" }], /key #1: .*not an age recipient/);
  refused([{ ...list[0], active: false }, list[1]], /no published key is marked active/);
  refused([list[0], { ...list[1], active: true }], /2 published keys are marked active/);
});

test("keyring: keys.example parses, with its default environment and scopes", () => {
  const k = parseKeyring(EXAMPLE, "keys.example");
  assert.deepEqual([...k.environments.keys()], ["dev", "prod"]);
  assert.equal(k.defaultEnvironment, "dev");
  assert.equal(k.environments.get("prod").recipients.length, 3);
  assert.equal(k.environments.get("prod").scope, "strict");
  assert.match(k.environments.get("dev").recipients[0].keyId, /^[0-9a-f]{16}$/);
  // Mapping entries (`recipient:` with controller/required/note) and plain strings both count.
  assert.deepEqual(
    k.environments.get("prod").recipients.map((r) => r.text.slice(0, 8)),
    ["age1da7t", "age15aj5", "age1dkme"],
  );
});

test("keyring: what gitseal refuses, the page refuses", () => {
  const bad = [
    ["version: 2\nenvironments: {}\n", /version 2 is not supported/],
    ["version: 1\n", /no environments/],
    ["version: 1\nenvironments:\n  dev:\n    recipients: []\n", /"dev" has no recipients/],
    ["version: 1\nenvironments:\n  dev:\n    recipients: [age1nope]\n", /"dev", recipient #1: .*not an age recipient/],
    ["version: 1\nenvironments:\n  dev:\n    recipients: [7]\n", /recipient #1 is neither a recipient nor a mapping/],
    ["version: 1\nenvironments:\n  dev:\n    recipients: [{note: x}]\n", /recipient #1 is neither a recipient nor a mapping/],
    // keys.example's dev recipient, marked retired: nothing may be sealed to it.
    [EXAMPLE.replace("\nretired:\n", "\nretired:\n  - age1qm7270v0hg07cwnfe4f5mngqlx7d67cjj2jxq2gtqj7448n7ys7q2qgjfg\n"), /"dev", recipient #1 has key id [0-9a-f]{16}, which the keyring marks retired/],
    ["version: 1\nenvironments:\n  dev:\n    recipients: [age1qm7270v0hg07cwnfe4f5mngqlx7d67cjj2jxq2gtqj7448n7ys7q2qgjfg]\nretired: [{note: x}]\n", /retired key #1 names no "keyId" or "recipient"/],
    [EXAMPLE.replace("scope: strict", "scope: wide"), /scope "wide"/],
    [EXAMPLE.replace("defaultEnvironment: dev", "defaultEnvironment: qa"), /defaultEnvironment "qa" is not one of the environments/],
    ["version: 1\nenvironments: [\n", /not valid YAML/],
  ];
  for (const [text, message] of bad) assert.throws(() => parseKeyring(text, "k.yaml"), message);
});

test("pasted keys: recipients one per line with comments, a keyring, or a key list", async () => {
  const a = (await keyPair("a")).recipient;
  const b = (await keyPair("b")).recipient;
  assert.deepEqual(parsePastedKeys("  \n"), { kind: "none" });
  const lines = parsePastedKeys(`# cluster\n${a.text}  # prod\n\n${b.text}\n`);
  assert.equal(lines.kind, "recipients");
  assert.deepEqual(lines.recipients.map((r) => r.keyId), [a.keyId, b.keyId]);
  assert.throws(() => parsePastedKeys(`${a.text}\nage1broken\n`), /pasted keys, line 2: /);
  assert.equal(parsePastedKeys(EXAMPLE).kind, "keyring");
  const list = parsePastedKeys(JSON.stringify([{ recipient: b.text, keyId: b.keyId, active: true }]));
  assert.deepEqual(list.recipients.map((r) => r.keyId), [b.keyId]);
  assert.throws(() => parsePastedKeys(JSON.stringify([{ recipient: b.text, keyId: a.keyId, active: true }])), /tampered/);
});
