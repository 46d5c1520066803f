#!/usr/bin/env bash
# Copies deploy/crd.yaml (generated from the Rust types) into the Helm chart
# as templates/crd.yaml, with Helm's labels and `helm.sh/resource-policy:
# keep`. Run after regenerating the CRD; crates/gitseal-deploy's tests fail
# while the two differ.
set -euo pipefail
cd "$(dirname "$0")/.."
out=deploy/helm/gitseal/templates/crd.yaml
{
  cat <<'HEAD'
{{- if .Values.crds.install }}
{{- /*
The CRD of deploy/crd.yaml, generated from the Rust types (scripts/helm-crd.sh
copies it; a test keeps the copy identical). Kept on uninstall: deleting it
deletes every SealedSecret, and with them every Secret they own.
*/}}
HEAD
  sed -n '/^apiVersion/,$p' deploy/crd.yaml |
    sed '/^  name: sealedsecrets.gitseal.dev$/i\  annotations:\n    helm.sh/resource-policy: keep\n  labels:\n    {{- include "gitseal.crdLabels" . | nindent 4 }}'
  echo '{{- end }}'
} > "$out"
echo "wrote $out" >&2
