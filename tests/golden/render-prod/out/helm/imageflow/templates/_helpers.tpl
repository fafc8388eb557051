{{/*
Helpers of the imageflow chart. The chart's values are the topology itself (one profile of
imageflow-gen, validated by values.schema.json); these helpers derive from it what the
generator's plan derives, so that `helm template` and `kubectl kustomize` give the same objects.
*/}}

{{/* imageflow.name: a name cut to the 63 characters of a DNS-1123 label. Usage: include "imageflow.name" "minio" */}}
{{- define "imageflow.name" -}}
{{- . | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* imageflow.commonLabels: the labels every object carries. Usage: include "imageflow.commonLabels" . */}}
{{- define "imageflow.commonLabels" -}}
app.kubernetes.io/managed-by: imageflow-gen
app.kubernetes.io/part-of: imageflow
{{- end -}}

{{/* imageflow.labels: standard labels of a workload and its pods; `app` is what selectors match.
Usage: include "imageflow.labels" (dict "name" "minio" "component" "storage" "extra" (dict "tier" "processing")) */}}
{{- define "imageflow.labels" -}}
{{- $labels := dict "app" (include "imageflow.name" .name) "app.kubernetes.io/name" (include "imageflow.name" .name) "app.kubernetes.io/component" .component "app.kubernetes.io/part-of" "imageflow" "app.kubernetes.io/managed-by" "imageflow-gen" -}}
{{- toYaml (merge $labels (.extra | default dict)) -}}
{{- end -}}

{{/* imageflow.minor: the Kubernetes minor version of the K3s release, "1.28". Usage: include "imageflow.minor" . */}}
{{- define "imageflow.minor" -}}
{{- regexFind "^v[0-9]+\\.[0-9]+" .Values.cluster.version | trimPrefix "v" -}}
{{- end -}}

{{/* imageflow.podSecurity: pod part of Pod Security "restricted". Usage: include "imageflow.podSecurity" 10001 */}}
{{- define "imageflow.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* imageflow.containerSecurity: container part of "restricted", read-only root. Usage: include "imageflow.containerSecurity" . */}}
{{- define "imageflow.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
  - ALL
{{- end -}}

{{/* imageflow.resources: requests and limits, GPUs in limits. Usage: include "imageflow.resources" (dict "res" .resources "gpu" 1) */}}
{{- define "imageflow.resources" -}}
requests:
  cpu: {{ .res.requests.cpu | toString | quote }}
  memory: {{ .res.requests.memory | quote }}
limits:
  cpu: {{ .res.limits.cpu | toString | quote }}
  memory: {{ .res.limits.memory | quote }}
  {{- if .gpu }}
  nvidia.com/gpu: {{ .gpu }}
  {{- end }}
{{- end -}}

{{/* imageflow.httpProbe. Usage: include "imageflow.httpProbe" (dict "path" "/" "port" "http" "delay" 5) */}}
{{- define "imageflow.httpProbe" -}}
httpGet:
  path: {{ .path | quote }}
  port: {{ if kindIs "string" .port }}{{ .port | quote }}{{ else }}{{ .port }}{{ end }}
initialDelaySeconds: {{ .delay }}
periodSeconds: 10
timeoutSeconds: 3
failureThreshold: 3
{{- end -}}

{{/* imageflow.grpcProbe: the gRPC health protocol, probed by the kubelet. Usage: include "imageflow.grpcProbe" (dict "port" 8080 "delay" 5) */}}
{{- define "imageflow.grpcProbe" -}}
grpc:
  port: {{ .port }}
initialDelaySeconds: {{ .delay }}
periodSeconds: 10
timeoutSeconds: 3
failureThreshold: 3
{{- end -}}

{{/* imageflow.tmpVolume / imageflow.tmpMount: scratch space for a read-only root file system. */}}
{{- define "imageflow.tmpVolume" -}}
name: tmp
emptyDir:
  sizeLimit: 256Mi
{{- end -}}
{{- define "imageflow.tmpMount" -}}
name: tmp
mountPath: /tmp
{{- end -}}

{{/* imageflow.dns: a Service's cluster DNS name. Usage: include "imageflow.dns" (list "minio" "imageflow-storage") */}}
{{- define "imageflow.dns" -}}
{{- index . 0 }}.{{ index . 1 }}.svc.cluster.local
{{- end -}}

{{/* imageflow.clusterListener: the Kafka listener on the VM's private network ("" if none). Usage: include "imageflow.clusterListener" . */}}
{{- define "imageflow.clusterListener" -}}
{{- $found := "" -}}
{{- range .Values.messaging.kafka.listeners -}}
{{- if and (not $found) (eq .network "private") }}{{ $found = .name }}{{ end -}}
{{- end -}}
{{- $found -}}
{{- end -}}

{{/* imageflow.kafkaVmAddress: the private address of the Kafka VM. Usage: include "imageflow.kafkaVmAddress" . */}}
{{- define "imageflow.kafkaVmAddress" -}}
{{- $vm := .Values.messaging.kafka.vm -}}
{{- range .Values.vms }}{{ if eq .name $vm }}{{ .address }}{{ end }}{{ end -}}
{{- end -}}

{{/* imageflow.bootstrap: the Kafka bootstrap servers by the in-cluster name. Usage: include "imageflow.bootstrap" . */}}
{{- define "imageflow.bootstrap" -}}
{{- $kafka := .Values.messaging.kafka -}}
{{- $listener := include "imageflow.clusterListener" . -}}
{{- $host := include "imageflow.dns" (list $kafka.cluster_service $kafka.cluster_namespace) -}}
{{- $servers := list -}}
{{- if $listener }}{{ range $kafka.brokers }}{{ $servers = append $servers (printf "%s:%v" $host (index .ports $listener)) }}{{ end }}{{ end -}}
{{- join "," $servers -}}
{{- end -}}

{{/* imageflow.otlpEndpoint: where workloads send traces. Usage: include "imageflow.otlpEndpoint" . */}}
{{- define "imageflow.otlpEndpoint" -}}
{{- $agent := .Values.observability.otel_agent -}}
http://{{ include "imageflow.dns" (list $agent.name $agent.namespace) }}:{{ $agent.ports.otlp_grpc }}
{{- end -}}

{{/* imageflow.serviceEnv: where a cluster workload finds MinIO, Kafka and the OTel agent. Usage: include "imageflow.serviceEnv" . */}}
{{- define "imageflow.serviceEnv" -}}
{{- $minio := .Values.storage.minio -}}
- name: MINIO_ENDPOINT
  value: {{ printf "%s:%v" (include "imageflow.dns" (list "minio" $minio.namespace)) $minio.port | quote }}
- name: MINIO_REGION
  value: {{ $minio.region | quote }}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "imageflow.bootstrap" . | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ include "imageflow.otlpEndpoint" . | quote }}
{{- end -}}

{{/* imageflow.claimTemplates: MinIO's volume claim templates: data, or data0, data1, ... Usage: include "imageflow.claimTemplates" . | fromYamlArray */}}
{{- define "imageflow.claimTemplates" -}}
{{- $minio := .Values.storage.minio -}}
{{- if eq (int $minio.drives_per_node) 1 }}
- data
{{- else }}
{{- range $d := until (int $minio.drives_per_node) }}
- {{ printf "data%d" $d }}
{{- end }}
{{- end }}
{{- end -}}

{{/* imageflow.flows: every real flow the network policies must allow, as a YAML list of
{name, sourceNs, sourcePods, destNs, destPods, ports, cidrs}; the generator's plan derives the
same list. Ports are zero-padded decimal strings (so sortAlpha sorts them as numbers); read
them back with `atoi`. Usage: include "imageflow.flows" . | fromYamlArray */}}
{{- define "imageflow.flows" -}}
{{- $v := .Values -}}
{{- $minio := $v.storage.minio -}}
{{- $obs := $v.observability -}}
{{- $backend := $v.edge.backend_api -}}
{{- $inCluster := has "cluster" $backend.runs_on -}}
{{- $pns := $v.processing.namespace -}}
{{- $pports := list -}}
{{- range $v.processing.services }}{{ $pports = append $pports (printf "%05d" (int .port)) }}{{ end -}}
{{- $pports = $pports | uniq | sortAlpha -}}
{{- $flows := list -}}
{{- range $key := list "api_gateway" "backend_api" "web_ui" -}}
{{- $c := index $v.edge $key -}}
{{- if and (has "cluster" $c.runs_on) (ne $key "api_gateway") -}}
{{- $flows = append $flows (dict "name" (printf "gateway-to-%s" $c.name) "sourceNs" "istio-system" "sourcePods" (dict "istio" "ingressgateway") "destNs" $c.namespace "destPods" (dict "app" $c.name) "ports" (list (printf "%05d" (int $c.port)))) -}}
{{- end -}}
{{- end -}}
{{- if and $inCluster $pports -}}
{{- $flows = append $flows (dict "name" "backend-to-processing" "sourceNs" $backend.namespace "sourcePods" (dict "app" $backend.name) "destNs" $pns "destPods" (dict "tier" "processing") "ports" $pports) -}}
{{- end -}}
{{- if $pports -}}
{{- $flows = append $flows (dict "name" "processing-to-minio" "sourceNs" $pns "sourcePods" (dict "tier" "processing") "destNs" $minio.namespace "destPods" (dict "app" "minio") "ports" (list (printf "%05d" (int $minio.port)))) -}}
{{- end -}}
{{- if $inCluster -}}
{{- $flows = append $flows (dict "name" "backend-to-minio" "sourceNs" $backend.namespace "sourcePods" (dict "app" $backend.name) "destNs" $minio.namespace "destPods" (dict "app" "minio") "ports" (list (printf "%05d" (int $minio.port)))) -}}
{{- end -}}
{{- $flows = append $flows (dict "name" "storage-to-minio" "sourceNs" $minio.namespace "sourcePods" (dict) "destNs" $minio.namespace "destPods" (dict "app" "minio") "ports" (list (printf "%05d" (int $minio.port)))) -}}
{{- $listener := include "imageflow.clusterListener" . -}}
{{- $kports := list -}}
{{- if $listener }}{{ range $v.messaging.kafka.brokers }}{{ $kports = append $kports (printf "%05d" (int (index .ports $listener))) }}{{ end }}{{ end -}}
{{- $kports = $kports | sortAlpha -}}
{{- $kcidr := list (printf "%s/32" (include "imageflow.kafkaVmAddress" .)) -}}
{{- if and $kports $pports -}}
{{- $flows = append $flows (dict "name" "processing-to-kafka" "sourceNs" $pns "sourcePods" (dict "tier" "processing") "destNs" "" "destPods" (dict) "ports" $kports "cidrs" $kcidr) -}}
{{- end -}}
{{- if and $kports $inCluster -}}
{{- $flows = append $flows (dict "name" "backend-to-kafka" "sourceNs" $backend.namespace "sourcePods" (dict "app" $backend.name) "destNs" "" "destPods" (dict) "ports" $kports "cidrs" $kcidr) -}}
{{- end -}}
{{- $agent := $obs.otel_agent -}}
{{- range $v.namespaces -}}
{{- if ne .name $agent.namespace -}}
{{- $flows = append $flows (dict "name" (printf "%s-to-otel-agent" .name) "sourceNs" .name "sourcePods" (dict) "destNs" $agent.namespace "destPods" (dict "app" $agent.name) "ports" (list (printf "%05d" (int $agent.ports.otlp_grpc)) (printf "%05d" (int $agent.ports.otlp_http)))) -}}
{{- end -}}
{{- end -}}
{{- $flows = append $flows (dict "name" "otel-agent-to-tempo" "sourceNs" $agent.namespace "sourcePods" (dict "app" $agent.name) "destNs" $obs.tempo.namespace "destPods" (dict "app" $obs.tempo.name) "ports" (list (printf "%05d" (int $obs.tempo.ports.otlp_grpc)))) -}}
{{- $masters := list -}}
{{- range $v.cluster.master_nodes }}{{ $masters = append $masters (printf "%s/32" .ip) }}{{ end -}}
{{- $flows = append $flows (dict "name" "otel-agent-to-api-server" "sourceNs" $agent.namespace "sourcePods" (dict "app" $agent.name) "destNs" "" "destPods" (dict) "ports" (list "06443") "cidrs" ($masters | sortAlpha)) -}}
{{- toYaml $flows -}}
{{- end -}}

{{/* imageflow.spreadOverNodes: prefer one pod of the app per node. Usage: include "imageflow.spreadOverNodes" "minio" */}}
{{- define "imageflow.spreadOverNodes" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
  - weight: 100
    podAffinityTerm:
      labelSelector:
        matchLabels:
          app: {{ . }}
      topologyKey: kubernetes.io/hostname
{{- end -}}

{{- /* The Deployments of a processing service under its release strategy, as JSON
{"items": [{name, extra (pod labels), image, replicas, autoscaled}]}; mirrors
plan/processing.py variants(). rolling: the service; blue-green: -blue and -green (label
color); canary: the stable Deployment (track: stable) and -canary (track: canary). */ -}}
{{- define "imageflow.variants" -}}
{{- $svc := . -}}
{{- $r := $svc.release -}}
{{- $scaled := not (empty $svc.autoscaling) -}}
{{- $items := list -}}
{{- if eq $r.strategy "blue-green" -}}
{{- $items = append $items (dict "name" (printf "%s-blue" $svc.name) "extra" (dict "color" "blue") "image" ($r.blue_image | default $svc.image) "replicas" $svc.replicas "autoscaled" $scaled) -}}
{{- $items = append $items (dict "name" (printf "%s-green" $svc.name) "extra" (dict "color" "green") "image" ($r.green_image | default $svc.image) "replicas" $svc.replicas "autoscaled" $scaled) -}}
{{- else if eq $r.strategy "canary" -}}
{{- $items = append $items (dict "name" $svc.name "extra" (dict "track" "stable") "image" $svc.image "replicas" $svc.replicas "autoscaled" $scaled) -}}
{{- $items = append $items (dict "name" (printf "%s-canary" $svc.name) "extra" (dict "track" "canary") "image" ($r.canary_image | default $svc.image) "replicas" $r.canary_replicas "autoscaled" false) -}}
{{- else -}}
{{- $items = append $items (dict "name" $svc.name "extra" (dict) "image" $svc.image "replicas" $svc.replicas "autoscaled" $scaled) -}}
{{- end -}}
{{- dict "items" $items | toJson -}}
{{- end -}}

{{- /* imageflow.syncWave: the Argo CD sync wave of a kind, so that namespaces, storage, config
and Secrets are in place before the workloads that need them, and routes come last. Mirrors
plan/common.py SYNC_WAVES. Usage: include "imageflow.syncWave" "Deployment" */ -}}
{{- define "imageflow.syncWave" -}}
{{- $waves := dict "Namespace" "-3" "StorageClass" "-3" "RuntimeClass" "-3" "ServiceAccount" "-2" "ClusterRole" "-2" "ClusterRoleBinding" "-2" "NetworkPolicy" "-2" "PersistentVolume" "-2" "ConfigMap" "-2" "ExternalSecret" "-2" "SealedSecret" "-2" "Service" "-2" "EndpointSlice" "-2" "StatefulSet" "-1" "DaemonSet" "-1" "Job" "0" "Deployment" "0" "HorizontalPodAutoscaler" "0" "PodDisruptionBudget" "0" "Gateway" "1" "VirtualService" "1" "DestinationRule" "1" -}}
argocd.argoproj.io/sync-wave: {{ required (printf "no sync wave for kind %s" .) (index $waves .) | quote }}
{{- end -}}
