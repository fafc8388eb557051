//go:build tools

// kwok, pinned by this module's go.mod and go.sum; tools/kube.sh builds sigs.k8s.io/kwok/cmd/kwok.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
