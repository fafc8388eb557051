// kube-controller-manager, built from k8s.io/kubernetes at the version go.mod pins (the
// simulation's controllers: deployments, statefulsets, endpoints, PV binding, disruption, HPA).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
