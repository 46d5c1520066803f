// Seals with the page's sealer (src/envelope.js) for the JS-vs-Rust cross
// test (crates/gitseal-controller/tests/it/web_page.rs): reads
// `{ recipients: [age1…], objects: [[{ scope, namespace, name, key,
// plaintext (base64) }, …], …] }` on standard input, seals each object's
// items with one sealer, and prints `[[gs1…, …], …]` in the same shape.

import { binding, createSealer } from "../src/envelope.js";
import { parseRecipient } from "../src/keys.js";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { recipients, objects } = JSON.parse(input);
const keys = recipients.map(parseRecipient);
const out = [];
for (const items of objects) {
  const sealer = await createSealer(keys);
  const sealed = [];
  for (const i of items) {
    sealed.push(await sealer.seal(Buffer.from(i.plaintext, "base64"), binding(i.scope, i.namespace, i.name, i.key)));
  }
  out.push(sealed);
}
process.stdout.write(JSON.stringify(out));
