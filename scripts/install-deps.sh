#!/usr/bin/env bash
# Installs the system packages the test suites need on a fresh Debian machine (idempotent; run as root).
#   --system-only   only the Debian packages (what `npm run demo` needs), not the Kubernetes test binaries
set -euo pipefail
SYSTEM_ONLY=0
[[ "${1:-}" == "--system-only" ]] && SYSTEM_ONLY=1
export DEBIAN_FRONTEND=noninteractive
PKGS=(iproute2 kmod user-mode-linux tcpdump nftables curl util-linux
  # strongSwan interop (test/interop/strongswan): charon, swanctl, kernel-libipsec, openssl/curve25519/chapoly plugins
  strongswan-charon strongswan-swanctl strongswan-libcharon libcharon-extra-plugins
  libstrongswan-standard-plugins libstrongswan-extra-plugins
  # agent scenarios in UML (test/uml/agent-*): ping, iptables-legacy masquerade (the UML kernel has no nftables ip
  # family), conntrack -F; the agent's MSS clamping uses nftables and falls back to iptables-legacy (xt_TCPMSS) there
  iputils-ping iptables conntrack
  # certificate tests (test/support/certs.ts) make their CAs and certificates with the openssl CLI
  openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Real control-plane binaries for the operator's integration tests (kube-apiserver, etcd, kubectl, helm), built
# once from the Go module proxy into a cache outside the repository; later runs find them there.
# The NAT-T socket option addon (see build-native.sh).
bash "$(dirname "$0")/build-native.sh"

if ((SYSTEM_ONLY == 0)); then
  bash "$(dirname "$0")/build-k8s-tools.sh" >/dev/null
fi
