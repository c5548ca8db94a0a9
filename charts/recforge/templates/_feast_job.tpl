{{/* The pod template of a Feast job (apply, materialize): call with dict "root" $ "component"
     "x" "resources" {...} "args" [...] "shell" bool. */}}
{{- define "recforge.feastJobPod" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "recforge.selectorLabels" (dict "root" $root "component" .component) | nindent 4 }}
    recforge.io/redis-client: "true"
spec:
  restartPolicy: Never
  {{- include "recforge.podSecurity" $root | nindent 2 }}
  containers:
    - name: feast
      image: {{ include "recforge.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      {{- if .shell }}
      command: [/bin/sh, -c]
      {{- else }}
      command: [feast]
      {{- end }}
      args:
        {{- toYaml .args | nindent 8 }}
      env:
        {{- include "recforge.scratchEnv" $root | nindent 8 }}
        {{- include "recforge.redisPasswordEnv" $root | nindent 8 }}
        {{- include "recforge.objectStoreEnv" $root | nindent 8 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      {{- include "recforge.containerSecurity" $root | nindent 6 }}
      volumeMounts:
        {{- include "recforge.scratchMount" $root | nindent 8 }}
        {{- include "recforge.feastConfigMount" $root | nindent 8 }}
        {{- if $root.Values.feast.objectStore.existingSecret }}
        {{- include "recforge.objectStoreMount" $root | nindent 8 }}
        {{- end }}
  volumes:
    {{- include "recforge.scratchVolume" $root | nindent 4 }}
    - name: feast-config
      configMap:
        name: {{ include "recforge.componentName" (dict "root" $root "component" "feast") }}
    {{- if $root.Values.feast.objectStore.existingSecret }}
    {{- include "recforge.objectStoreVolume" $root | nindent 4 }}
    {{- end }}
{{- end -}}
