{{/* Replicas, autoscaling, labels and the service account of one InferenceService component
     (call with dict "root" $ "name" predictor|transformer "labels" {...}). */}}
{{- define "recforge.isvcComponent" -}}
{{- $spec := index .root.Values.inferenceService .name -}}
{{- $where := printf "inferenceService.%s" .name -}}
{{- $knative := eq .root.Values.inferenceService.deploymentMode "Knative" -}}
{{- $metric := $spec.autoscaling.metric | default (ternary "concurrency" "cpu" $knative) -}}
{{- $target := $spec.autoscaling.target | default (ternary 8 80 $knative) -}}
{{- if and $knative (not (has $metric (list "concurrency" "rps"))) -}}
{{- fail (printf "%s.autoscaling.metric: %q needs deploymentMode Standard; Knative scales on concurrency or rps" $where $metric) -}}
{{- end -}}
{{- if and (not $knative) (not (has $metric (list "cpu" "memory"))) -}}
{{- fail (printf "%s.autoscaling.metric: %q needs deploymentMode Knative; Standard (HPA) scales on cpu or memory" $where $metric) -}}
{{- end -}}
{{- if gt (int $spec.minReplicas) (int $spec.maxReplicas) -}}
{{- fail (printf "%s.minReplicas (%v) must not exceed maxReplicas (%v)" $where $spec.minReplicas $spec.maxReplicas) -}}
{{- end -}}
{{- $canary := .root.Values.inferenceService.canary -}}
{{- if and (eq .name "predictor") (ne $canary.trafficPercent nil) $canary.pinPredictorReplicas }}
minReplicas: 1
maxReplicas: 1
{{- else }}
minReplicas: {{ $spec.minReplicas }}
maxReplicas: {{ $spec.maxReplicas }}
{{- end }}
scaleMetric: {{ $metric }}
scaleTarget: {{ $target }}
labels:
  {{- toYaml .labels | nindent 2 }}
{{- with .root.Values.inferenceService.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Flags both serving containers share; KServe appends --model_name and --predictor_host. */}}
{{- define "recforge.serveArgs" -}}
- --host
- 0.0.0.0
- --port
- "8080"
- --model-name
- {{ .Values.model.name }}
- --max-items
- {{ .Values.model.maxItems | quote }}
{{- end -}}

{{- define "recforge.servingPort" -}}
ports:
  - containerPort: 8080
    protocol: TCP
{{- end -}}

{{/* KServe's health endpoints: the server is live at /, the model ready at /v1/models/<name>. */}}
{{- define "recforge.servingProbes" -}}
readinessProbe:
  httpGet:
    path: /v1/models/{{ .model }}
    port: 8080
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /
    port: 8080
  initialDelaySeconds: 30
  periodSeconds: 20
{{- end -}}
