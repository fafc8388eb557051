#!/usr/bin/env bash
# Build the local Kubernetes control plane into .tools/bin, from the Go module proxy (go.mod pins
# every version, go.sum checks every module; nothing is downloaded prebuilt):
#   tools/kube   kube-apiserver, kube-scheduler and kube-controller-manager v1.28.9 and etcd
#                v3.5.9 (the server dry-run gate and `simulate`), and kube-pki (their
#                throwaway certificates)
#   tools/kwok   kwok v0.6.1, the kubelet of `simulate`'s fake nodes (its own module graph: it
#                needs newer k8s.io libraries than the control plane is built from)
#   tools/promtool  promtool v2.53.2, Prometheus's checker, at the profiles' Prometheus version
#                (Debian's is built without the Kubernetes service discovery the config uses)
# A version stamp per module skips a build whose binaries are current; Go's module and build
# caches stay in the user's cache folder, so a rebuild on the same machine takes seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.tools/bin"
# Modules in the user's cache folder; compiled packages in Go's own build cache, which is there too.
MODCACHE="${XDG_CACHE_HOME:-$HOME/.cache}/imageflow-gen/go-mod"

say() { printf 'tools: %s\n' "$*" >&2; }

# build NAME DIR LDFLAGS PACKAGE... : build the packages of the module in DIR into .tools/bin.
build() {
    local name=$1 module="$ROOT/tools/$2" ldflags=$3; shift 3
    local stamp; stamp="$ROOT/.tools/.$name-$(cat "$module/go.mod" "$module/go.sum" \
        $(find "$module" -name '*.go' | LC_ALL=C sort) | sha256sum | cut -c1-16)"
    local binaries=("$@") current=1 pkg
    for pkg in "${binaries[@]}"; do [ -x "$BIN/$(basename "$pkg")" ] || current=0; done
    if [ -f "$stamp" ] && [ "$current" = 1 ]; then return; fi
    command -v go >/dev/null || { say "error: go is needed to build $name"; exit 1; }
    mkdir -p "$BIN" "$MODCACHE"
    say "building $(for pkg in "${binaries[@]}"; do printf '%s ' "$(basename "$pkg")"; done)(Go module proxy; minutes the first time)"
    (
        cd "$module"
        export GOMODCACHE="$MODCACHE" GOFLAGS="-mod=readonly -modcacherw" GOTOOLCHAIN=local CGO_ENABLED=0
        go build -trimpath -tags providerless -ldflags "$ldflags" -o "$BIN/" "${binaries[@]}"
    )
    rm -f "$ROOT/.tools/.$name"-*
    touch "$stamp"
}

# The version k8s.io/kubernetes is pinned at, stamped as a release build stamps it.
version=$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$ROOT/tools/kube/go.mod")
pkg=k8s.io/component-base/version
build kube kube \
    "-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$version" | cut -d. -f2) -X $pkg.gitTreeState=clean" \
    ./cmd/kube-apiserver ./cmd/etcd ./cmd/kube-pki ./cmd/kube-scheduler ./cmd/kube-controller-manager
build kwok kwok "" sigs.k8s.io/kwok/cmd/kwok
# Prometheus's 2.x releases are its module's v0.x: v0.53.2 is 2.53.2.
prom=$(awk '$1 == "github.com/prometheus/prometheus" {print $2}' "$ROOT/tools/promtool/go.mod")
build promtool promtool "-X github.com/prometheus/common/version.Version=2.${prom#v0.}" \
    github.com/prometheus/prometheus/cmd/promtool
