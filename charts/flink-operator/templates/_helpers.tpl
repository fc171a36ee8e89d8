{{/* The release's name for the operator's objects, at most 63 characters (upstream's
fullnameOverride and nameOverride are honoured). */}}
{{- define "flink-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if .Values.nameOverride -}}
{{- printf "%s-%s" .Release.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flink-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flink-operator.labels" -}}
{{ include "flink-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The operator's service account values: ours, under upstream's operatorServiceAccount. */}}
{{- define "flink-operator.serviceAccount" -}}
{{- toYaml (merge (deepCopy (.Values.operatorServiceAccount | default dict)) .Values.serviceAccount) -}}
{{- end -}}

{{- define "flink-operator.serviceAccountName" -}}
{{- $sa := include "flink-operator.serviceAccount" . | fromYaml -}}
{{- if $sa.create -}}
{{- default (include "flink-operator.fullname" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* Flink's job service account: ours (rbac.jobServiceAccount) under upstream's
jobServiceAccount. */}}
{{- define "flink-operator.jobServiceAccount" -}}
{{- toYaml (merge (deepCopy (.Values.jobServiceAccount | default dict)) .Values.rbac.jobServiceAccount) -}}
{{- end -}}

{{/* The admission webhook: webhook.enabled, or upstream's webhook.create. */}}
{{- define "flink-operator.webhookEnabled" -}}
{{- if or .Values.webhook.enabled .Values.webhook.create -}}true{{- end -}}
{{- end -}}

{{/* The operator ConfigMap's config.yaml: operatorConfig.configYaml, or upstream's
defaultConfiguration (its config.yaml, else flink-conf.yaml). */}}
{{- define "flink-operator.configYaml" -}}
{{- $upstream := .Values.defaultConfiguration | default dict -}}
{{- $text := .Values.operatorConfig.configYaml -}}
{{- $theirs := index $upstream "config.yaml" | default (index $upstream "flink-conf.yaml") | default "" -}}
{{- if and $theirs (not $text) -}}
{{- $text = $theirs -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/* The namespaces that get a Role for Flink's own pods: the watched ones, or the release's. */}}
{{/* Where Flink's job service account and Role go: the watched namespaces (or the listed
ones when all are watched), never the release namespace. */}}
{{- define "flink-operator.jobNamespaces" -}}
{{- $namespaces := .Values.watchNamespaces | default .Values.rbac.jobServiceAccount.namespaces -}}
{{- without $namespaces .Release.Namespace | join "," -}}
{{- end -}}

{{/* What the operator may do to the resources it reconciles and the objects it creates. */}}
{{- define "flink-operator.rules" -}}
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments, flinksessionjobs, flinkstatesnapshots, flinkbluegreendeployments]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments/status, flinksessionjobs/status, flinkstatesnapshots/status, flinkbluegreendeployments/status, flinkdeployments/finalizers, flinksessionjobs/finalizers, flinkstatesnapshots/finalizers, flinkbluegreendeployments/finalizers]
  verbs: [get, update, patch]
- apiGroups: [apps]
  resources: [deployments, deployments/scale]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [pods]
  # patch: the pod-deletion-cost mark on idle TaskManagers released after a scale-down.
  verbs: [get, list, watch, patch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  # spec.ingress of a FlinkDeployment, and a blue/green parent's Ingress switched at cut-over.
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
