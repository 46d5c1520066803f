// RFC 9180 Appendix A.2.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// ChaCha20-Poly1305, mode_base) through the HPKE suite the page seals with
// (envelope.js `hpkeSuite()`, hpke-js): key derivation, the encapsulated
// key, all six encryptions (sequence numbers 0, 1, 2, 4, 255, 256), their
// decryption on the recipient side, and the three secret exports. The
// vectors are the RFC's own, the same file the Rust HPKE is checked with.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { hpkeSuite, hexToBytes, toHex } from "../../src/envelope.js";

const VECTORS = new URL("../../../crates/gitseal-crypto/tests/data/hpke-rfc9180-a2-base.txt", import.meta.url);

/** Sections of `key: hex` blocks; a value wrapped over lines is one value. */
function parseVectors(text) {
  const blocks = [];
  let current = null;
  let last = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "~~~") {
      if (current) {
        blocks.push(current);
        current = null;
      } else {
        current = [{}];
      }
      continue;
    }
    if (!current || line.startsWith("#")) continue;
    if (line === "") {
      if (Object.keys(current.at(-1)).length > 0) current.push({});
      continue;
    }
    const m = /^([a-zA-Z_ ]+):\s*(.*)$/.exec(line);
    if (m) {
      last = m[1];
      current.at(-1)[last] = m[2];
    } else {
      current.at(-1)[last] += line;
    }
  }
  return blocks.map((b) => b.filter((o) => Object.keys(o).length > 0));
}

const [[setup], encryptions, exports] = parseVectors(readFileSync(VECTORS, "utf8"));
const hex = (k, o = setup) => hexToBytes(o[k]);
const buf = (u8) => u8.slice().buffer;

test("the RFC 9180 A.2.1 file was read whole", () => {
  assert.equal(setup.mode, "0");
  assert.equal(setup.kem_id, "32");
  assert.equal(setup.aead_id, "3");
  assert.deepEqual(
    encryptions.map((e) => Number(e["sequence number"])),
    [0, 1, 2, 4, 255, 256],
  );
  assert.equal(exports.length, 3);
});

test("key pairs derived from the RFC's IKM are the RFC's", async () => {
  const suite = hpkeSuite();
  for (const [ikm, pk, sk] of [
    ["ikmE", "pkEm", "skEm"],
    ["ikmR", "pkRm", "skRm"],
  ]) {
    const kp = await suite.kem.deriveKeyPair(buf(hex(ikm)));
    assert.equal(toHex(new Uint8Array(await suite.kem.serializePublicKey(kp.publicKey))), setup[pk]);
    assert.equal(toHex(new Uint8Array(await suite.kem.serializePrivateKey(kp.privateKey))), setup[sk]);
  }
});

test("sender: enc, every encryption and every export match the RFC", async () => {
  const suite = hpkeSuite();
  const recipient = await suite.kem.deriveKeyPair(buf(hex("ikmR")));
  const ctx = await suite.createSenderContext({
    recipientPublicKey: recipient.publicKey,
    info: buf(hex("info")),
    ekm: buf(hex("ikmE")),
  });
  assert.equal(toHex(new Uint8Array(ctx.enc)), setup.enc);
  const wanted = new Map(encryptions.map((e) => [Number(e["sequence number"]), e]));
  const last = Math.max(...wanted.keys());
  for (let seq = 0; seq <= last; seq++) {
    const e = wanted.get(seq);
    const ct = await ctx.seal(buf(hexToBytes(e?.pt ?? setup.ikmE)), buf(hexToBytes(e?.aad ?? "")));
    if (e) assert.equal(toHex(new Uint8Array(ct)), e.ct, `sequence number ${seq}`);
  }
  for (const x of exports) {
    const out = await ctx.export(buf(hexToBytes(x.exporter_context)), Number(x.L));
    assert.equal(toHex(new Uint8Array(out)), x.exported_value, `export of ${JSON.stringify(x.exporter_context)}`);
  }
});

test("recipient: the RFC's ciphertexts open and the exports agree", async () => {
  const suite = hpkeSuite();
  const recipient = await suite.kem.deriveKeyPair(buf(hex("ikmR")));
  const ctx = await suite.createRecipientContext({ recipientKey: recipient, enc: buf(hex("enc")), info: buf(hex("info")) });
  const wanted = new Map(encryptions.map((e) => [Number(e["sequence number"]), e]));
  // Sequence numbers without a vector are consumed by sealing them on a
  // sender context of the same keys, then opening that.
  const sender = await suite.createSenderContext({ recipientPublicKey: recipient.publicKey, info: buf(hex("info")), ekm: buf(hex("ikmE")) });
  for (let seq = 0; seq <= 256; seq++) {
    const e = wanted.get(seq);
    const ct = e ? buf(hexToBytes(e.ct)) : await sender.seal(buf(hex("ikmE")), new ArrayBuffer(0));
    if (e) await sender.seal(buf(hexToBytes(e.pt)), buf(hexToBytes(e.aad)));
    const pt = await ctx.open(ct, e ? buf(hexToBytes(e.aad)) : new ArrayBuffer(0));
    if (e) assert.equal(toHex(new Uint8Array(pt)), e.pt, `sequence number ${seq}`);
  }
  for (const x of exports) {
    const out = await ctx.export(buf(hexToBytes(x.exporter_context)), Number(x.L));
    assert.equal(toHex(new Uint8Array(out)), x.exported_value);
  }
});

test("a changed RFC ciphertext does not open", async () => {
  const suite = hpkeSuite();
  const recipient = await suite.kem.deriveKeyPair(buf(hex("ikmR")));
  const ctx = await suite.createRecipientContext({ recipientKey: recipient, enc: buf(hex("enc")), info: buf(hex("info")) });
  const ct = hexToBytes(encryptions[0].ct);
  ct[3] ^= 1;
  await assert.rejects(ctx.open(buf(ct), buf(hexToBytes(encryptions[0].aad))));
});
