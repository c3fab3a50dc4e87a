{{- define "ipsec-mesh.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ipsec-mesh.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ipsec-mesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ipsec-mesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ipsec-mesh
{{- end -}}

{{- define "ipsec-mesh.selector" -}}
app.kubernetes.io/name: {{ include "ipsec-mesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ipsec-mesh.operatorSA" -}}
{{- default (printf "%s-operator" (include "ipsec-mesh.fullname" .)) .Values.serviceAccount.operator.name -}}
{{- end -}}

{{- define "ipsec-mesh.agentSA" -}}
{{- default (printf "%s-agent" (include "ipsec-mesh.fullname" .)) .Values.serviceAccount.agent.name -}}
{{- end -}}

{{- define "ipsec-mesh.agentSecretsRole" -}}
{{- printf "%s-agent-secrets" (include "ipsec-mesh.fullname" .) -}}
{{- end -}}

{{- define "ipsec-mesh.leaseName" -}}
{{- printf "%s-operator" (include "ipsec-mesh.fullname" .) -}}
{{- end -}}

{{- define "ipsec-mesh.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "ipsec-mesh.gatewaySelector" -}}
{{- $parts := list -}}
{{- range $k, $v := .Values.gatewayNodeSelector -}}
{{- $parts = append $parts (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $parts -}}
{{- end -}}
