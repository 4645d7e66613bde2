{{/* Names and labels. */}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gatehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: auth-proxy
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository:tag, the tag defaulting to the chart's
appVersion. Takes a dict: image (repository, tag) and chart (.Chart).
*/}}
{{- define "gatehouse.image" -}}
{{- printf "%s:%s" .image.repository (default .chart.AppVersion .image.tag | toString) }}
{{- end }}

{{/*
The chart's defaults for gatehouse.yaml, as YAML. Takes a dict: listen,
metricsListen (empty: no metrics listener), upstream.
*/}}
{{- define "gatehouse.defaultConfig" -}}
server:
  listen: {{ .listen | quote }}
  {{- if .metricsListen }}
  metrics_listen: {{ .metricsListen | quote }}
  {{- end }}
  grace_period: 20s
upstream:
  url: {{ .upstream | quote }}
store:
  url: "sqlite:///var/lib/gatehouse/gatehouse.db"
portal:
  prefix: /_auth
{{- end }}

{{/*
The standalone configuration: values.config merged over the defaults, as YAML.
*/}}
{{- define "gatehouse.config" -}}
{{- $metrics := "" }}
{{- if .Values.metrics.enabled }}
{{- $metrics = printf "0.0.0.0:%d" (int .Values.metrics.port) }}
{{- end }}
{{- $defaults := include "gatehouse.defaultConfig" (dict "listen" "0.0.0.0:8080" "metricsListen" $metrics "upstream" "echo:") | fromYaml }}
{{- $cfg := mustMergeOverwrite $defaults (deepCopy (default (dict) .Values.config)) }}
{{- if not .Values.metrics.enabled }}
{{- $_ := unset $cfg.server "metrics_listen" }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The port of a "host:port" listen address, as an int. */}}
{{- define "gatehouse.portOf" -}}
{{- regexReplaceAll "^.*:" (toString .) "" | atoi }}
{{- end }}

{{/*
The store URL Gatehouse will use: GATEHOUSE__STORE__URL from the env list when
set there (a valueFrom counts as "from the environment", which is not SQLite),
else the config's store.url. Takes a dict: config (the merged config map), env
(a list of EnvVar).
*/}}
{{- define "gatehouse.storeUrl" -}}
{{- $url := "" }}
{{- with .config.store }}{{ $url = .url | default "" }}{{ end }}
{{- range .env }}
{{- if eq .name "GATEHOUSE__STORE__URL" }}
{{- $url = .value | default "(from the environment)" }}
{{- end }}
{{- end }}
{{- $url }}
{{- end }}

{{/*
Refuse settings that cannot work. Takes a dict: config (merged config map),
env, replicas (the most pods that may run at once), what (who says so),
terminationGracePeriodSeconds.
*/}}
{{- define "gatehouse.validate" -}}
{{- $store := include "gatehouse.storeUrl" . }}
{{- if and (gt (int .replicas) 1) (hasPrefix "sqlite:" $store) }}
{{- fail (printf "gatehouse: %s allows %d pods but the store is SQLite (%s), which one process owns: set config.store.url (or GATEHOUSE__STORE__URL in extraEnv) to a PostgreSQL URL (postgres://USER@HOST/DB), shared by every replica, or run a single replica" .what (int .replicas) $store) }}
{{- end }}
{{- $grace := "" }}
{{- with .config.server }}{{ $grace = .grace_period | default "" | toString }}{{ end }}
{{- if and .terminationGracePeriodSeconds (regexMatch "^[0-9]+s$" $grace) }}
{{- if ge (trimSuffix "s" $grace | atoi) (int .terminationGracePeriodSeconds) }}
{{- fail (printf "gatehouse: server.grace_period (%s) must be shorter than terminationGracePeriodSeconds (%d), or Kubernetes kills Gatehouse before in-flight requests finish" $grace (int .terminationGracePeriodSeconds)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The three probes on the named proxy port. Takes a dict: prefix, port (name),
liveness, readiness, startup (extra probe settings).
*/}}
{{- define "gatehouse.probes" -}}
livenessProbe:
  httpGet:
    path: {{ printf "%s/healthz" (trimSuffix "/" .prefix) }}
    port: {{ .port }}
  {{- with .liveness }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
readinessProbe:
  httpGet:
    path: {{ printf "%s/readyz" (trimSuffix "/" .prefix) }}
    port: {{ .port }}
  {{- with .readiness }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
startupProbe:
  httpGet:
    path: {{ printf "%s/readyz" (trimSuffix "/" .prefix) }}
    port: {{ .port }}
  {{- with .startup }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
