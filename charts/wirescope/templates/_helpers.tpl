{{/*
The chart's name, or nameOverride.
*/}}
{{- define "wirescope.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: fullnameOverride, else the release name, with the
chart's name appended unless the release name contains it. Names built on it
add a suffix of at most 6 characters ("-agent"), so it is cut at 57.
*/}}
{{- define "wirescope.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "wirescope.hubName" -}}
{{- printf "%s-hub" (include "wirescope.fullname" .) }}
{{- end }}

{{- define "wirescope.agentName" -}}
{{- printf "%s-agent" (include "wirescope.fullname" .) }}
{{- end }}

{{- define "wirescope.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels every object carries.
*/}}
{{- define "wirescope.labels" -}}
helm.sh/chart: {{ include "wirescope.chart" . }}
{{ include "wirescope.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wirescope
{{- end }}

{{- define "wirescope.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wirescope.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the hub's and the agents' pods.
*/}}
{{- define "wirescope.hubSelectorLabels" -}}
{{ include "wirescope.selectorLabels" . }}
app.kubernetes.io/component: hub
{{- end }}

{{- define "wirescope.agentSelectorLabels" -}}
{{ include "wirescope.selectorLabels" . }}
app.kubernetes.io/component: agent
{{- end }}

{{/*
The image: global.imageRegistry or image.registry, the repository, then the
digest or the tag (the chart's appVersion by default).
*/}}
{{- define "wirescope.image" -}}
{{- $registry := .Values.global.imageRegistry | default .Values.image.registry }}
{{- $repo := .Values.image.repository }}
{{- if $registry }}{{ $repo = printf "%s/%s" $registry $repo }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "wirescope.imagePullSecrets" -}}
{{- $secrets := concat .Values.global.imagePullSecrets .Values.image.pullSecrets }}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
  - name: {{ .name | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Secret holding mcp-token and agent-token.
*/}}
{{- define "wirescope.secretName" -}}
{{- .Values.secret.existingSecret | default (include "wirescope.fullname" .) }}
{{- end }}

{{/*
The generated Secret's data (base64), as YAML: the tokens of the Secret
already in the cluster when there is one (so that upgrades keep them), new
random ones otherwise. Computed once per render and kept in .Values, which
every template of the render shares, so that the Secret and the pods'
checksum see the same tokens.
*/}}
{{- define "wirescope.tokenData" -}}
{{- if not (hasKey .Values "__wirescopeTokenData") }}
{{- $data := dict "mcp-token" (randAlphaNum 48 | b64enc) "agent-token" (randAlphaNum 48 | b64enc) }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "wirescope.fullname" .) }}
{{- if and $existing $existing.data }}
{{- range $key := list "mcp-token" "agent-token" }}
{{- if index $existing.data $key }}
{{- $_ := set $data $key (index $existing.data $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- $_ := set .Values "__wirescopeTokenData" $data }}
{{- end }}
{{- toYaml (index .Values "__wirescopeTokenData") }}
{{- end }}

{{/*
A checksum of the tokens, for the pods' annotation: a changed token rolls
them. For an existing Secret it is its data as the cluster has it now.
*/}}
{{- define "wirescope.secretChecksum" -}}
{{- if .Values.secret.existingSecret }}
{{- $s := lookup "v1" "Secret" .Release.Namespace .Values.secret.existingSecret }}
{{- (get $s "data") | default dict | toYaml | sha256sum }}
{{- else }}
{{- include "wirescope.tokenData" . | sha256sum }}
{{- end }}
{{- end }}

{{/*
The agents' --max-bytes: maxBytesPercent of sizeGiB.
*/}}
{{- define "wirescope.agentMaxBytes" -}}
{{- $s := .Values.agent.storage }}
{{- div (mul (int64 $s.sizeGiB) 1073741824 (int64 $s.maxBytesPercent)) 100 }}
{{- end }}

{{/*
The agent's capabilities, beyond the drop of ALL (values.yaml says why each).
*/}}
{{- define "wirescope.agentCapabilities" -}}
{{- $caps := list "NET_RAW" }}
{{- if .Values.agent.attribution.enabled }}
{{- $caps = concat $caps (list "BPF" "PERFMON" "NET_ADMIN") }}
{{- if .Values.agent.attribution.seedOtherNetworkNamespaces }}
{{- $caps = concat $caps (list "SYS_ADMIN" "SYS_PTRACE") }}
{{- end }}
{{- end }}
{{- $caps = concat $caps .Values.agent.extraCapabilities | uniq }}
{{- toYaml $caps }}
{{- end }}
