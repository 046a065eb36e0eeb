#!/usr/bin/env bash
# Builds the Kubernetes control plane the integration tests run against (test/k8senv):
# kube-apiserver, kube-controller-manager and kube-scheduler v1.34.4, etcd v3.6.4 (all
# pinned by tools/k8s/go.mod and go.sum) and kwok v0.7.0, into bin/k8s-v1.34.4/ at the
# repository root. A binary already there is not built again, so a warm machine pays
# nothing; a cold one takes about 6 minutes (kube-apiserver alone about 4).
# Point KUBEBUILDER_ASSETS at the folder to run the tests.
set -euo pipefail
cd "$(dirname "$0")"
out="$(cd ../.. && pwd)/bin/k8s-v1.34.4"
version=v1.34.4
kwok=sigs.k8s.io/kwok/cmd/kwok@v0.7.0
# Without these, the binaries report version v0.0.0 and clients may refuse them.
ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34"

all=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
missing=()
for b in "${all[@]}"; do
  [ -x "$out/$b" ] || missing+=("$b")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "k8s: $out holds all of ${all[*]}; nothing to build"
  exit 0
fi
mkdir -p "$out"
export GOWORK=off

for b in "${missing[@]}"; do
  start=$SECONDS
  case "$b" in
    etcd) go build -o "$out/etcd" go.etcd.io/etcd/server/v3 ;;
    kwok) GOBIN="$out" go install "$kwok" ;;
    *) go build -ldflags "$ldflags" -o "$out/$b" "k8s.io/kubernetes/cmd/$b" ;;
  esac
  echo "k8s: built $b in $((SECONDS - start)) s"
done
