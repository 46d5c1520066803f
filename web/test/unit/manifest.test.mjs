// SealedSecret text on the page: YAML scalars every reader takes for the
// same string, the new-object layout, and merging into a pasted file
// without touching anything but the new items.

import assert from "node:assert/strict";
import { test } from "node:test";
import YAML from "yaml";
import { itemKeyProblem, namespaceProblem, nameProblem, secretTypeProblem } from "../../src/names.js";
import { ManifestError, mergeInto, readSealedSecret, renderSealedSecret, scalar } from "../../src/manifest.js";
import { createSealer, binding } from "../../src/envelope.js";
import { keyPair } from "../gen-vectors.mjs";

test("scalars: YAML 1.1 (kubectl) and 1.2 (serde_yaml) both read back the same string", () => {
  const words = ["password", "on", "Off", "yes", "Y", "n", "NO", "true", "False", "null", "~", "1", "0x1F", "0o7", "1e3", ".5", ".inf", "-", "_x", "a.b", "tls.key", "12:30", "it's", "kubernetes.io/tls", "gs1:AQID+/=="];
  for (const w of words) {
    for (const version of ["1.1", "1.2"]) {
      const doc = YAML.parse(`${scalar(w)}: ${scalar(w)}\n`, { version });
      assert.deepEqual(Object.entries(doc), [[w, w]], `${w} under YAML ${version}`);
    }
  }
  assert.equal(scalar("password"), "password");
  assert.equal(scalar("on"), "'on'");
});

test("a new SealedSecret is laid out as gitseal seal writes it", () => {
  const text = renderSealedSecret({
    name: "db",
    namespace: "prod",
    scope: "namespace",
    type: "kubernetes.io/tls",
    encryptedData: new Map([
      ["tls.key", "gs1:B"],
      ["on", "gs1:A"],
    ]),
  });
  assert.equal(
    text,
    "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\n  namespace: prod\nspec:\n  scope: namespace\n" +
      "  encryptedData:\n    'on': gs1:A\n    tls.key: gs1:B\n  template:\n    type: kubernetes.io/tls\n",
  );
  const strict = renderSealedSecret({ name: "db", scope: "cluster", encryptedData: new Map([["a", "gs1:A"]]) });
  assert.ok(!strict.includes("namespace:") && strict.includes("scope: cluster"));
});

async function sealed(key, ns = "prod", name = "db", scope = "strict") {
  const { recipient } = await keyPair("a");
  return (await createSealer([recipient])).seal(new TextEncoder().encode(key), binding(scope, ns, name, key));
}

async function fixture() {
  return [
    "# Team database credentials. Sealed: safe to commit.",
    "apiVersion: gitseal.dev/v1alpha1",
    "kind: SealedSecret",
    "metadata:",
    "  name: db",
    "  namespace: prod",
    "spec:",
    "  encryptedData:",
    "    # the app's login",
    `    password: ${await sealed("password")}`,
    `    username: '${await sealed("username")}'   # quoted on purpose`,
    "  template:",
    "    type: Opaque",
    "",
  ].join("\n");
}

test("reading a pasted SealedSecret: place, scope, items and their key ids", async () => {
  const t = readSealedSecret(await fixture());
  assert.equal(t.name, "db");
  assert.equal(t.namespace, "prod");
  assert.equal(t.scope, "strict");
  assert.equal(t.type, "Opaque");
  assert.deepEqual(t.items.map((i) => [i.key, i.plaintextLength]), [["password", 8], ["username", 8]]);
  assert.match(t.items[0].keyIds[0], /^[0-9a-f]{16}$/);
});

test("reading a pasted SealedSecret: what cannot be merged into is refused, saying why", async () => {
  const f = await fixture();
  const bad = [
    ["kind: Secret\n", /holds no SealedSecret/],
    [`${f}---\n${f}`, /holds 2 SealedSecrets \(prod\/db, prod\/db\)/],
    [f.replace("gitseal.dev/v1alpha1", "bitnami.com/v1alpha1"), /apiVersion "bitnami.com\/v1alpha1"/],
    [f.replace("  name: db\n", ""), /no metadata.name/],
    [f.replace("spec:\n", "spec:\n  scope: wide\n"), /spec.scope "wide"/],
    [f.replace(/password: gs1:\S+/, "password: hunter2"), /item "password" of the pasted SealedSecret: not a sealed value/],
    [f.replace("  encryptedData:", "  encryptedData: 7\n  x:"), /spec.encryptedData is not a mapping/],
    [`${f}  extra: [\n`, /not valid YAML/],
    [f.replace("    username:", "    password:"), /not valid YAML/],
  ];
  for (const [text, message] of bad) assert.throws(() => readSealedSecret(text), message);
});

/** Lines of `after` minus lines of `before`, and the reverse. */
function lineDiff(before, after) {
  const b = before.split("\n");
  const a = after.split("\n");
  return { added: a.filter((l) => !b.includes(l)), removed: b.filter((l) => !a.includes(l)) };
}

test("merge: an added item gets one new line in sorted place; nothing else changes", async () => {
  const f = await fixture();
  const token = await sealed("token");
  const aaa = await sealed("aaa");
  const { text, changes } = mergeInto(f, new Map([["token", token], ["aaa", aaa]]));
  assert.deepEqual(lineDiff(f, text), { added: [`    aaa: ${aaa}`, `    token: ${token}`], removed: [] });
  const lines = text.split("\n");
  // aaa above the comment that belongs to password; token between password and username.
  assert.equal(lines[8], `    aaa: ${aaa}`);
  assert.equal(lines[9], "    # the app's login");
  assert.ok(lines[10].startsWith("    password: "));
  assert.equal(lines[11], `    token: ${token}`);
  assert.ok(lines[12].startsWith("    username: '"));
  // Not sorted: appended after the last item.
  const unsorted = f.replace("    password:", "    zz:").replace("# the app's login", "# zz");
  const appended = mergeInto(unsorted, new Map([["token", token]])).text.split("\n");
  assert.equal(appended[11], `    token: ${token}`);
  assert.deepEqual(changes, ['added item "token" to prod/db', 'added item "aaa" to prod/db']);
});

test("merge: a replaced item changes on its own line only, comments and quoting elsewhere kept", async () => {
  const f = await fixture();
  const again = await sealed("password");
  const { text, changes } = mergeInto(f, new Map([["password", again]]));
  const { added, removed } = lineDiff(f, text);
  assert.deepEqual(added, [`    password: ${again}`]);
  assert.equal(removed.length, 1);
  assert.ok(removed[0].startsWith("    password: gs1:"));
  assert.deepEqual(changes, ['replaced item "password" in prod/db']);
});

test("merge: other documents keep their exact text", async () => {
  const f = await fixture();
  const other = "# a neighbour\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}   # flow style, kept\n";
  const input = `${other}---\n${f}---\n${other}`;
  const { text } = mergeInto(input, new Map([["zzz", await sealed("zzz")]]));
  assert.ok(text.startsWith(`${other}---\n`));
  assert.ok(text.endsWith(`---\n${other}`));
});

test("merge: flow style or no encryptedData is rewritten through the YAML library, still checked", async () => {
  const token = await sealed("token");
  const flow = "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {name: db, namespace: prod}\nspec:\n  encryptedData: {b: gs1:B}\n";
  const out = mergeInto(flow, new Map([["token", token]])).text;
  assert.deepEqual(YAML.parse(out).spec.encryptedData, { b: "gs1:B", token });
  assert.match(out, /\n {4}b: gs1:B\n/);
  const vaultOnly = "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\n  namespace: prod\nspec:\n  vaultData:\n    x: {mount: kv, path: prod/db, field: x}\n";
  const merged = YAML.parse(mergeInto(vaultOnly, new Map([["token", token]])).text);
  assert.deepEqual(merged.spec.encryptedData, { token });
  assert.deepEqual(merged.spec.vaultData, { x: { mount: "kv", path: "prod/db", field: "x" } });
});

test("merge: an item that is a Vault reference is refused", async () => {
  const f = (await fixture()).replace("  template:", "  vaultData:\n    api: {mount: kv, path: prod/api, field: token}\n  template:");
  assert.deepEqual(readSealedSecret(f).vaultKeys, ["api"]);
  assert.throws(() => mergeInto(f, new Map([["api", "gs1:X"]])), (e) => e instanceof ManifestError && /item "api" is a Vault reference/.test(e.message));
});

test("merge: a result that would change an untouched item is refused, not shown", async () => {
  // username is an alias of password's value: replacing password would change it too.
  const f = (await fixture()).replace("    password: gs1:", "    password: &shared gs1:").replace(/ {4}username: .*/, "    username: *shared");
  assert.equal(readSealedSecret(f).items.length, 2);
  assert.throws(
    () => mergeInto(f, new Map([["password", "gs1:NEW"]])),
    (e) => e instanceof ManifestError && /cannot add the items without changing other parts of the pasted text \(document 1 would differ\)/.test(e.message),
  );
});

test("names: Kubernetes' rules", () => {
  for (const ok of ["prod", "a", "team-1", "x".repeat(63)]) assert.equal(namespaceProblem(ok), null, ok);
  for (const bad of ["", "Prod", "team_1", "-a", "a-", "a.b", "x".repeat(64), "ü"]) assert.notEqual(namespaceProblem(bad), null, bad);
  for (const ok of ["db", "db.prod", "a-1.b-2", "x".repeat(253)]) assert.equal(nameProblem(ok), null, ok);
  for (const bad of ["", "DB", "db_1", ".db", "db.", "a..b", "x".repeat(254)]) assert.notEqual(nameProblem(bad), null, bad);
  for (const ok of ["password", "tls.crt", ".hidden", "A_B-c.1", "x".repeat(253)]) assert.equal(itemKeyProblem(ok), null, ok);
  for (const bad of ["", "a b", "a/b", ".", "..", "..x", "é", "x".repeat(254)]) assert.notEqual(itemKeyProblem(bad), null, bad);
  assert.equal(secretTypeProblem(""), null);
  assert.equal(secretTypeProblem("kubernetes.io/tls"), null);
  assert.notEqual(secretTypeProblem("my type"), null);
});
