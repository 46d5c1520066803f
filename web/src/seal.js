// What the page's Seal button does, without the page: checks the form's
// values against Kubernetes' rules and the Secret size limit, seals every
// item with one sealer (docs/envelope.md), and writes a new SealedSecret or
// merges the items into the pasted one. Every problem is reported against
// the form field it belongs to, all at once, and nothing is sealed unless
// everything is right.

import { binding, createSealer, SealError } from "./envelope.js";
import { mergeInto, readSealedSecret, renderSealedSecret, ManifestError } from "./manifest.js";
import { itemKeyProblem, MAX_SECRET_BYTES, namespaceProblem, nameProblem, secretTypeProblem } from "./names.js";

/** Problems with the form: `problems` is `[{ field, message }]`. */
export class FormError extends Error {
  constructor(problems) {
    super(problems.map((p) => p.message).join("; "));
    this.name = "FormError";
    this.problems = problems;
  }
}

/**
 * Seals a form. `form` is `{ recipients, namespace, name, scope, type,
 * items: [{ key, value: Uint8Array }], existing }`; `existing` is the
 * pasted SealedSecret text ("" for a new one). Returns `{ text, keyIds,
 * changes, filename }`.
 */
export async function sealForm(form, testing) {
  const problems = [];
  const problem = (field, message) => problems.push({ field, message });

  let target;
  if (form.existing.trim() !== "") {
    try {
      target = readSealedSecret(form.existing);
    } catch (e) {
      if (!(e instanceof ManifestError || e instanceof SealError)) throw e;
      problem("existing", e.message);
    }
  }
  // In merge mode the pasted SealedSecret decides the place and the scope.
  const scope = target?.scope ?? form.scope;
  const name = target?.name ?? form.name.trim();
  const namespace = target?.namespace ?? form.namespace.trim();
  if (!["strict", "namespace", "cluster"].includes(scope)) problem("scope", "choose a scope: strict, namespace or cluster");
  if (!target) {
    const nameBad = nameProblem(name);
    if (nameBad) problem("name", nameBad);
    const typeBad = secretTypeProblem(form.type.trim());
    if (typeBad) problem("type", typeBad);
  }
  if (scope !== "cluster" || namespace !== "") {
    const nsBad = namespaceProblem(namespace);
    if (nsBad) problem("namespace", scope === "cluster" ? `${nsBad} (it may be left empty for cluster scope)` : nsBad);
  }

  if (form.recipients.length === 0) problem("keys", "no public key to seal to: load the controller's key or paste one");

  if (form.items.length === 0) problem("items", "add at least one item");
  const seen = new Map();
  let total = 0;
  for (const [i, item] of form.items.entries()) {
    const bad = itemKeyProblem(item.key);
    if (bad) problem(`item-${i}-key`, `item ${i + 1}: ${bad}`);
    else if (seen.has(item.key)) problem(`item-${i}-key`, `item ${i + 1}: the item key "${item.key}" is already used by item ${seen.get(item.key) + 1}`);
    seen.set(item.key, i);
    total += item.value.length;
  }
  if (target) {
    for (const existing of target.items) if (!seen.has(existing.key)) total += existing.plaintextLength;
  }
  if (total > MAX_SECRET_BYTES) {
    const largest = form.items.reduce((best, item, i) => (item.value.length > (form.items[best]?.value.length ?? -1) ? i : best), 0);
    problem(
      `item-${largest}-value`,
      `the values are too large: the Secret would hold ${total.toLocaleString("en")} bytes, ` +
        `and Kubernetes refuses Secrets larger than 1 MiB (${MAX_SECRET_BYTES.toLocaleString("en")} bytes)`,
    );
  }
  if (problems.length > 0) throw new FormError(problems);

  let sealer;
  try {
    sealer = await createSealer(form.recipients, testing);
  } catch (e) {
    if (e instanceof SealError) throw new FormError([{ field: e.field ?? "keys", message: e.message }]);
    throw e;
  }
  const sealed = new Map();
  for (const [i, item] of form.items.entries()) {
    try {
      sealed.set(item.key, await sealer.seal(item.value, binding(scope, namespace, name, item.key)));
    } catch (e) {
      if (e instanceof SealError) throw new FormError([{ field: `item-${i}-key`, message: `item ${i + 1}: ${e.message}` }]);
      throw e;
    }
  }

  if (target) {
    try {
      const merged = mergeInto(form.existing, sealed);
      return { text: merged.text, keyIds: sealer.keyIds, changes: merged.changes, filename: `${name}.yaml` };
    } catch (e) {
      if (e instanceof ManifestError) throw new FormError([{ field: "existing", message: e.message }]);
      throw e;
    }
  }
  const text = renderSealedSecret({ name, namespace: namespace || undefined, scope, type: form.type.trim(), encryptedData: sealed });
  const where = namespace ? `${namespace}/${name}` : name;
  return {
    text,
    keyIds: sealer.keyIds,
    changes: [...sealed.keys()].sort().map((k) => `sealed item "${k}" for ${where}`),
    filename: `${name}.yaml`,
  };
}
