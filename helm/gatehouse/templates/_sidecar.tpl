{{/*
Gatehouse as a sidecar in your app's own pod
============================================

Gatehouse runs as a native sidecar (an initContainers entry with
restartPolicy: Always, Kubernetes >= 1.29): it starts, and passes its startup
probe, before your app's containers start, and stops after them. It listens on
`port` for everyone and proxies to your app at http://127.0.0.1:<appPort>.
Make your app listen on 127.0.0.1 only, or anything that reaches the pod's IP
reaches the app without Gatehouse; point your Service at Gatehouse's port only.

1. Depend on this chart (its Deployment and the rest are not rendered while
   `gatehouse.standalone` is false; the named templates stay usable):

     # Chart.yaml
     dependencies:
       - name: gatehouse
         version: 0.1.0
         repository: file://../../gatehouse   # or the chart repository
     # values.yaml
     gatehouse:
       standalone: false

2. Describe the sidecar in your values (every key but appPort is optional):

     gatehouseSidecar:
       appPort: 5678                  # your app, on 127.0.0.1
       port: 8000                     # Gatehouse's port, what the Service targets
       metricsPort: 9090              # /metrics; 0: none
       publicUrl: https://app.example.com
       existingSecret: ""             # mounted at secretMountPath, for *_file keys
       secretMountPath: /etc/gatehouse/secrets
       config: {}                     # any gatehouse.yaml keys, merged last
       extraEnv: []                   # e.g. GATEHOUSE__STORE__URL from a secretKeyRef
       image: {repository: ghcr.io/gatehouse/gatehouse, tag: "", pullPolicy: IfNotPresent}
       resources: {}

3. Include it. Every template takes the same dict: `context` (the root
   context, $), `values` (the block above) and, for the SQLite check,
   `replicas` (your replicaCount: more than 1 needs a PostgreSQL store, since
   each pod would get its own SQLite file otherwise):

     {{- $gh := dict "context" $ "values" .Values.gatehouseSidecar "replicas" .Values.replicaCount }}

   # templates/gatehouse-configmap.yaml
     {{ include "gatehouse.sidecar.configmap" $gh }}

   # templates/deployment.yaml
     spec:
       template:
         metadata:
           annotations:
             checksum/gatehouse: {{ include "gatehouse.sidecar.config" $gh | sha256sum }}
         spec:
           initContainers:
             {{- include "gatehouse.sidecar.container" $gh | nindent 12 }}
           containers:
             - name: app   # listening on 127.0.0.1:<appPort>
           volumes:
             {{- include "gatehouse.sidecar.volumes" $gh | nindent 12 }}

   Set the pod's terminationGracePeriodSeconds above server.grace_period
   (default 20s) so that in-flight requests finish on SIGTERM.

helm/examples/sidecar-app is a complete, tested chart doing this.
*/}}

{{/* The ConfigMap's name: values.configMapName or "<release>-gatehouse-sidecar". */}}
{{- define "gatehouse.sidecar.configMapName" -}}
{{- .values.configMapName | default (printf "%s-gatehouse-sidecar" .context.Release.Name) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The sidecar's gatehouse.yaml (chart defaults, the sidecar's addresses, then values.config). */}}
{{- define "gatehouse.sidecar.config" -}}
{{- $v := .values }}
{{- if not $v.appPort }}
{{- fail "gatehouse sidecar: appPort (the port your app listens on at 127.0.0.1) is required" }}
{{- end }}
{{- $port := int ($v.port | default 8000) }}
{{- if eq $port (int $v.appPort) }}
{{- fail (printf "gatehouse sidecar: port and appPort are both %d; Gatehouse and the app share the pod's network, so they need different ports" $port) }}
{{- end }}
{{- $metrics := "" }}
{{- if not (eq (toString $v.metricsPort) "0") }}
{{- $metrics = printf "0.0.0.0:%d" (int ($v.metricsPort | default 9090)) }}
{{- end }}
{{- $cfg := include "gatehouse.defaultConfig" (dict "listen" (printf "0.0.0.0:%d" $port) "metricsListen" $metrics "upstream" (printf "http://127.0.0.1:%d" (int $v.appPort))) | fromYaml }}
{{- with $v.publicUrl }}
{{- $_ := set $cfg "public_url" . }}
{{- end }}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy ($v.config | default (dict))) }}
{{- include "gatehouse.validate" (dict "config" $cfg "env" ($v.extraEnv | default list) "replicas" (.replicas | default 1) "what" (printf "the app's replicaCount=%d" (int (.replicas | default 1))) "terminationGracePeriodSeconds" $v.terminationGracePeriodSeconds) }}
{{- toYaml $cfg }}
{{- end }}

{{/* A ConfigMap holding the sidecar's gatehouse.yaml. */}}
{{- define "gatehouse.sidecar.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "gatehouse.sidecar.configMapName" . }}
  labels:
    app.kubernetes.io/name: gatehouse
    app.kubernetes.io/instance: {{ .context.Release.Name }}
    app.kubernetes.io/component: auth-sidecar
    app.kubernetes.io/managed-by: {{ .context.Release.Service }}
data:
  gatehouse.yaml: |
    {{- include "gatehouse.sidecar.config" . | nindent 4 }}
{{- end }}

{{/* The image: values.image, the tag defaulting to this chart's appVersion. */}}
{{- define "gatehouse.sidecar.image" -}}
{{- $image := .values.image | default (dict) }}
{{- $tag := $image.tag | default "" | toString }}
{{- if not $tag }}
{{- with .context.Subcharts }}{{ with .gatehouse }}{{ $tag = .Chart.AppVersion }}{{ end }}{{ end }}
{{- end }}
{{- if not $tag }}
{{- fail "gatehouse sidecar: set image.tag (the gatehouse chart is not a dependency named gatehouse, so its appVersion is unknown)" }}
{{- end }}
{{- printf "%s:%s" ($image.repository | default "ghcr.io/gatehouse/gatehouse") $tag }}
{{- end }}

{{/* The container: one list item for the pod's initContainers. */}}
{{- define "gatehouse.sidecar.container" -}}
{{- $v := .values }}
{{- $cfg := include "gatehouse.sidecar.config" . | fromYaml -}}
- name: gatehouse
  image: {{ include "gatehouse.sidecar.image" . | quote }}
  imagePullPolicy: {{ (($v.image | default (dict)).pullPolicy) | default "IfNotPresent" }}
  # A native sidecar: started before the app's containers, stopped after them.
  restartPolicy: Always
  args: ["serve", "-c", "/etc/gatehouse/gatehouse.yaml"]
  {{- with $v.extraEnv }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: gatehouse
      containerPort: {{ include "gatehouse.portOf" $cfg.server.listen }}
      protocol: TCP
    {{- with $cfg.server.metrics_listen }}
    - name: gh-metrics
      containerPort: {{ include "gatehouse.portOf" . }}
      protocol: TCP
    {{- end }}
  {{- include "gatehouse.probes" (dict "prefix" $cfg.portal.prefix "port" "gatehouse" "liveness" (dict "periodSeconds" 10 "timeoutSeconds" 3 "failureThreshold" 3) "readiness" (dict "periodSeconds" 5 "timeoutSeconds" 3 "failureThreshold" 3) "startup" (dict "periodSeconds" 1 "timeoutSeconds" 3 "failureThreshold" 120)) | nindent 2 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: [ALL]
    seccompProfile:
      type: RuntimeDefault
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: gatehouse-config
      mountPath: /etc/gatehouse/gatehouse.yaml
      subPath: gatehouse.yaml
      readOnly: true
    - name: gatehouse-data
      mountPath: /var/lib/gatehouse
    - name: gatehouse-tmp
      mountPath: /tmp
    {{- if $v.existingSecret }}
    - name: gatehouse-secrets
      mountPath: {{ $v.secretMountPath | default "/etc/gatehouse/secrets" }}
      readOnly: true
    {{- end }}
{{- end }}

{{/* The volumes the container mounts: list items for the pod's volumes. */}}
{{- define "gatehouse.sidecar.volumes" -}}
- name: gatehouse-config
  configMap:
    name: {{ include "gatehouse.sidecar.configMapName" . }}
- name: gatehouse-data
  emptyDir: {}
- name: gatehouse-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- with .values.existingSecret }}
- name: gatehouse-secrets
  secret:
    secretName: {{ . }}
    # Readable by uid 65532 whatever the app pod's fsGroup.
    defaultMode: 0444
{{- end }}
{{- end }}
