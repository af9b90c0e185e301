{{/*
The shape of the system, as the code fixes it: each service's processes, the topics it reads
and writes, and its consumer group. Values tune the processes; they do not change this.
*/}}
{{- define "data-sync.topology" -}}
pedidos:
  processes:
    api: {kind: api, path: /pedidos}
    relay: {kind: relay}
  reads: []
  writes: [pedidos]
clientes:
  processes:
    api: {kind: api, path: /clientes}
    relay: {kind: relay}
    consumer: {kind: consumer}
  reads: [pedidos]
  writes: [clientes, pedidos-enriquecidos]
  group: clientes-enriquecimento
reports:
  processes:
    api: {kind: api, path: /reports}
    consumer: {kind: consumer}
  reads: [pedidos, clientes, pedidos-enriquecidos]
  writes: []
  group: reports-views
monitoramento:
  processes:
    api: {kind: api, path: /status}
  reads: []
  writes: []
{{- end -}}

{{- define "data-sync.topics" -}}
[pedidos, clientes, pedidos-enriquecidos]
{{- end -}}

{{/* The consumer groups monitoramento reports the lag of. */}}
{{- define "data-sync.groups" -}}
[clientes-enriquecimento, reports-views]
{{- end -}}

{{- define "data-sync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object. Kept short because the operators append to it (pods, Services and
Secrets such as <cluster>-kafka-bootstrap or <cluster>-app).
*/}}
{{- define "data-sync.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains (include "data-sync.name" .) .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "data-sync.name" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "data-sync.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: data-sync
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "data-sync.selectorLabels" . }}
{{- end -}}

{{- define "data-sync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "data-sync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one service's objects; call with (dict "root" $ "service" $name). */}}
{{- define "data-sync.serviceLabels" -}}
{{ include "data-sync.labels" .root }}
data-sync/service: {{ .service }}
{{- end -}}

{{/* Selector of one process's pods; call with (dict "root" $ "service" $s "process" $p). */}}
{{- define "data-sync.processSelector" -}}
{{ include "data-sync.selectorLabels" .root }}
data-sync/service: {{ .service }}
data-sync/process: {{ .process }}
{{- end -}}

{{- define "data-sync.processName" -}}
{{- printf "%s-%s-%s" (include "data-sync.fullname" .root) .service .process -}}
{{- end -}}

{{- define "data-sync.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
A process's settings: the defaults of its kind overlaid with services.<service>.<process>.
Call with (dict "root" $ "service" $s "process" $p "kind" $k); returns YAML.
*/}}
{{- define "data-sync.processConfig" -}}
{{- $defaults := deepCopy (index .root.Values.processDefaults .kind) -}}
{{- $overrides := deepCopy (dig .service .process (dict) .root.Values.services) -}}
{{- toYaml (mergeOverwrite $defaults $overrides) -}}
{{- end -}}

{{/* The database settings of one service: postgresql.* overlaid with its own. */}}
{{- define "data-sync.databaseConfig" -}}
{{- $defaults := deepCopy (omit .root.Values.postgresql "enabled" "backups") -}}
{{- $overrides := deepCopy (dig .service "database" (dict) .root.Values.services) -}}
{{- toYaml (mergeOverwrite $defaults $overrides) -}}
{{- end -}}

{{- define "data-sync.databaseCluster" -}}
{{- printf "%s-%s-db" (include "data-sync.fullname" .root) .service -}}
{{- end -}}

{{- define "data-sync.kafkaCluster" -}}
{{- include "data-sync.fullname" . -}}
{{- end -}}

{{- define "data-sync.kafkaUser" -}}
{{- printf "%s-%s" (include "data-sync.fullname" .root) .service -}}
{{- end -}}

{{- define "data-sync.kafkaBootstrap" -}}
{{- if .Values.kafka.strimzi.enabled -}}
{{- $port := ternary 9093 9092 .Values.kafka.strimzi.tls -}}
{{- printf "%s-kafka-bootstrap.%s.svc:%d" (include "data-sync.kafkaCluster" .) .Release.Namespace $port -}}
{{- else -}}
{{- required "kafka.external.bootstrapServers is required when kafka.strimzi.enabled is false" .Values.kafka.external.bootstrapServers -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the CA the Kafka clients trust, empty when none is needed. */}}
{{- define "data-sync.kafkaCaSecret" -}}
{{- if .Values.kafka.strimzi.enabled -}}
{{- if .Values.kafka.strimzi.tls -}}
{{- printf "%s-cluster-ca-cert" (include "data-sync.kafkaCluster" .) -}}
{{- end -}}
{{- else -}}
{{- .Values.kafka.external.caSecretName -}}
{{- end -}}
{{- end -}}

{{/* Where the Kafka CA is mounted; SSL_CERT_FILE points Python's default context at it. */}}
{{- define "data-sync.kafkaCaPath" -}}
/etc/data-sync/kafka-ca
{{- end -}}

{{/*
Environment of one process; call with (dict "root" $ "service" $s "process" $p).
The migration Job gets only what it needs: APP_ENV, logging, the database and the Kafka
address the settings insist on outside dev, but no Kafka credentials.
*/}}
{{- define "data-sync.env" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
- name: APP_ENV
  value: {{ $values.appEnv | quote }}
- name: LOG_FORMAT
  value: json
- name: LOG_LEVEL
  value: {{ $values.logLevel | quote }}
- name: HTTP_HOST
  value: 0.0.0.0
- name: HTTP_PORT
  value: {{ $values.httpPort | quote }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
{{- if $values.postgresql.enabled }}
      name: {{ include "data-sync.databaseCluster" . }}-app
      key: uri
{{- else }}
{{- $secret := required (printf "services.%s.database.existingSecret is required when postgresql.enabled is false" .service) (dig .service "database" "existingSecret" "" $values.services) }}
      name: {{ $secret }}
      key: {{ dig .service "database" "existingSecretKey" "uri" $values.services }}
{{- end }}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "data-sync.kafkaBootstrap" $root | quote }}
{{- if ne .process "migrate" }}
{{- include "data-sync.kafkaClientEnv" . }}
{{- end }}
{{- if eq .service "reports" }}
- name: REPORTS_TIMEZONE
  value: {{ $values.services.reports.timezone | quote }}
{{- end }}
{{- if eq .service "monitoramento" }}
- name: MONITOR_TARGETS
  value: {{ include "data-sync.monitorTargets" $root | quote }}
- name: MONITOR_CONSUMER_GROUPS
  value: {{ include "data-sync.groups" $root | fromYamlArray | join "," | quote }}
- name: MONITOR_MAX_OUTBOX_AGE_S
  value: {{ $values.services.monitoramento.maxOutboxAgeSeconds | quote }}
{{- end }}
{{- range $name, $value := (dig .service "env" (dict) $values.services) }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The Kafka security settings and credentials of one service's processes. */}}
{{- define "data-sync.kafkaClientEnv" -}}
{{- $values := .root.Values -}}
{{- if $values.kafka.strimzi.enabled }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ ternary "SASL_SSL" "SASL_PLAINTEXT" $values.kafka.strimzi.tls }}
- name: KAFKA_SASL_MECHANISM
  value: SCRAM-SHA-512
- name: KAFKA_SASL_USERNAME
  value: {{ include "data-sync.kafkaUser" . }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "data-sync.kafkaUser" . }}
      key: password
{{- else }}
{{- $external := $values.kafka.external }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $external.securityProtocol | quote }}
{{- if hasPrefix "SASL" $external.securityProtocol }}
{{- $user := required (printf "kafka.external.users.%s is required with %s" .service $external.securityProtocol) (get $external.users .service) }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $external.saslMechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $user.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $user.passwordSecret.name }}
      key: {{ $user.passwordSecret.key }}
{{- end }}
{{- end }}
{{- if include "data-sync.kafkaCaSecret" .root }}
- name: SSL_CERT_FILE
  value: {{ include "data-sync.kafkaCaPath" .root }}/ca.crt
{{- end }}
{{- end -}}

{{/* service/process=url of every process monitoramento watches (all but itself). */}}
{{- define "data-sync.monitorTargets" -}}
{{- $root := . -}}
{{- $targets := list -}}
{{- range $service, $spec := include "data-sync.topology" $root | fromYaml -}}
{{- if ne $service "monitoramento" -}}
{{- range $process, $_ := $spec.processes -}}
{{- $name := include "data-sync.processName" (dict "root" $root "service" $service "process" $process) -}}
{{- $targets = append $targets (printf "%s/%s=http://%s:%d" $service $process $name (int $root.Values.httpPort)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- join "," $targets -}}
{{- end -}}

{{/* The hardened security context of every container. */}}
{{- define "data-sync.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: {{ .Values.readOnlyRootFilesystem }}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "data-sync.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Volumes every pod mounts: a writable /tmp and, when TLS is on, the Kafka CA. */}}
{{- define "data-sync.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with include "data-sync.kafkaCaSecret" . }}
- name: kafka-ca
  secret:
    secretName: {{ . }}
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "data-sync.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if include "data-sync.kafkaCaSecret" . }}
- name: kafka-ca
  mountPath: {{ include "data-sync.kafkaCaPath" . }}
  readOnly: true
{{- end }}
{{- end -}}
