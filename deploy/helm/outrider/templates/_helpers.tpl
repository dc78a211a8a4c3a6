{{- define "outrider.name" -}}{{ .Chart.Name }}{{- end }}

{{- define "outrider.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "outrider.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "outrider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: outrider
{{- end }}

{{- define "outrider.selector" -}}
app.kubernetes.io/name: {{ include "outrider.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "outrider.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* A service's image: its own repository/tag (e.g. built with `--target <service>`) or the shared one. */}}
{{- define "outrider.serviceImage" -}}
{{- $own := get .svc "image" | default dict -}}
{{ get $own "repository" | default .root.Values.image.repository }}:{{ get $own "tag" | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- end }}

{{/* The Kafka consumer group of a consuming service, under the release's topic prefix. */}}
{{- define "outrider.consumerGroup" -}}{{ .root.Values.topicPrefix }}{{ .component }}{{- end }}

{{- define "outrider.secretName" -}}{{ include "outrider.fullname" . }}{{- end }}

{{- define "outrider.kafkaSasl" -}}{{ hasPrefix "SASL_" .Values.kafka.securityProtocol | ternary "true" "" }}{{- end }}
{{- define "outrider.kafkaTls" -}}{{ has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") | ternary "true" "" }}{{- end }}

{{/* Where every service pod mounts `kafka.tls.caSecret`; OUTRIDER_KAFKA_SSL_CAFILE is its ca.crt. */}}
{{- define "outrider.kafkaCaDir" -}}/etc/outrider/kafka-ca{{- end }}

{{/* The migration Job's env: it only talks to PostgreSQL. */}}
{{- define "outrider.databaseEnv" -}}
- name: OUTRIDER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.postgres.existingSecret | default (include "outrider.secretName" .) }}
      key: database-url
{{- end }}

{{/* Every service's env; the SASL credentials come from `kafka.sasl.existingSecret`, never from values. */}}
{{- define "outrider.env" -}}
- name: OUTRIDER_KAFKA_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: OUTRIDER_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if include "outrider.kafkaSasl" . }}
- name: OUTRIDER_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: OUTRIDER_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: username
- name: OUTRIDER_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: password
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
- name: OUTRIDER_KAFKA_SSL_CAFILE
  value: {{ printf "%s/ca.crt" (include "outrider.kafkaCaDir" .) | quote }}
{{- end }}
- name: OUTRIDER_TOPIC_PREFIX
  value: {{ .Values.topicPrefix | quote }}
- name: OUTRIDER_TOPIC_PARTITIONS
  value: {{ .Values.kafka.topicPartitions | quote }}
- name: OUTRIDER_TOPIC_REPLICATION_FACTOR
  value: {{ .Values.kafka.topicReplicationFactor | quote }}
- name: OUTRIDER_HTTP_HOST
  value: "0.0.0.0"
{{ include "outrider.databaseEnv" . }}
{{- if .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otel.endpoint | quote }}
{{- end }}
{{- end }}

{{- define "outrider.securityContext" -}}
runAsNonRoot: true
runAsUser: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
