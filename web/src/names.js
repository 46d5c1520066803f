// Kubernetes' naming rules for what the page binds a value to, so a
// SealedSecret made here is one the API server accepts and the controller
// can write out: namespaces are DNS-1123 labels, object names DNS-1123
// subdomains, item keys what Kubernetes allows as keys of a Secret's data
// (IsConfigMapKey), and a Secret holds at most 1 MiB of data.

/** Most bytes of data one Secret may hold (the API server refuses more). */
export const MAX_SECRET_BYTES = 1024 * 1024;

/** Why `ns` is not a valid namespace, or null when it is. */
export function namespaceProblem(ns) {
  if (ns === "") return "the namespace is empty";
  if (ns.length > 63) return `the namespace is ${ns.length} characters long; at most 63`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) {
    return "the namespace must be lowercase letters, digits and '-', starting and ending with a letter or digit";
  }
  return null;
}

/** Why `name` is not a valid object name, or null when it is. */
export function nameProblem(name) {
  if (name === "") return "the name is empty";
  if (name.length > 253) return `the name is ${name.length} characters long; at most 253`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) {
    return "the name must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";
  }
  return null;
}

/** Why `key` is not a valid item key of a Secret, or null when it is. */
export function itemKeyProblem(key) {
  if (key === "") return "the item key is empty";
  if (key.length > 253) return `the item key is ${key.length} characters long; at most 253`;
  if (!/^[-._a-zA-Z0-9]+$/.test(key)) return "the item key may only hold letters, digits, '-', '_' and '.'";
  if (key === "." || key === ".." || key.startsWith("..")) return "the item key must not be '.' or '..' or start with '..'";
  return null;
}

/** Why `type` is not a usable Secret type, or null when it is (empty means Opaque). */
export function secretTypeProblem(type) {
  if (type === "") return null;
  if (type.length > 253 || !/^[\x21-\x7e]+$/.test(type)) {
    return "the Secret type must be printable ASCII without spaces, e.g. kubernetes.io/tls";
  }
  return null;
}

/** "1.2 MiB", "830 KiB", "12 bytes". */
export function formatBytes(n) {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} byte${n === 1 ? "" : "s"}`;
}
