#!/usr/bin/env bash
# Build the local Kubernetes control plane the server dry-run gate starts, into .tools/bin:
# kube-apiserver v1.28.9 and etcd v3.5.9 from the Go module proxy (tools/kube/go.mod pins them,
# go.sum checks every module), and kube-pki (its throwaway certificates). Nothing is downloaded
# prebuilt. A version stamp skips the build when the binaries are current; Go's module and build
# caches stay in the user's cache folder, so a rebuild on the same machine takes seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/.tools/bin"
MODULE="$ROOT/tools/kube"
# Modules in the user's cache folder; compiled packages in Go's own build cache, which is there too.
MODCACHE="${XDG_CACHE_HOME:-$HOME/.cache}/imageflow-gen/go-mod"
STAMP="$ROOT/.tools/.kube-$(sha256sum "$MODULE/go.mod" "$MODULE/go.sum" "$MODULE"/cmd/*/main.go | sha256sum | cut -c1-16)"

say() { printf 'tools: %s\n' "$*" >&2; }

if [ -f "$STAMP" ] && [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/etcd" ] && [ -x "$BIN/kube-pki" ]; then
    exit 0
fi
command -v go >/dev/null || { say "error: go is needed to build kube-apiserver and etcd"; exit 1; }
mkdir -p "$BIN" "$MODCACHE"
say "building kube-apiserver, etcd and kube-pki (Go module proxy; about 10 minutes the first time)"
(
    cd "$MODULE"
    export GOMODCACHE="$MODCACHE" GOFLAGS="-mod=readonly -modcacherw" \
           GOTOOLCHAIN=local CGO_ENABLED=0
    # The version k8s.io/kubernetes is pinned at, stamped as a release build stamps it.
    version=$(awk '$1 == "k8s.io/kubernetes" {print $2}' go.mod)
    minor=$(echo "$version" | cut -d. -f2)
    pkg=k8s.io/component-base/version
    go build -trimpath -tags providerless \
        -ldflags "-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
        -o "$BIN/" ./cmd/kube-apiserver ./cmd/etcd ./cmd/kube-pki
)
rm -f "$ROOT"/.tools/.kube-*
touch "$STAMP"
