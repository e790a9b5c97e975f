{{/*
Names, labels and the small pieces of configuration several templates share.
*/}}

{{- define "instaface.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name. Truncated to 52 characters so that suffixed names ("-peers", "-mysql")
and the StatefulSet's pod names ("-<ordinal>") stay within Kubernetes' 63-character limit.
*/}}
{{- define "instaface.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "instaface.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "instaface.selectorLabels" -}}
app.kubernetes.io/name: {{ include "instaface.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "instaface.labels" -}}
helm.sh/chart: {{ include "instaface.chart" . }}
{{ include "instaface.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: instaface
{{- end }}

{{/*
Selector labels of one component: (dict "ctx" $ "component" "graphserver").
*/}}
{{- define "instaface.componentSelectorLabels" -}}
{{ include "instaface.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "instaface.componentLabels" -}}
{{ include "instaface.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "instaface.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "instaface.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "instaface.clusterName" -}}
{{- default (include "instaface.fullname" .) .Values.clusterName | trunc 63 }}
{{- end }}

{{- define "instaface.peersServiceName" -}}
{{- printf "%s-peers" (include "instaface.fullname" .) }}
{{- end }}

{{/*
An image reference: (dict "ctx" $ "image" .Values.image.agent).
*/}}
{{- define "instaface.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag }}
{{- if .ctx.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .ctx.Values.image.registry) .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Paths inside the pod. The socket directory and /dev/shm are emptyDirs both containers mount.
*/}}
{{- define "instaface.socketDir" -}}/run/instaface{{- end }}
{{- define "instaface.socketPath" -}}/run/instaface/agent.sock{{- end }}
{{- define "instaface.stateDir" -}}/var/lib/instaface{{- end }}
{{- define "instaface.secretDir" -}}/etc/instaface/secret{{- end }}

{{/*
The Secret the chart creates for every credential not taken from an existing Secret.
*/}}
{{- define "instaface.secretName" -}}
{{- include "instaface.fullname" . }}
{{- end }}

{{- define "instaface.clusterSecretName" -}}
{{- default (include "instaface.secretName" .) .Values.clusterSecret.existingSecret }}
{{- end }}

{{- define "instaface.redisSecretName" -}}
{{- default (include "instaface.secretName" .) .Values.redis.auth.existingSecret }}
{{- end }}

{{- define "instaface.mysqlSecretName" -}}
{{- default (include "instaface.secretName" .) .Values.mysql.auth.existingSecret }}
{{- end }}

{{/*
True (non-empty) when the chart must create its own Secret for at least one credential.
*/}}
{{- define "instaface.needsSecret" -}}
{{- if not .Values.clusterSecret.existingSecret }}yes{{ end }}
{{- if and .Values.redis.auth.enabled (not .Values.redis.auth.existingSecret) }}yes{{ end }}
{{- if not .Values.mysql.auth.existingSecret }}yes{{ end }}
{{- end }}

{{/*
A base64 Secret value: the configured one, else the one already stored in the release's Secret
(so that upgrades keep generated passwords, which MariaDB has already baked into its data), else a
new random one. (dict "ctx" $ "key" "mysql-password" "value" .Values.mysql.auth.password)
*/}}
{{- define "instaface.secretValue" -}}
{{- if .value }}
{{- .value | toString | b64enc }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace (include "instaface.secretName" .ctx) }}
{{- $stored := "" }}
{{- if $existing }}
{{- $stored = dig "data" .key "" $existing }}
{{- end }}
{{- if $stored }}
{{- $stored }}
{{- else }}
{{- randAlphaNum 32 | b64enc }}
{{- end }}
{{- end }}
{{- end }}

{{- define "instaface.redisHost" -}}
{{- printf "%s-redis" (include "instaface.fullname" .) }}
{{- end }}

{{/*
The agent's --redis URL. A password is spliced in as $(REDIS_PASSWORD), which the kubelet expands
from a secretKeyRef env var inside the container, so the pod spec never holds it.
*/}}
{{- define "instaface.redisUrl" -}}
{{- $userinfo := ternary ":$(REDIS_PASSWORD)@" "" .Values.redis.auth.enabled }}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s%s.%s.svc:%d/0" $userinfo (include "instaface.redisHost" .) .Release.Namespace (int .Values.redis.port) }}
{{- else }}
{{- $url := required "redis.external.url is required when redis.enabled is false" .Values.redis.external.url }}
{{- $parts := urlParse $url }}
{{- if ne $parts.scheme "redis" }}
{{- fail "redis.external.url must start with redis://" }}
{{- end }}
{{- if $parts.userinfo }}
{{- fail "redis.external.url must not hold credentials: put the password in redis.auth" }}
{{- end }}
{{- printf "redis://%s%s%s" $userinfo $parts.host $parts.path }}
{{- end }}
{{- end }}

{{- define "instaface.mysqlHost" -}}
{{- if .Values.mysql.enabled }}
{{- printf "%s-mysql.%s.svc" (include "instaface.fullname" .) .Release.Namespace }}
{{- else }}
{{- required "mysql.external.host is required when mysql.enabled is false" .Values.mysql.external.host }}
{{- end }}
{{- end }}

{{- define "instaface.mysqlPort" -}}
{{- if .Values.mysql.enabled }}{{ .Values.mysql.port }}{{ else }}{{ .Values.mysql.external.port }}{{ end }}
{{- end }}

{{/*
The seed's connection string. The password is $(DB_PASSWORD), expanded by the kubelet from a
secretKeyRef env var declared before it.
*/}}
{{- define "instaface.connectionString" -}}
{{- printf "server=%s;port=%s;database=%s;user=%s;password=$(DB_PASSWORD)" (include "instaface.mysqlHost" .) (include "instaface.mysqlPort" .) .Values.mysql.auth.database .Values.mysql.auth.username }}
{{- end }}

{{/*
Anti-affinity that prefers one pod per node: (dict "ctx" $ "component" "graphserver").
*/}}
{{- define "instaface.affinity" -}}
{{- if .ctx.Values.affinity }}
{{- toYaml .ctx.Values.affinity }}
{{- else if .ctx.Values.spreadAcrossNodes }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "instaface.componentSelectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}
