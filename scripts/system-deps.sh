#!/usr/bin/env bash
# Installs the Debian packages mdocker needs, when missing: as root with apt-get, else
# it stops with one line naming the exact command. Run by `npm install` (preinstall)
# with the runtime's packages, and by `npm test` with "--test" for what only the tests
# need: the browser, clang-format for the lint step, QEMU and mkfs.ext4 for the cgroup
# v2 VM, a registry and skopeo for the image tests, nft and ip for the egress tests,
# HAProxy and kubectl for the cluster tests; with "--images", mmdebstrap for `npm run
# build:images` (the debian image), and nothing else.
set -euo pipefail

packages=()
need() { # need PACKAGE PATH: PACKAGE is missing when PATH does not exist
  [ -e "$2" ] || packages+=("$1")
}
mode=${1:-}
case $mode in
  "" | --test)
    need busybox-static /bin/busybox
    need libseccomp-dev /usr/include/seccomp.h
    need libnftables-dev /usr/include/nftables/libnftables.h
    need make /usr/bin/make
    need g++ /usr/bin/g++
    need python3 /usr/bin/python3
    need pkg-config /usr/bin/pkg-config
    ;;
  --images)
    need mmdebstrap /usr/bin/mmdebstrap
    ;;
  *)
    echo "usage: scripts/system-deps.sh [--test | --images]" >&2
    exit 2
    ;;
esac
if [ "$mode" = "--test" ]; then
  need chromium /usr/bin/chromium
  need clang-format /usr/bin/clang-format
  need qemu-system-x86 /usr/bin/qemu-system-x86_64
  need e2fsprogs /sbin/mkfs.ext4
  need nftables /usr/sbin/nft
  need iproute2 /usr/sbin/ip
  # The image tests' registry, skopeo to push to it and make docker-archives, zstd layers,
  # a self-signed certificate.
  need docker-registry /usr/bin/docker-registry
  need skopeo /usr/bin/skopeo
  need zstd /usr/bin/zstd
  need openssl /usr/bin/openssl
  # The cluster tests' HAProxy; kubectl renders deploy/kubernetes (its kustomize).
  need haproxy /usr/sbin/haproxy
  need kubernetes-client /usr/bin/kubectl
fi

# The containers' id range (a system user and its /etc/subuid, /etc/subgid entries).
[ -n "$mode" ] || bash "$(dirname "$0")/subids.sh"

[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "mdocker: missing system packages; run: sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi
echo "mdocker: installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq --no-install-recommends "${packages[@]}" </dev/null >&2
