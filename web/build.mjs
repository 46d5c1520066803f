// Builds the sealing page: web/src → web/dist/index.html, one self-contained
// file (HTML with the stylesheet and the esbuild bundle of src/main.js
// inline), and web/dist/csp.txt, the Content-Security-Policy the controller
// sends with it. Inline code runs only because the policy names its SHA-256
// hash; the same policy is in the page's <meta> tag, so it applies when the
// file is opened from disk too (minus frame-ancestors, which only a header
// can set).
//
// Reproducible: pinned versions (package-lock.json), no timestamps, no
// paths, no source maps. `node build.mjs --check` builds in memory and fails
// when web/dist differs from what the sources give (CI runs it).

import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const src = (f) => join(here, "src", f);
const dist = (f) => join(here, "dist", f);

const sha256 = (text) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

async function build() {
  const js = await esbuild.build({
    entryPoints: [src("main.js")],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    legalComments: "eof",
    charset: "utf8",
    write: false,
    // @hpke/common falls back to `import("crypto")` on Node 18 and older;
    // browsers never reach it.
    external: ["crypto"],
    logLevel: "warning",
  });
  const script = js.outputFiles[0].text.trimEnd();
  const css = await esbuild.transform(readFileSync(src("style.css"), "utf8"), { loader: "css", minify: true, charset: "utf8" });
  const style = css.code.trimEnd();
  for (const [what, text] of [["script", script], ["style", style]]) {
    // Inside a <script>/<style> element these would end it early or change
    // how the HTML parser reads it.
    if (/<\/(script|style)|<!--|<script/i.test(text)) throw new Error(`the ${what} contains an HTML end-tag or comment sequence`);
    if (text.includes("@SCRIPT@") || text.includes("@STYLE@") || text.includes("@CSP@")) throw new Error(`the ${what} contains a template marker`);
  }
  const policy = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    "img-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join("; ");
  const template = readFileSync(src("index.html"), "utf8");
  const parts = template.split(/(@CSP@|@STYLE@|@SCRIPT@)/);
  const fill = { "@CSP@": policy, "@STYLE@": style, "@SCRIPT@": script };
  const html = parts.map((p) => fill[p] ?? p).join("");
  const header = `${policy}; frame-ancestors 'none'\n`;
  return { html, header };
}

const { html, header } = await build();
const outputs = [
  ["index.html", html],
  ["csp.txt", header],
];
if (process.argv.includes("--check")) {
  const stale = outputs.filter(([f, text]) => {
    try {
      return readFileSync(dist(f), "utf8") !== text;
    } catch {
      return true;
    }
  });
  if (stale.length > 0) {
    console.error(
      `web/dist is not what web/src builds to (${stale.map(([f]) => f).join(", ")} differ); ` +
        "run `npm ci && npm run build` in web/ and commit web/dist",
    );
    process.exit(1);
  }
  console.log(`web/dist is current (index.html ${html.length} bytes)`);
} else {
  mkdirSync(dist(""), { recursive: true });
  for (const [f, text] of outputs) writeFileSync(dist(f), text);
  console.log(`wrote web/dist/index.html (${html.length} bytes) and web/dist/csp.txt`);
}
