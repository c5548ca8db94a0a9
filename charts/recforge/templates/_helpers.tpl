{{/* Names: <release>-recforge unless the release name already holds the chart name. */}}
{{- define "recforge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "recforge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: <fullname>-<component>, at most 63 characters. */}}
{{- define "recforge.componentName" -}}
{{- printf "%s-%s" (include "recforge.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "recforge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component (call with dict "root" $ "component" "x"). */}}
{{- define "recforge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recforge.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The standard labels of every object (call with dict "root" $ "component" "x"). */}}
{{- define "recforge.labels" -}}
helm.sh/chart: {{ include "recforge.chart" .root }}
{{ include "recforge.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: recforge
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* repository[:tag][@digest] of an image block; the tag defaults to the appVersion. */}}
{{- define "recforge.imageRef" -}}
{{- $ref := printf "%s:%s" .image.repository (.image.tag | default .appVersion | toString) -}}
{{- if .image.digest -}}{{- $ref = printf "%s@%s" $ref .image.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "recforge.image" -}}
{{- include "recforge.imageRef" (dict "image" .Values.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* Pod-level security: non-root, RuntimeDefault seccomp, no service account token. */}}
{{- define "recforge.podSecurity" -}}
automountServiceAccountToken: false
{{ include "recforge.podSecurityContext" . }}
{{- end -}}

{{/* The pod security context and pull secrets, for pods that set their own token policy. */}}
{{- define "recforge.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.securityContext.runAsUser }}
  runAsGroup: {{ .Values.securityContext.runAsGroup }}
  fsGroup: {{ .Values.securityContext.fsGroup }}
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Container-level security: read-only root, no escalation, every capability dropped. */}}
{{- define "recforge.containerSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.securityContext.runAsUser }}
  runAsGroup: {{ .Values.securityContext.runAsGroup }}
  allowPrivilegeEscalation: false
  privileged: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* Writable scratch space under a read-only root: /tmp holds HOME and the caches. */}}
{{- define "recforge.scratchEnv" -}}
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/cache
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- end -}}

{{- define "recforge.scratchMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "recforge.scratchVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end -}}

{{/* Where the Feast repo lives in the image, and the cluster feature_store.yaml over it. */}}
{{- define "recforge.featureRepo" -}}/opt/recforge/feature_repo{{- end -}}

{{- define "recforge.feastConfigMount" -}}
- name: feast-config
  mountPath: {{ include "recforge.featureRepo" . }}/feature_store.yaml
  subPath: feature_store.yaml
  readOnly: true
{{- end -}}

{{/* Redis: the address, the Secret and key holding its password. */}}
{{- define "recforge.redisHost" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s.%s.svc" (include "recforge.componentName" (dict "root" . "component" "redis")) .Release.Namespace -}}
{{- else -}}
{{- required "externalRedis.host is required when redis.enabled is false" .Values.externalRedis.host -}}
{{- end -}}
{{- end -}}

{{- define "recforge.redisPort" -}}
{{- if .Values.redis.enabled -}}6379{{- else -}}{{ .Values.externalRedis.port }}{{- end -}}
{{- end -}}

{{- define "recforge.redisSecretName" -}}
{{- if .Values.redis.enabled -}}
{{- .Values.redis.auth.existingSecret | default (include "recforge.componentName" (dict "root" . "component" "redis")) -}}
{{- else -}}
{{- required "externalRedis.existingSecret is required when redis.enabled is false" .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "recforge.redisSecretKey" -}}
{{- if .Values.redis.enabled -}}{{ .Values.redis.auth.existingSecretKey }}{{- else -}}{{ .Values.externalRedis.existingSecretKey }}{{- end -}}
{{- end -}}

{{/* Feast reads the password only through ${REDIS_PASSWORD} in feature_store.yaml. */}}
{{- define "recforge.redisPasswordEnv" -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "recforge.redisSecretName" . }}
      key: {{ include "recforge.redisSecretKey" . }}
{{- end -}}

{{/* Object-store access: the offline store's location, endpoint and region as env, the
     credentials (when given) as a mounted AWS shared-credentials file. */}}
{{- define "recforge.objectStoreEnv" -}}
- name: RECFORGE_FEATURE_DATA
  value: {{ .Values.feast.offlineStore.uri | quote }}
{{- with .Values.feast.objectStore.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
- name: FEAST_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.feast.objectStore.region }}
- name: AWS_DEFAULT_REGION
  value: {{ . | quote }}
{{- end }}
{{- if .Values.feast.objectStore.existingSecret }}
- name: AWS_SHARED_CREDENTIALS_FILE
  value: /var/run/secrets/recforge/object-store/credentials
{{- end }}
{{- end -}}

{{/* The credentials mount and volume: only with feast.objectStore.existingSecret (callers check). */}}
{{- define "recforge.objectStoreMount" -}}
- name: object-store
  mountPath: /var/run/secrets/recforge/object-store
  readOnly: true
{{- end -}}

{{- define "recforge.objectStoreVolume" -}}
- name: object-store
  secret:
    secretName: {{ .Values.feast.objectStore.existingSecret }}
    items:
      - key: credentials
        path: credentials
{{- end -}}

{{/* checkov skips of a workload, each with its reason (checkov reads "ID=reason", so a
     reason never holds "="). Call with dict "root" $ "redisEnv" bool "token" bool "image" <image values>. */}}
{{- define "recforge.checkovSkips" -}}
{{- $skips := list -}}
{{- if .redisEnv -}}
{{- $skips = append $skips "CKV_K8S_35=Feast reads the Redis password only by ${REDIS_PASSWORD} expansion in feature_store.yaml; it has no password-file setting" -}}
{{- end -}}
{{- if .token -}}
{{- $skips = append $skips "CKV_K8S_38=the rollout controller calls the Kubernetes API (get/patch InferenceServices, create Events) with this token" -}}
{{- end -}}
{{- if not .image.digest -}}
{{- $skips = append $skips (printf "CKV_K8S_43=%s has no digest yet: the digest of an image you build is known only after its push; pin it with the image digest value" .image.repository) -}}
{{- end -}}
{{- range $i, $skip := $skips }}
checkov.io/skip{{ add1 $i }}: {{ $skip | quote }}
{{- end }}
{{- end -}}
