// Writes test/data/gs1-vectors.json: envelopes sealed by the page's sealer
// (src/envelope.js) with fixed randomness (the HPKE ephemeral key material
// and the data keys), for implementers of docs/envelope.md. The Rust opener
// opens every one of them (crates/gitseal-controller/tests/it/web_page.rs)
// and test/unit/envelope.test.mjs checks the sealer still makes exactly
// these bytes, so the file ties the two implementations together.
//
//   node test/gen-vectors.mjs

import { writeFileSync } from "node:fs";
import { bech32 } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { binding, createSealer, hpkeSuite, keyIdOf, toHex } from "../src/envelope.js";

const utf8 = new TextEncoder();
/** 32 deterministic bytes for `label`. */
const fixed = (label) => sha256(utf8.encode(`gitseal gs1 test vector: ${label}`));

export async function keyPair(label) {
  const suite = hpkeSuite();
  const kp = await suite.kem.deriveKeyPair(fixed(`recipient ${label}`).slice().buffer);
  const secret = new Uint8Array(await suite.kem.serializePrivateKey(kp.privateKey));
  const publicKey = new Uint8Array(await suite.kem.serializePublicKey(kp.publicKey));
  return {
    identity: bech32.encode("age-secret-key-", bech32.toWords(secret), 90).toUpperCase(),
    recipient: { text: bech32.encode("age", bech32.toWords(publicKey), 90), publicKey, keyId: keyIdOf(publicKey) },
  };
}

/** The vectors' inputs: one object per sealer, one or more values each. */
export const CASES = [
  { description: "strict scope, one recipient", recipients: ["a"], values: [["strict", "prod", "db", "password", "hunter2"]] },
  { description: "namespace scope, two recipients, non-ASCII value", recipients: ["a", "b"], values: [["namespace", "team-ü", "", "token", "pässwörd ✓ 🔑"]] },
  { description: "cluster scope, empty value", recipients: ["b"], values: [["cluster", "", "", "empty", ""]] },
  {
    description: "two values of one object: one encapsulation, two data keys",
    recipients: ["a"],
    values: [
      ["strict", "prod", "app", "user", "admin"],
      ["strict", "prod", "app", "tls.key", "\u0000\u0001\u00ff binary-ish"],
    ],
  },
];

export async function makeVectors() {
  const out = [];
  for (const [n, c] of CASES.entries()) {
    const pairs = await Promise.all(c.recipients.map(keyPair));
    const ekm = c.recipients.map((r) => fixed(`case ${n} ephemeral ${r}`));
    const dataKeys = c.values.map((_, i) => fixed(`case ${n} data key ${i}`));
    const sealer = await createSealer(pairs.map((p) => p.recipient), { ekm, dataKeys });
    const values = [];
    for (const [scope, namespace, name, key, text] of c.values) {
      const plaintext = utf8.encode(text);
      const b = binding(scope, namespace, name, key);
      values.push({ binding: { scope, namespace: b.namespace ?? null, name: b.name ?? null, key }, plaintext: toHex(plaintext), envelope: await sealer.seal(plaintext, b) });
    }
    out.push({
      description: c.description,
      identities: pairs.map((p) => p.identity),
      recipients: pairs.map((p) => p.recipient.text),
      keyIds: pairs.map((p) => p.recipient.keyId),
      ekm: ekm.map(toHex),
      dataKeys: dataKeys.map(toHex),
      values,
    });
  }
  return out;
}

/** The file's text: one field a line, the allow marker right above the test-only identities. */
export function render(vectors) {
  const lines = [
    "{",
    '  "about": "gs1 envelopes (docs/envelope.md) sealed with fixed randomness by web/src/envelope.js; opened by the Rust opener in crates/gitseal-controller/tests/it/web_page.rs. ekm: HPKE DeriveKeyPair input of each recipient\'s ephemeral key; dataKeys: one per value. Regenerate: node web/test/gen-vectors.mjs",',
    '  "vectors": [',
  ];
  vectors.forEach((v, i) => {
    lines.push("    {");
    lines.push(`      "description": ${JSON.stringify(v.description)},`);
    lines.push('      "allow": "gitseal:allow test-only identities on the next line, derived from public labels, guard nothing",');
    for (const k of ["identities", "recipients", "keyIds", "ekm", "dataKeys"]) lines.push(`      "${k}": ${JSON.stringify(v[k])},`);
    lines.push('      "values": [');
    v.values.forEach((x, j) => lines.push(`        ${JSON.stringify(x)}${j + 1 < v.values.length ? "," : ""}`));
    lines.push("      ]");
    lines.push(`    }${i + 1 < vectors.length ? "," : ""}`);
  });
  lines.push("  ]", "}");
  return lines.join("\n") + "\n";
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL("data/gs1-vectors.json", import.meta.url), render(await makeVectors()));
  console.log("wrote test/data/gs1-vectors.json");
}
