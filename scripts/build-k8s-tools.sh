#!/usr/bin/env bash
# Builds the real control-plane binaries the operator's integration tests run against, into a cache directory
# outside the repository: kube-apiserver and kubectl (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3),
# helm (helm.sh/helm/v3). Test infrastructure only: the product is TypeScript.
#
# Idempotent: a tool whose binary and version stamp are already in the cache is skipped.
#   IPSEC_MESH_CACHE   cache root (default /var/cache/ipsec-mesh); binaries go to $IPSEC_MESH_CACHE/bin
#   K8S_VERSION ETCD_VERSION HELM_VERSION   override the pinned versions
#   BUILD_NICE         niceness for the compiler (default 10)
# Prints the bin directory on its last line.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
CACHE=${IPSEC_MESH_CACHE:-/var/cache/ipsec-mesh}
BIN="$CACHE/bin"
WORK="$CACHE/build"
NICE=${BUILD_NICE:-10}
if ! command -v go >/dev/null 2>&1; then
  [[ -x /usr/local/go/bin/go ]] && export PATH="/usr/local/go/bin:$PATH" || { echo "build-k8s-tools: go not found" >&2; exit 1; }
fi
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
mkdir -p "$BIN" "$WORK"

log() { echo "[build-k8s-tools] $*" >&2; }
have() { [[ -x "$BIN/$1" && -f "$BIN/.$1.version" && "$(cat "$BIN/.$1.version")" == "$2" ]]; }
stamp() { echo "$2" >"$BIN/.$1.version"; }
gobuild() { nice -n "$NICE" go build -trimpath "$@"; }

start=$SECONDS

# --- kube-apiserver + kubectl: one module so the shared packages compile once --------------------------------
if ! have kube-apiserver "$K8S_VERSION" || ! have kubectl "$K8S_VERSION"; then
  log "building kube-apiserver and kubectl $K8S_VERSION"
  d="$WORK/kubernetes-$K8S_VERSION"
  mkdir -p "$d"
  (
    cd "$d"
    if [[ ! -f go.mod.done ]]; then
      rm -f go.mod go.sum
      go mod init ipsec-mesh.local/k8s-tools >/dev/null 2>&1
      # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/src/...;
      # a consumer must replace them with the published modules of the same release (v1.X.Y -> v0.X.Y).
      kmod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
      [[ -f "$kmod" ]] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
      staging="v0.${K8S_VERSION#v1.}"
      grep -oE 'k8s\.io/[A-Za-z0-9._-]+ => \./staging/src/k8s\.io/[A-Za-z0-9._-]+' "$kmod" |
        awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}' >>go.mod
      go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION"
      touch go.mod.done
    fi
    minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    ldf="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    gobuild -ldflags "$ldf" -o "$BIN/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  )
  stamp kube-apiserver "$K8S_VERSION"
  stamp kubectl "$K8S_VERSION"
  log "kube-apiserver + kubectl done after $((SECONDS - start)) s"
fi

# --- etcd ----------------------------------------------------------------------------------------------------
if ! have etcd "$ETCD_VERSION"; then
  log "building etcd $ETCD_VERSION"
  d="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$d"
  (
    cd "$d"
    if [[ ! -f go.mod.done ]]; then
      rm -f go.mod go.sum
      go mod init ipsec-mesh.local/etcd >/dev/null 2>&1
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
      touch go.mod.done
    fi
    gobuild -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
  )
  stamp etcd "$ETCD_VERSION"
  log "etcd done after $((SECONDS - start)) s"
fi

# --- helm ----------------------------------------------------------------------------------------------------
if ! have helm "$HELM_VERSION"; then
  log "building helm $HELM_VERSION"
  d="$WORK/helm-$HELM_VERSION"
  mkdir -p "$d"
  (
    cd "$d"
    if [[ ! -f go.mod.done ]]; then
      rm -f go.mod go.sum
      go mod init ipsec-mesh.local/helm >/dev/null 2>&1
      go get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
      touch go.mod.done
    fi
    gobuild -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" -o "$BIN/helm" helm.sh/helm/v3/cmd/helm
  )
  stamp helm "$HELM_VERSION"
  log "helm done after $((SECONDS - start)) s"
fi

log "all tools present in $BIN ($((SECONDS - start)) s)"
echo "$BIN"
