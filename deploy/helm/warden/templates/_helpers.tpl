{{/* Labels on every object of the chart. */}}
{{- define "warden.labels" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: warden
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
warden.dev/environment: {{ .Values.environment }}
warden.dev/phase: {{ .Values.phase }}
{{- end -}}

{{/* What selects the control plane's pods (the rendered egress rules of
investigation pods use app.kubernetes.io/name). */}}
{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
