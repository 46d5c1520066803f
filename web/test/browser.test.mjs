// The sealing page in a real headless Chromium (Debian's `chromium`,
// driven over the DevTools protocol by puppeteer-core), as a user would use
// it: served by the real controller binary (crates/gitseal-controller,
// test `web_page`, starts it against the test API and runs this file) and
// opened from disk. What the page seals is opened by the real `gitseal
// unseal`; every request the browser makes is logged and searched for the
// plaintext.
//
// Environment (set by the Rust test): GITSEAL_PAGE_URL, GITSEAL_PAGE_FILE,
// GITSEAL_BIN, GITSEAL_IDENTITY, GITSEAL_OUT, CHROMIUM, and optionally
// GITSEAL_SCREENSHOT (where to write the screenshot for the docs).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import puppeteer from "puppeteer-core";
import YAML from "yaml";

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: this test is run by the controller's web_page test (cargo test -p gitseal-controller --test it web_page)`);
  return v;
}

const URL_ = env("GITSEAL_PAGE_URL");
const ORIGIN = new URL(URL_).origin;
const PORT = new URL(URL_).port;
const INSECURE_URL = `http://gitseal.test:${PORT}/`;
const FILE_URL = pathToFileURL(env("GITSEAL_PAGE_FILE")).href;
const BIN = env("GITSEAL_BIN");
const IDENTITY = env("GITSEAL_IDENTITY");
const OUT = env("GITSEAL_OUT");
const SCREENSHOT = process.env.GITSEAL_SCREENSHOT || join(OUT, "sealing-page.png");
const CSP = readFileSync(new URL("../dist/csp.txt", import.meta.url), "utf8").trim();

const gitseal = (args, input) => execFileSync(BIN, args, { input, stdio: ["pipe", "pipe", "pipe"] }).toString();
const recipientOf = (identityFile) => gitseal(["pubkey", "--key-id", "-i", identityFile]).trim().split(" ");
const [RECIPIENT, KEY_ID] = recipientOf(IDENTITY);

/** A new identity file in OUT (by `gitseal keygen`): `[path, recipient, keyId]`. */
function newKey(name) {
  const path = join(OUT, name);
  rmSync(path, { force: true });
  gitseal(["keygen", "-o", path]);
  return [path, ...recipientOf(path)];
}

/** Opens `yaml` with `gitseal unseal`: item key → bytes. */
function unseal(identity, yaml, extra = []) {
  const secret = YAML.parse(gitseal(["unseal", "-i", identity, "-f", "-", ...extra], yaml));
  assert.equal(secret.kind, "Secret");
  return new Map(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, "base64")]));
}

// Every plaintext typed or uploaded, to search the network log for.
const tag = randomBytes(4).toString("hex");
const plaintexts = [];
const secretText = (label) => {
  const s = `pässwörd ✓ 🔑 ${label} ${tag}`;
  plaintexts.push(Buffer.from(s));
  return s;
};
const secretWord = (s) => {
  plaintexts.push(Buffer.from(s));
  return s;
};
const secretFile = (name, size = 4096) => {
  const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(size - 256)]);
  plaintexts.push(bytes);
  const path = join(OUT, name);
  writeFileSync(path, bytes);
  return { path, bytes };
};

let browser;
const requests = [];
const problems = [];

async function openPage(label) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 900 });
  const cdp = await page.createCDPSession();
  await cdp.send("Network.enable", { maxPostDataSize: 1 << 24 });
  cdp.on("Network.requestWillBeSent", (e) =>
    requests.push({ label, url: e.request.url, method: e.request.method, headers: e.request.headers, postData: e.request.postData ?? "", hasPostData: Boolean(e.request.hasPostData) }),
  );
  cdp.on("Network.webSocketCreated", (e) => requests.push({ label, url: e.url, method: "WEBSOCKET", headers: {}, postData: "" }));
  page.on("console", (m) => {
    if (["error", "warn", "warning"].includes(m.type())) problems.push(`${label}: console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${label}: page error: ${e.message}`));
  return page;
}

/** Sets a long field's value as a paste would (an input event). */
async function paste(page, selector, text) {
  await page.$eval(
    selector,
    (el, t) => {
      el.value = t;
      el.dispatchEvent(new Event("input", { bubbles: true }));
    },
    text,
  );
}

async function typeInto(page, selector, text) {
  await page.click(selector, { clickCount: 3 });
  await page.keyboard.press("Backspace");
  await page.type(selector, text);
}

const visible = (page, selector) => page.$eval(selector, (el) => !el.hidden && el.offsetParent !== null);
const text = (page, selector) => page.$eval(selector, (el) => el.textContent);

/** Fills item `i` (0-based; adds rows as needed) with a text or a file. */
async function fillItem(page, i, item) {
  let rows = await page.$$("#items > li");
  while (rows.length <= i) {
    await page.click("#add-item");
    rows = await page.$$("#items > li");
  }
  const row = `#items > li:nth-child(${i + 1})`;
  await typeInto(page, `${row} input[id$="-key"]`, item.key);
  if (item.file) {
    await page.click(`${row} input[id$="-source-file"]`);
    const input = await page.$(`${row} input[type=file]`);
    await input.uploadFile(item.file);
    await page.waitForFunction((r) => /read\.|at most 1 MiB/.test(document.querySelector(`${r} p[id$="-file-info"]`).textContent + document.querySelector(`${r} p[id$="-value-error"]`).textContent), {}, row);
  } else if (item.paste) {
    await paste(page, `${row} textarea`, item.text);
  } else {
    await typeInto(page, `${row} textarea`, item.text);
  }
}

async function fill(page, f) {
  if (f.keys !== undefined) await paste(page, "#pasted-keys", f.keys);
  if (f.existing !== undefined) await paste(page, "#existing", f.existing);
  if (f.namespace !== undefined) await typeInto(page, "#namespace", f.namespace);
  if (f.name !== undefined) await typeInto(page, "#name", f.name);
  if (f.scope) await page.click(`#scope-${f.scope}`);
  for (const [i, item] of (f.items ?? []).entries()) await fillItem(page, i, item);
}

/** Clicks Seal and returns the output, failing with the page's own error list if any. */
async function seal(page) {
  await page.click("#seal");
  await page.waitForFunction(() => !document.getElementById("result").hidden || !document.getElementById("summary").hidden);
  if (!(await visible(page, "#result"))) assert.fail(`the page refused: ${await text(page, "#summary-list")}`);
  return page.$eval("#output", (el) => el.value);
}

/** Clicks Seal expecting a refusal; returns the summary's messages. */
async function refused(page) {
  await page.click("#seal");
  await page.waitForFunction(() => !document.getElementById("summary").hidden || !document.getElementById("result").hidden);
  assert.equal(await visible(page, "#result"), false, "nothing is sealed");
  assert.equal(await page.evaluate(() => document.activeElement.id), "summary", "focus moves to the error summary");
  return page.$$eval("#summary-list li", (lis) => lis.map((li) => li.textContent));
}

async function waitForControllerKey(page) {
  await page.waitForFunction(() => !document.getElementById("controller-choice").hidden || document.getElementById("controller-status").classList.contains("problem"));
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await puppeteer.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    userDataDir: mkdtempSync(join(tmpdir(), "gitseal-chromium-")),
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // A name for the controller that is not this machine's loopback, to
      // see the page refuse to seal outside a secure context.
      "--host-resolver-rules=MAP gitseal.test 127.0.0.1",
    ],
  });
});

after(async () => {
  await browser?.close();
});

describe("the sealing page in Chromium", () => {
  test("served by the controller: its policy, its key list, no cookie", async () => {
    const page = await openPage("served");
    const resp = await page.goto(URL_);
    assert.equal(resp.status(), 200);
    const h = resp.headers();
    assert.equal(h["content-security-policy"], CSP);
    assert.match(h["content-security-policy"], /default-src 'none'.*connect-src 'self'/);
    assert.equal(h["content-type"], "text/html; charset=utf-8");
    assert.equal(h["x-content-type-options"], "nosniff");
    assert.equal(h["x-frame-options"], "DENY");
    assert.equal(h["referrer-policy"], "no-referrer");
    assert.equal(h["set-cookie"], undefined);
    await waitForControllerKey(page);
    assert.equal(await text(page, "#controller-key-id"), KEY_ID);
    assert.match(await text(page, "#recipients-summary"), new RegExp(`Sealing to 1 key: ${KEY_ID} \\(this controller's active key\\)`));
    assert.equal(await page.evaluate(() => document.cookie), "");
    await page.close();
  });

  test("strict scope: non-ASCII text and a binary file open byte for byte with gitseal unseal, and in the controller", async () => {
    const page = await openPage("strict");
    await page.goto(URL_);
    await waitForControllerKey(page);
    const password = secretText("strict");
    const file = secretFile("strict.bin");
    await fill(page, { namespace: "team-a", name: "db", items: [{ key: "password", text: password }, { key: "blob.bin", file: file.path }] });
    const out = await seal(page);
    assert.ok(out.startsWith("apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\n  namespace: team-a\nspec:\n  encryptedData:\n"));
    assert.ok(!out.includes(tag), "no plaintext in the output");
    assert.equal(await text(page, "#result-keys"), `Sealed to key ids ${KEY_ID}. Commit the file; the controller turns it into a Secret.`);
    const opened = unseal(IDENTITY, out);
    assert.deepEqual([...opened.keys()].sort(), ["blob.bin", "password"]);
    assert.ok(opened.get("password").equals(Buffer.from(password)));
    assert.ok(opened.get("blob.bin").equals(file.bytes));
    // For the Rust side: the controller opens the same object.
    writeFileSync(join(OUT, "controller-strict.yaml"), out);
    writeFileSync(join(OUT, "controller-strict.expected.json"), JSON.stringify({ password: Buffer.from(password).toString("base64"), "blob.bin": file.bytes.toString("base64") }));
    assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length + document.cookie.length), 0, "nothing stored");
    await page.close();
  });

  test("namespace and cluster scope open with gitseal unseal, bound to what the scope covers", async () => {
    for (const scope of ["namespace", "cluster"]) {
      const page = await openPage(scope);
      await page.goto(URL_);
      await waitForControllerKey(page);
      const value = secretText(scope);
      await fill(page, { namespace: scope === "cluster" ? "" : "team-b", name: "api", scope, items: [{ key: "token", text: value }] });
      const out = await seal(page);
      assert.match(out, new RegExp(`\n  scope: ${scope}\n`));
      assert.equal(out.includes("namespace: team-b"), scope === "namespace");
      const extra = scope === "cluster" ? ["-n", "anywhere"] : [];
      assert.ok(unseal(IDENTITY, out, extra).get("token").equals(Buffer.from(value)));
      // Another name (and for cluster scope another namespace) opens too: that is what the scope means.
      const moved = out.replace("name: api", "name: other");
      assert.ok(unseal(IDENTITY, moved, extra).get("token").equals(Buffer.from(value)));
      // A different item key does not.
      assert.throws(() => unseal(IDENTITY, out.replace("    token:", "    moved:"), extra), /does not open/);
      await page.close();
    }
  });

  test("two recipients: each one's identity opens every value", async () => {
    const [second, recipient2, keyId2] = newKey("second.key");
    const page = await openPage("two-recipients");
    await page.goto(URL_);
    await waitForControllerKey(page);
    const value = secretText("two recipients");
    const file = secretFile("two.bin", 2000);
    await fill(page, { keys: `# the disaster-recovery cluster\n${recipient2}\n`, namespace: "team-c", name: "dr", items: [{ key: "password", text: value }, { key: "cert.der", file: file.path }] });
    assert.match(await text(page, "#recipients-summary"), new RegExp(`Sealing to 2 keys: ${KEY_ID} \\(this controller's active key\\), ${keyId2} \\(pasted\\)`));
    const out = await seal(page);
    assert.match(await text(page, "#result-keys"), new RegExp(`${KEY_ID}, ${keyId2}`));
    for (const identity of [IDENTITY, second]) {
      const opened = unseal(identity, out);
      assert.ok(opened.get("password").equals(Buffer.from(value)));
      assert.ok(opened.get("cert.der").equals(file.bytes));
    }
    await page.close();
  });

  test("merge: items are added and replaced; every other line of the pasted file stays byte for byte", async () => {
    const secret = [
      "apiVersion: v1",
      "kind: Secret",
      "metadata: {name: app, namespace: team-d}",
      "type: kubernetes.io/basic-auth",
      "stringData:",
      `  username: ${JSON.stringify(secretText("merge username"))}`,
      `  password: ${JSON.stringify(secretText("merge old password"))}`,
      `  zone: ${JSON.stringify(secretText("merge zone"))}`,
      "",
    ].join("\n");
    const sealed = gitseal(["seal", "-r", RECIPIENT, "-f", "-"], secret);
    const original = `# The app's credentials (committed sealed).\n${sealed.replace("  encryptedData:\n", "  encryptedData:\n    # rotate every 90 days\n")}`;
    const page = await openPage("merge");
    await page.goto(URL_);
    await waitForControllerKey(page);
    await paste(page, "#existing", original);
    assert.equal(await page.$eval("#name", (el) => [el.value, el.disabled].join()), "app,true");
    assert.equal(await page.$eval("#namespace", (el) => [el.value, el.disabled].join()), "team-d,true");
    assert.match(await text(page, "#existing-info"), /Adding to team-d\/app \(strict scope\)/);
    assert.match(await text(page, "#existing-info"), new RegExp(`password: \\d+ bytes, sealed to ${KEY_ID}`));
    const token = secretText("merge new token");
    const password = secretText("merge new password");
    await fill(page, { items: [{ key: "api-token", text: token }, { key: "password", text: password }] });
    const out = await seal(page);
    assert.deepEqual(await page.$$eval("#result-changes li", (lis) => lis.map((li) => li.textContent)), ['added item "api-token" to team-d/app', 'replaced item "password" in team-d/app']);
    const before = original.split("\n");
    const afterLines = out.split("\n");
    const kept = before.filter((l) => !l.startsWith("    password: "));
    assert.deepEqual(afterLines.filter((l) => !l.startsWith("    password: ") && !l.startsWith("    api-token: ")), kept, "all other lines unchanged, in order");
    assert.equal(afterLines.length, before.length + 1);
    const opened = unseal(IDENTITY, out);
    const was = unseal(IDENTITY, original);
    assert.ok(opened.get("api-token").equals(Buffer.from(token)));
    assert.ok(opened.get("password").equals(Buffer.from(password)));
    for (const k of ["username", "zone"]) assert.ok(opened.get(k).equals(was.get(k)), k);
    assert.match(out, /\n  template:\n    type: kubernetes.io\/basic-auth\n/);
    await page.close();
  });

  test("bad input is refused with an error at its field, and nothing is sealed", async () => {
    const page = await openPage("errors");
    await page.goto(URL_);
    await waitForControllerKey(page);
    await fill(page, { namespace: "Team_A", name: "DB!", items: [{ key: "my key", text: "x" }, { key: "dup", text: "y" }, { key: "dup", text: "z" }] });
    const messages = await refused(page);
    assert.deepEqual(messages, [
      "the name must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
      "the namespace must be lowercase letters, digits and '-', starting and ending with a letter or digit",
      "item 1: the item key may only hold letters, digits, '-', '_' and '.'",
      'item 3: the item key "dup" is already used by item 2',
    ]);
    const invalid = await page.$$eval("[aria-invalid=true]", (els) => els.map((e) => e.id));
    assert.deepEqual(invalid.sort(), ["name", "namespace", "row0-key", "row2-key"]);
    assert.equal(await text(page, "#namespace-error"), messages[1]);
    // A summary link takes the keyboard to the field.
    await page.click("#summary-list li:nth-child(2) a");
    assert.equal(await page.evaluate(() => document.activeElement.id), "namespace");

    // Fixed: the errors go, the value too large is caught.
    await fill(page, { namespace: "team-a", name: "db", items: [{ key: "a", text: "x" }, { key: "big", text: "x".repeat(1024 * 1024), paste: true }, { key: "c", text: "z" }] });
    assert.deepEqual(await refused(page), ["the values are too large: the Secret would hold 1,048,578 bytes, and Kubernetes refuses Secrets larger than 1 MiB (1,048,576 bytes)"]);
    assert.deepEqual(await page.$$eval("[aria-invalid=true]", (els) => els.map((e) => e.id)), ["row1-text"]);

    // A file over 1 MiB is refused before it is read.
    const huge = secretFile("huge.bin", 1536 * 1024);
    await fillItem(page, 1, { key: "big", file: huge.path });
    assert.equal(await text(page, "#row1-value-error"), "the file is 1.5 MiB; a Secret holds at most 1 MiB, so it cannot be sealed");
    assert.deepEqual(await refused(page), ["item 2: the file is 1.5 MiB; a Secret holds at most 1 MiB, so it cannot be sealed"]);

    // Keys: a bad recipient and a pasted private key are refused (the key never repeated); no key at all is an error.
    await page.click("#items > li:nth-child(2) button.remove");
    await page.click("#use-controller");
    await paste(page, "#pasted-keys", "age1notakey");
    assert.match(await text(page, "#keys-error"), /pasted keys, line 1: "age1notakey" is not an age recipient/);
    const privateKey = readFileSync(IDENTITY, "utf8").split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-1"));
    await paste(page, "#pasted-keys", privateKey);
    const keyError = await text(page, "#keys-error");
    assert.match(keyError, /this is a private key \(AGE-SECRET-KEY-1…\), not a public one/);
    assert.ok(!keyError.includes(privateKey.slice(16, 40)), "the private key is not repeated");
    assert.deepEqual(await refused(page), ["no public key to seal to: load the controller's key or paste one"]);
    // All fixed: it seals.
    await paste(page, "#pasted-keys", RECIPIENT);
    const out = await seal(page);
    assert.deepEqual([...unseal(IDENTITY, out).keys()], ["a", "c"]);
    assert.equal(await page.$$eval("[aria-invalid=true]", (els) => els.length), 0);
    await page.close();
  });

  test("a tampered key list from the server is refused; nothing is sealed to it", async () => {
    const [, evil, evilId] = newKey("attacker.key");
    const tampered = [
      // The attacker's key under the real key's id: the id check catches it.
      [{ recipient: evil, keyId: KEY_ID, active: true, created: "2026-01-01T00:00:00Z" }],
      // The real key demoted and the attacker's made active, ids intact but two active.
      [
        { recipient: RECIPIENT, keyId: KEY_ID, active: true, created: "2026-01-01T00:00:00Z" },
        { recipient: evil, keyId: evilId, active: true, created: "2026-01-02T00:00:00Z" },
      ],
    ];
    for (const [i, list] of tampered.entries()) {
      const page = await openPage(`tampered-${i}`);
      await page.setRequestInterception(true);
      page.on("request", (req) => {
        if (req.url() === `${URL_}v1/keys`) req.respond({ status: 200, contentType: "application/json", body: JSON.stringify(list) });
        else req.continue();
      });
      await page.goto(URL_);
      await waitForControllerKey(page);
      const status = await text(page, "#controller-status");
      assert.match(status, i === 0 ? /^Refused: .*is published with key id "[0-9a-f]{16}", but its key id is [0-9a-f]{16}; the list is corrupt or tampered with, refusing it/ : /^Refused: .*2 published keys are marked active; expected one/);
      assert.equal(await visible(page, "#controller-choice"), false);
      assert.equal(await text(page, "#recipients-summary"), "No key chosen yet.");
      await fill(page, { namespace: "team-a", name: "db", items: [{ key: "k", text: "v" }] });
      assert.deepEqual(await refused(page), ["no public key to seal to: load the controller's key or paste one"]);
      await page.close();
    }
  });

  test("opened from disk: no request at all, and it seals", async () => {
    const page = await openPage("disk");
    await page.goto(FILE_URL);
    assert.match(await text(page, "#controller-status"), /^Opened from disk/);
    const value = secretText("disk");
    await fill(page, { keys: RECIPIENT, namespace: "team-e", name: "db", items: [{ key: "password", text: value }] });
    const out = await seal(page);
    assert.ok(unseal(IDENTITY, out).get("password").equals(Buffer.from(value)));
    const fromDisk = requests.filter((r) => r.label === "disk");
    assert.deepEqual(fromDisk.map((r) => r.url), [FILE_URL]);
    await page.close();
  });

  test("plain HTTP from another host: the page says why and does not seal", async () => {
    const page = await openPage("insecure");
    await page.goto(INSECURE_URL);
    assert.equal(await page.evaluate(() => window.isSecureContext), false);
    assert.match(await text(page, "#context-problem"), /^Sealing is off: this page came over plain HTTP from another machine/);
    assert.equal(await page.$eval("#seal", (b) => b.disabled), true);
    await page.close();
  });

  test("keyboard only: fill, add an item, seal, copy", async () => {
    const page = await openPage("keyboard");
    await browser.defaultBrowserContext().overridePermissions(ORIGIN, ["clipboard-read", "clipboard-write", "clipboard-sanitized-write"]);
    await page.goto(URL_);
    await waitForControllerKey(page);
    const tabTo = async (id) => {
      for (let i = 0; i < 30; i++) {
        await page.keyboard.press("Tab");
        if ((await page.evaluate(() => document.activeElement.id)) === id) return;
      }
      assert.fail(`Tab never reached #${id}`);
    };
    const value = secretText("keyboard");
    await tabTo("namespace");
    await page.keyboard.type("team-k");
    await page.keyboard.press("Tab");
    await page.keyboard.type("kb");
    await tabTo("row0-key");
    await page.keyboard.type("password");
    await tabTo("row0-text");
    await page.keyboard.type(value);
    await tabTo("add-item");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement.id), "row1-key", "a new item takes the focus");
    await page.keyboard.type("user");
    await tabTo("row1-text");
    await page.keyboard.type("admin");
    await tabTo("seal");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => !document.getElementById("result").hidden);
    assert.equal(await page.evaluate(() => document.activeElement.id), "result-heading", "the result takes the focus");
    await tabTo("output");
    await tabTo("copy");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.getElementById("action-status").textContent !== "");
    assert.equal(await text(page, "#action-status"), "Copied.");
    const out = await page.$eval("#output", (el) => el.value);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), out);
    const opened = unseal(IDENTITY, out);
    assert.ok(opened.get("password").equals(Buffer.from(value)));
    assert.equal(opened.get("user").toString(), "admin");
    await page.close();
  });

  test("download: the file holds exactly the output", async () => {
    const page = await openPage("download");
    const downloads = join(OUT, "downloads");
    mkdirSync(downloads, { recursive: true });
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
    await page.goto(URL_);
    await waitForControllerKey(page);
    await fill(page, { namespace: "team-f", name: "dl", items: [{ key: "k", text: secretText("download") }] });
    const out = await seal(page);
    await page.click("#download");
    const file = join(downloads, "dl.yaml");
    for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(readFileSync(file, "utf8"), out);
    assert.equal(await text(page, "#action-status"), "Downloaded dl.yaml.");
    await page.close();
  });

  test("a screenshot for the docs", async () => {
    const page = await openPage("screenshot");
    await page.goto(URL_);
    await waitForControllerKey(page);
    await fill(page, {
      keys: `# disaster-recovery cluster\n${newKey("dr.key")[1]}\n`,
      namespace: "shop",
      name: "payments-db",
      items: [
        { key: "username", text: "payments" },
        { key: "password", text: secretWord("correct horse battery staple") },
      ],
    });
    await seal(page);
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = readFileSync(SCREENSHOT);
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from("PNG")]);
    assert.ok(png.readUInt32BE(16) === 1000, "1000 px wide");
    await page.close();
  });

  test("network log: only the page and its key list were fetched, and no request carries any plaintext", () => {
    assert.ok(requests.length >= 10, `the log is not empty (${requests.length} requests)`);
    const allowed = new Set([URL_, `${URL_}v1/keys`, INSECURE_URL, `${INSECURE_URL}v1/keys`, FILE_URL]);
    // Each plaintext as text, base64, base64url, hex and URL-encoded (a
    // 64-character prefix of each is plenty to recognise it).
    const forms = plaintexts.flatMap((p) => {
      const head = p.subarray(0, 48);
      return [head.toString("utf8"), head.toString("base64"), head.toString("base64url"), head.toString("hex"), encodeURIComponent(head.toString("utf8"))]
        .map((f) => f.slice(0, 64))
        .filter((f) => f.length >= 8);
    });
    for (const r of requests) {
      const ok = allowed.has(r.url) || r.url.startsWith(`blob:${ORIGIN}/`);
      assert.ok(ok, `${r.label}: unexpected request ${r.method} ${r.url}`);
      assert.equal(r.method, "GET", `${r.label}: ${r.method} ${r.url}`);
      assert.equal(r.hasPostData, false);
      const seen = `${r.url}\n${JSON.stringify(r.headers)}\n${r.postData}`;
      for (const form of forms) assert.ok(!seen.includes(form), `${r.label}: a plaintext in ${r.url}`);
      assert.ok(!seen.includes(tag), `${r.label}: the run's plaintext tag in ${r.url}`);
    }
    assert.deepEqual(problems.filter((p) => /Content.Security.Policy|Refused to|page error/i.test(p)), [], "no policy violation, no script error");
    writeFileSync(join(OUT, "plaintexts.json"), JSON.stringify(plaintexts.map((p) => p.toString("base64"))));
  });
});
