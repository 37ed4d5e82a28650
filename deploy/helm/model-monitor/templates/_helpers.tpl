{{/* The release's base name, trimmed to Kubernetes' 63 characters. */}}
{{- define "model-monitor.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "model-monitor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component (service, ingest, dashboard). */}}
{{- define "model-monitor.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "model-monitor.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "model-monitor.secretName" -}}
{{- if .Values.secret.existingSecret -}}
{{- .Values.secret.existingSecret -}}
{{- else if .Values.secret.create -}}
{{- include "model-monitor.fullname" . -}}
{{- else -}}
{{- fail "set secret.existingSecret to the Secret holding clickhouse-dsn, api-token and api-read-token (or secret.create=true with secret.values)" -}}
{{- end -}}
{{- end -}}

{{/* The environment every monitor process reads: connections and logging (the service adds the tokens). */}}
{{- define "model-monitor.env" -}}
- name: MONITOR_CLICKHOUSE_DSN
  valueFrom: {secretKeyRef: {name: {{ include "model-monitor.secretName" . }}, key: clickhouse-dsn}}
- name: MONITOR_KAFKA_BOOTSTRAP
  value: {{ required "set kafka.bootstrap to the Kafka bootstrap servers (host:port)" .Values.kafka.bootstrap | quote }}
- name: MONITOR_KAFKA__GROUP_ID
  value: {{ .Values.kafka.groupId | quote }}
- name: MONITOR_KAFKA__PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
{{- range $key, $value := .Values.kafka.extraEnv }}
- name: MONITOR_KAFKA__{{ $key | upper }}
  value: {{ $value | quote }}
{{- end }}
- name: MONITOR_LOG_FORMAT
  value: json
- name: MONITOR_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: HOME
  value: /tmp
{{- range $name, $key := .Values.secret.extraEnv }}
- name: {{ $name }}
  valueFrom: {secretKeyRef: {name: {{ include "model-monitor.secretName" $ }}, key: {{ $key }}}}
{{- end }}
{{- end -}}

{{/* The API's tokens, for the service only: ingest serves no API. */}}
{{- define "model-monitor.tokenEnv" -}}
- name: MONITOR_API_TOKEN
  valueFrom: {secretKeyRef: {name: {{ include "model-monitor.secretName" . }}, key: api-token}}
- name: MONITOR_API_READ_TOKEN
  valueFrom: {secretKeyRef: {name: {{ include "model-monitor.secretName" . }}, key: api-read-token}}
{{- end -}}

{{/* Pod-level settings shared by the three Deployments (.root, .part: the component's values). */}}
{{- define "model-monitor.podSpec" -}}
automountServiceAccountToken: false
securityContext: {{- toYaml .root.Values.securityContext.pod | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .part.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .part.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .part.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
