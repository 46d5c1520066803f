{{/* Name of the controller's objects (Deployment, ServiceAccount, RBAC, Service, Lease). */}}
{{- define "gitseal.name" -}}
gitseal-controller
{{- end }}

{{/* Labels of every object: the kustomize base's, Helm's, and commonLabels. */}}
{{- define "gitseal.labels" -}}
app.kubernetes.io/name: {{ include "gitseal.name" . }}
app.kubernetes.io/part-of: gitseal
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of the CRD: Helm's and commonLabels (the base's CRD has none). */}}
{{- define "gitseal.crdLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod selector. Fixed (as in the kustomize base): a selector cannot change. */}}
{{- define "gitseal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gitseal.name" . }}
{{- end }}

{{/* metadata.annotations of every object, when commonAnnotations is set. */}}
{{- define "gitseal.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Arguments of `gitseal-controller run`. Only flags the binary has: a test
runs `gitseal-controller run ARGS --help` with every option of the chart on.
*/}}
{{- define "gitseal.args" -}}
- run
- --listen=0.0.0.0:8080
- --key-rotation-period={{ .Values.keyRotationPeriod }}
- --leader-election={{ .Values.leaderElection }}
- --lease-name={{ include "gitseal.name" . }}
- --rollout-on-change={{ .Values.rolloutOnChange.enabled }}
{{- with .Values.watchNamespaces }}
- --watch-namespaces={{ join "," . }}
{{- end }}
{{- with .Values.watchNamespaceSelector }}
- --watch-namespace-selector={{ . }}
{{- end }}
{{- with .Values.logFormat }}
- --log-format={{ . }}
{{- end }}
{{- with .Values.concurrency }}
- --concurrency={{ . }}
{{- end }}
{{- with .Values.workerThreads }}
- --worker-threads={{ . }}
{{- end }}
{{- with .Values.vault }}
{{- if .address }}
- --vault-addr={{ .address }}
- --vault-auth={{ .auth }}
{{- with .authMount }}
- --vault-auth-mount={{ . }}
{{- end }}
{{- if eq .auth "kubernetes" }}
- --vault-role={{ .role }}
{{- end }}
{{- with .namespace }}
- --vault-namespace={{ . }}
{{- end }}
{{- with .pathTemplates }}
- --vault-path-template={{ join "," . }}
{{- end }}
{{- if eq .auth "approle" }}
- --vault-role-id-file=/etc/gitseal/vault-approle/role-id
- --vault-secret-id-file=/etc/gitseal/vault-approle/secret-id
{{- end }}
{{- if eq .auth "token" }}
- --vault-token-file=/etc/gitseal/vault-token/token
{{- end }}
{{- with .caConfigMap }}
- --vault-cacert=/etc/gitseal/vault-ca/ca.crt
{{- end }}
{{- with .timeout }}
- --vault-timeout={{ . }}
{{- end }}
{{- with .cacheTTL }}
- --vault-cache-ttl={{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
