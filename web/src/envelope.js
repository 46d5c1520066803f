// The gs1 envelope (docs/envelope.md), written a second time in JavaScript
// so the sealing page can seal in the browser. This is an independent
// implementation of the spec, on audited libraries: RFC 9180 HPKE from
// hpke-js (@hpke/core with @hpke/dhkem-x25519 and @hpke/chacha20poly1305),
// HKDF-SHA256 and SHA-256 from @noble/hashes, ChaCha20-Poly1305 from
// @noble/ciphers, base64 from @scure/base. The Rust code in
// crates/gitseal-crypto is the reference it is tested against (the
// controller's web_page tests open what this seals), not its source.
//
// Sealing only: the page never holds a private key, so there is no opener
// here. `parseEnvelope` reads the clear header (binding, key ids, length)
// of values already in a SealedSecret, for the merge view.

import { CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { expand } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { base64 } from "@scure/base";

export const PREFIX = "gs1:";
export const MAX_RECIPIENTS = 64;
export const MAX_FIELD_LEN = 255;
export const SCOPES = ["strict", "namespace", "cluster"];

const utf8 = new TextEncoder();
const HPKE_INFO = utf8.encode("gitseal/v1 wrap");
const EXPORT_LABEL = utf8.encode("gitseal/v1 data key");
const VALUE_KEY_INFO = utf8.encode("gitseal/v1 value key");
const KEY_ID_LEN = 8;
const N_ENC = 32;
const STANZA_LEN = KEY_ID_LEN + N_ENC + 32;
const TAG_LEN = 16;

/** A sealing error a user can act on; `field` names the form field, if any. */
export class SealError extends Error {
  constructor(message, field) {
    super(message);
    this.name = "SealError";
    this.field = field;
  }
}

let suite;
/** The one HPKE suite of docs/envelope.md: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305. */
export function hpkeSuite() {
  suite ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Chacha20Poly1305(),
  });
  return suite;
}

/** Lowercase hex of bytes. */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The key id of a raw 32-byte X25519 public key: SHA-256, first 8 bytes, as hex. */
export function keyIdOf(publicKey) {
  return toHex(sha256(publicKey).subarray(0, KEY_ID_LEN));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * The binding of item `key` of `namespace`/`name` under `scope`, keeping
 * only the parts the scope covers (as the Rust `Binding::new` does).
 */
export function binding(scope, namespace, name, key) {
  if (!SCOPES.includes(scope)) {
    throw new SealError(`unknown scope ${JSON.stringify(scope)}: use strict, namespace or cluster`, "scope");
  }
  return {
    scope,
    namespace: scope === "cluster" ? undefined : namespace,
    name: scope === "strict" ? name : undefined,
    key,
  };
}

/** The header encoding of a binding: scope byte, then each covered field as length ‖ UTF-8. */
export function encodeBinding(b) {
  const parts = [Uint8Array.of(SCOPES.indexOf(b.scope))];
  for (const [field, value] of [
    ["namespace", b.namespace],
    ["name", b.name],
    ["item key", b.key],
  ]) {
    if (value === undefined) continue;
    const bytes = utf8.encode(value);
    if (bytes.length === 0) throw new SealError(`cannot bind the value: the ${field} is empty`, field);
    if (bytes.length > MAX_FIELD_LEN) {
      throw new SealError(`cannot bind the value: the ${field} is longer than 255 bytes`, field);
    }
    parts.push(Uint8Array.of(bytes.length), bytes);
  }
  return concat(...parts);
}

function bindingId(b) {
  return JSON.stringify([b.scope, b.namespace ?? null, b.name ?? null, b.key]);
}

function xor32(a, b) {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = a[i] ^ b[i];
  return out;
}

/**
 * A sealer for the values of one object (docs/envelope.md, "Sealing the
 * values of one object"): one HPKE encapsulation per recipient, shared by
 * every value it seals; each value gets a fresh random data key, wrapped
 * with the HPKE secret export whose context is the value's binding. It
 * refuses to seal two values with the same binding.
 *
 * `recipients` are `{ publicKey: Uint8Array(32), keyId }`; duplicates are
 * sealed to once, in first-seen order. `testing` is for test vectors only:
 * `ekm` (one ephemeral IKM per recipient) and `dataKeys` (one per value).
 */
export async function createSealer(recipients, testing = {}) {
  const unique = [];
  for (const r of recipients) {
    if (!unique.some((u) => u.keyId === r.keyId)) unique.push(r);
  }
  if (unique.length === 0) throw new SealError("no recipients: give at least one public key to seal to", "keys");
  if (unique.length > MAX_RECIPIENTS) throw new SealError(`too many recipients: at most ${MAX_RECIPIENTS}`, "keys");
  if (!globalThis.crypto?.subtle) {
    // hpke-js computes HKDF with Web Crypto, which browsers offer only in a secure context.
    throw new SealError("this browser offers no Web Crypto here (the page is not in a secure context), so it cannot seal", "keys");
  }
  const hpke = hpkeSuite();
  const stanzas = [];
  for (const [i, r] of unique.entries()) {
    let ctx;
    try {
      const recipientPublicKey = await hpke.kem.deserializePublicKey(r.publicKey);
      const params = { recipientPublicKey, info: HPKE_INFO };
      if (testing.ekm) params.ekm = testing.ekm[i];
      ctx = await hpke.createSenderContext(params);
    } catch {
      throw new SealError(`invalid recipient ${r.keyId}: the key is a low-order point`, "keys");
    }
    stanzas.push({ keyId: hexToBytes(r.keyId), enc: new Uint8Array(ctx.enc), ctx });
  }
  const used = new Set();
  let sealed = 0;
  return {
    keyIds: unique.map((r) => r.keyId),
    /** Seals `plaintext` (Uint8Array) bound to `b`; returns the `gs1:` text. */
    async seal(plaintext, b) {
      const encodedBinding = encodeBinding(b);
      const id = bindingId(b);
      if (used.has(id)) {
        throw new SealError(
          "this sealer has already sealed a value for this binding; seal each item of an object once",
          "items",
        );
      }
      const dataKey = testing.dataKeys ? Uint8Array.from(testing.dataKeys[sealed]) : crypto.getRandomValues(new Uint8Array(32));
      const exportContext = concat(EXPORT_LABEL, encodedBinding);
      const parts = [encodedBinding, Uint8Array.of(stanzas.length)];
      for (const s of stanzas) {
        const mask = new Uint8Array(await s.ctx.export(exportContext, 32));
        parts.push(s.keyId, s.enc, xor32(dataKey, mask));
        mask.fill(0);
      }
      const header = concat(...parts);
      const valueKey = expand(sha256, dataKey, VALUE_KEY_INFO, 32);
      const ciphertext = chacha20poly1305(valueKey, new Uint8Array(12), header).encrypt(plaintext);
      valueKey.fill(0);
      dataKey.fill(0);
      used.add(id);
      sealed += 1;
      return PREFIX + base64.encode(concat(header, ciphertext));
    },
  };
}

/** Bytes of a lowercase hex string. */
export function hexToBytes(hex) {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) throw new Error("not lowercase hex");
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/**
 * Reads a `gs1:` value's clear parts: `{ binding, keyIds, plaintextLength }`.
 * Strict as docs/envelope.md says (unknown scope, empty or truncated fields,
 * 0 or more than 64 recipients, a repeated key id, a body shorter than its
 * tag are refused); it does not open anything.
 */
export function parseEnvelope(text) {
  const t = text.trim();
  if (!t.startsWith(PREFIX)) {
    const version = /^gs(\d+):/.exec(t);
    if (version) throw new SealError(`sealed value has version "gs${version[1]}", which this page does not understand (it reads gs1)`);
    throw new SealError("not a sealed value: expected text starting with gs1:");
  }
  let body;
  try {
    body = base64.decode(t.slice(PREFIX.length));
  } catch {
    throw new SealError("malformed sealed value: the text after gs1: is not valid base64");
  }
  let at = 0;
  const malformed = (what) => new SealError(`malformed sealed value: ${what}`);
  const take = (n, what) => {
    if (body.length - at < n) throw malformed(what);
    at += n;
    return body.subarray(at - n, at);
  };
  const str = (what) => {
    const len = take(1, what)[0];
    if (len === 0) throw malformed("empty binding field");
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(take(len, "truncated binding field"));
    } catch (e) {
      if (e instanceof SealError) throw e;
      throw malformed("binding field is not UTF-8");
    }
  };
  const scope = SCOPES[take(1, "empty")[0]];
  if (scope === undefined) throw malformed("unknown scope byte");
  const namespace = scope !== "cluster" ? str("truncated before the namespace") : undefined;
  const name = scope === "strict" ? str("truncated before the name") : undefined;
  const key = str("truncated before the item key");
  const count = take(1, "truncated before the recipient count")[0];
  if (count === 0) throw malformed("no recipients");
  if (count > MAX_RECIPIENTS) throw malformed("more than 64 recipients");
  const keyIds = [];
  for (let i = 0; i < count; i++) {
    const id = toHex(take(STANZA_LEN, "truncated recipient stanza").subarray(0, KEY_ID_LEN));
    if (keyIds.includes(id)) throw malformed("the same key id appears twice");
    keyIds.push(id);
  }
  if (body.length - at < TAG_LEN) throw malformed("ciphertext shorter than its tag");
  return { binding: { scope, namespace, name, key }, keyIds, plaintextLength: body.length - at - TAG_LEN };
}
