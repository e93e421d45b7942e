// Package charts tests the Helm chart in charts/wirescope and the image it
// names: helm lint, helm template over sets of values, the values schema
// refusing bad values, a policy check of the rendered manifests (RBAC only
// reads, agents not privileged and without an API token, resources on every
// container, a non-root hub), a server-side dry run and a real install and
// upgrade against the kube-apiserver of scripts/k8s-env.sh, and the
// Dockerfile's static build.
//
// The tests find helm and kubectl in $K8S_BIN_DIR or on PATH and the
// apiserver from KUBECONFIG and K8S_TEST_APISERVER; without them they skip
// and say why, unless K8S_ENV_REQUIRED=1 (set by scripts/k8s-env.sh for
// make test and make chart), where a missing piece fails the test.
package charts
