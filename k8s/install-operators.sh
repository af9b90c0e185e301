#!/usr/bin/env bash
# Installs the operators the data-sync chart builds on, at pinned versions, into the cluster
# of the current kubeconfig (KUBECONFIG is honoured):
#
#   Strimzi               Kafka clusters, topics and users          namespace strimzi
#   CloudNativePG         PostgreSQL clusters and backups           namespace cnpg-system
#   kube-prometheus-stack Prometheus Operator, Prometheus, Grafana  namespace monitoring
#   ingress-nginx         the ingress controller                    namespace ingress-nginx
#
# The namespaces are the ones the chart's NetworkPolicies admit (networkPolicy.* values).
# Running it again upgrades in place to the pinned versions.
#
# Usage: k8s/install-operators.sh [--kind]
#   --kind  for a cluster made from k8s/kind-cluster.yaml: the ingress controller listens on
#           the node's ports 80 and 443, and the parts of the monitoring stack kind cannot
#           run (node-exporter needs a shared root mount) or a laptop needs not are left out.
set -euo pipefail

STRIMZI_VERSION=0.49.1
CNPG_VERSION=1.29.2
KUBE_PROMETHEUS_STACK_VERSION=81.6.2
INGRESS_NGINX_VERSION=4.14.1

kind=false
case "${1:-}" in
    --kind) kind=true ;;
    "") ;;
    *) echo "usage: $0 [--kind]" >&2; exit 2 ;;
esac
for tool in kubectl helm; do
    if ! command -v "$tool" >/dev/null; then
        echo "install-operators.sh: $tool is needed on PATH" >&2
        exit 1
    fi
done

echo "== Strimzi $STRIMZI_VERSION"
# Watching every namespace lets the chart live in a namespace of its own choosing.
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
    --version "$STRIMZI_VERSION" --namespace strimzi --create-namespace \
    --set watchAnyNamespace=true --wait --timeout 10m

echo "== CloudNativePG $CNPG_VERSION"
# The project's release manifest; server-side apply because its CRDs exceed the size of the
# annotation a client-side apply keeps.
manifest="https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg"
manifest+="/release-${CNPG_VERSION%.*}/releases/cnpg-${CNPG_VERSION}.yaml"
kubectl apply --server-side --force-conflicts -f "$manifest"
kubectl rollout status deployment/cnpg-controller-manager --namespace cnpg-system --timeout 10m

echo "== kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION"
monitoring=(
    # Pick up ServiceMonitors, PrometheusRules and dashboards of every namespace, not only
    # those labelled for this Helm release.
    --set prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues=false
    --set prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues=false
    --set prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false
    --set grafana.sidecar.dashboards.searchNamespace=ALL
)
if $kind; then
    monitoring+=(--set nodeExporter.enabled=false --set alertmanager.enabled=false)
fi
helm upgrade --install kube-prometheus-stack kube-prometheus-stack \
    --repo https://prometheus-community.github.io/helm-charts \
    --version "$KUBE_PROMETHEUS_STACK_VERSION" --namespace monitoring --create-namespace \
    "${monitoring[@]}" --wait --timeout 15m

echo "== ingress-nginx $INGRESS_NGINX_VERSION"
# Expanded as ${ingress[@]+...} below: bash 3.2 (macOS) calls an empty array unbound.
ingress=()
if $kind; then
    # Listen on the node's own ports 80 and 443, which kind-cluster.yaml maps to this machine.
    ingress=(
        --set controller.hostPort.enabled=true
        --set controller.service.type=NodePort
        --set-string controller.nodeSelector.ingress-ready=true
    )
fi
helm upgrade --install ingress-nginx ingress-nginx \
    --repo https://kubernetes.github.io/ingress-nginx \
    --version "$INGRESS_NGINX_VERSION" --namespace ingress-nginx --create-namespace \
    ${ingress[@]+"${ingress[@]}"} --wait --timeout 10m

echo "== operators ready"
