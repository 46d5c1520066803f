// Public keys for the sealing page: age X25519 recipients (`age1…`), the
// controller's published key list (`GET /v1/keys`, the same JSON
// `gitseal fetch-key` reads) and keyring files (`.gitseal/keys.yaml`).
// The checks follow the CLI's: a published key whose key id does not match
// its recipient makes the whole list refused (corrupt or tampered with),
// exactly one published key must be marked active, a keyring must be
// version 1 with recipients in every environment.

import { bech32 } from "@scure/base";
import { parse as parseYaml } from "yaml";
import { keyIdOf, MAX_RECIPIENTS } from "./envelope.js";

/** A bad key, with a message that says what to do. Never holds private key text. */
export class KeyError extends Error {
  constructor(message) {
    super(message);
    this.name = "KeyError";
  }
}

// Quotes a bad recipient in a message only when it looks like one (age1…):
// anything else pasted into the keys field may be a secret, never repeated.
function quote(s) {
  if (!/^age1[0-9a-z]*$/i.test(s)) return "the text";
  return JSON.stringify(s.length > 24 ? `${s.slice(0, 20)}…` : s);
}

function short(s) {
  return s.length > 24 ? `${s.slice(0, 20)}…` : s;
}

/**
 * Parses one age X25519 recipient. Returns `{ text, publicKey, keyId }`
 * with `text` in the canonical lowercase form.
 */
export function parseRecipient(input) {
  const s = input.trim();
  if (s.toUpperCase().startsWith("AGE-SECRET-KEY-")) {
    // Never echo it: this is a private key pasted by mistake.
    throw new KeyError(
      "this is a private key (AGE-SECRET-KEY-1…), not a public one: do not paste private keys anywhere; " +
        "paste its recipient (age1…), e.g. from `gitseal pubkey -i FILE`",
    );
  }
  let decoded;
  try {
    decoded = bech32.decode(s, 90);
  } catch {
    throw new KeyError(`${quote(s)} is not an age recipient (expected age1… in Bech32, 62 characters)`);
  }
  if (decoded.prefix.toLowerCase() !== "age") {
    throw new KeyError(`${quote(s)} is not an age X25519 recipient (its prefix is not age1)`);
  }
  const publicKey = Uint8Array.from(bech32.fromWords(decoded.words));
  if (publicKey.length !== 32) {
    throw new KeyError(`${quote(s)} is not an age X25519 recipient (wrong key length)`);
  }
  return { text: bech32.encode("age", bech32.toWords(publicKey), 90), publicKey, keyId: keyIdOf(publicKey) };
}

/**
 * Checks a published key list (`GET /v1/keys`): a non-empty JSON array of
 * `{ recipient, keyId, active, created }`. Returns `{ keys, active }`.
 * Any key whose key id does not match its recipient refuses the list.
 */
export function parseKeysJson(text, origin) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KeyError(`${origin}: the published keys are not valid JSON`);
  }
  if (!Array.isArray(value)) throw new KeyError(`${origin}: the published keys are not a JSON array of keys`);
  if (value.length === 0) throw new KeyError(`${origin}: no keys are published (has the controller started?)`);
  const keys = value.map((item, i) => {
    const n = i + 1;
    if (typeof item?.recipient !== "string") throw new KeyError(`${origin}: key #${n} has no "recipient" string`);
    let r;
    try {
      r = parseRecipient(item.recipient);
    } catch (e) {
      throw new KeyError(`${origin}: key #${n}: ${e.message}`);
    }
    if (typeof item.keyId !== "string") throw new KeyError(`${origin}: key #${n} has no "keyId" string`);
    if (item.keyId !== r.keyId) {
      throw new KeyError(
        `${origin}: key #${n} (${r.text}) is published with key id ${JSON.stringify(short(item.keyId))}, ` +
          `but its key id is ${r.keyId}; the list is corrupt or tampered with, refusing it`,
      );
    }
    return { ...r, active: item.active === true, created: typeof item.created === "string" ? item.created : undefined };
  });
  const active = keys.filter((k) => k.active);
  if (active.length === 0) throw new KeyError(`${origin}: no published key is marked active`);
  if (active.length > 1) throw new KeyError(`${origin}: ${active.length} published keys are marked active; expected one`);
  return { keys, active: active[0] };
}

/**
 * The key ids of the keyring's top-level `retired:` list, whose entries are
 * a recipient or key id, or a mapping with `recipient` or `keyId` (and a
 * `note`), as in keys.example.
 */
function retiredKeyIds(list, origin) {
  const ids = new Set();
  if (list === undefined || list === null) return ids;
  if (!Array.isArray(list)) throw new KeyError(`${origin}: "retired" is not a list`);
  for (const [i, entry] of list.entries()) {
    const text = typeof entry === "string" ? entry : (entry?.keyId ?? entry?.recipient);
    if (typeof text !== "string") throw new KeyError(`${origin}: retired key #${i + 1} names no "keyId" or "recipient"`);
    const t = text.trim();
    if (/^[0-9a-fA-F]{16}$/.test(t)) {
      ids.add(t.toLowerCase());
      continue;
    }
    try {
      ids.add(parseRecipient(t).keyId);
    } catch (e) {
      throw new KeyError(`${origin}: retired key #${i + 1}: ${e.message}`);
    }
  }
  return ids;
}

/** Parses a keyring file (version 1). Returns `{ environments: Map(name → { recipients, scope }), defaultEnvironment }`. */
export function parseKeyring(text, origin) {
  let value;
  try {
    value = parseYaml(text);
  } catch (e) {
    throw new KeyError(`${origin}: not valid YAML (${e.message.split("\n")[0]})`);
  }
  if (value?.version !== 1) {
    throw new KeyError(`${origin}: keyring version ${JSON.stringify(value?.version ?? null)} is not supported; this page reads version 1`);
  }
  const envs = value.environments;
  if (envs === null || typeof envs !== "object" || Array.isArray(envs) || Object.keys(envs).length === 0) {
    throw new KeyError(`${origin}: the keyring has no environments`);
  }
  const retired = retiredKeyIds(value.retired, origin);
  const environments = new Map();
  for (const [name, env] of Object.entries(envs)) {
    const list = env?.recipients;
    if (!Array.isArray(list) || list.length === 0) throw new KeyError(`${origin}: environment ${JSON.stringify(name)} has no recipients`);
    const recipients = list.map((entry, i) => {
      const where = `${origin}: environment ${JSON.stringify(name)}, recipient #${i + 1}`;
      // `age1…`, or `{ recipient: age1…, controller/required/note }`.
      const r = typeof entry === "string" ? entry : entry?.recipient;
      if (typeof r !== "string") throw new KeyError(`${where} is neither a recipient nor a mapping with a "recipient" string`);
      let parsed;
      try {
        parsed = parseRecipient(r);
      } catch (e) {
        throw new KeyError(`${where}: ${e.message}`);
      }
      if (retired.has(parsed.keyId)) {
        throw new KeyError(`${where} has key id ${parsed.keyId}, which the keyring marks retired; nothing is sealed to a retired key`);
      }
      return parsed;
    });
    const scope = env.scope ?? undefined;
    if (scope !== undefined && !["strict", "namespace", "cluster"].includes(scope)) {
      throw new KeyError(`${origin}: environment ${JSON.stringify(name)} has scope ${JSON.stringify(scope)}; expected strict, namespace or cluster`);
    }
    environments.set(name, { recipients, scope });
  }
  const def = value.defaultEnvironment;
  if (def !== undefined && def !== null && !environments.has(def)) {
    throw new KeyError(`${origin}: defaultEnvironment ${JSON.stringify(def)} is not one of the environments`);
  }
  return { environments, defaultEnvironment: def ?? (environments.size === 1 ? [...environments.keys()][0] : undefined) };
}

/**
 * Reads pasted key text, whatever it is: a published key list (JSON
 * array), a keyring (YAML with `environments:`), or age recipients, one
 * per line (`#` comments and blank lines ignored). Returns
 * `{ kind: "list" | "keyring" | "recipients", ... }`.
 */
export function parsePastedKeys(text, origin = "pasted keys") {
  const t = text.trim();
  if (t === "") return { kind: "none" };
  if (t.startsWith("[")) {
    const { keys, active } = parseKeysJson(t, origin);
    return { kind: "list", keys, recipients: [active] };
  }
  if (/^\s*(version|environments)\s*:/m.test(t)) {
    return { kind: "keyring", ...parseKeyring(t, origin) };
  }
  const recipients = [];
  for (const [i, raw] of t.split("\n").entries()) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    for (const word of line.split(/[\s,]+/)) {
      try {
        recipients.push(parseRecipient(word));
      } catch (e) {
        throw new KeyError(`${origin}, line ${i + 1}: ${e.message}`);
      }
    }
  }
  if (recipients.length > MAX_RECIPIENTS) throw new KeyError(`${origin}: too many recipients: at most ${MAX_RECIPIENTS}`);
  return { kind: "recipients", recipients };
}
