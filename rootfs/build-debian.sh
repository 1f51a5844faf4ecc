#!/usr/bin/env bash
# Builds the `debian` image: Debian 12 "bookworm" (minbase, merged /usr) with the tools the
# lessons use, by mmdebstrap from the Debian packages of this machine's apt sources, and
# loads it into the image store (MDOCKER_DATA_DIR, else /var/lib/mdocker) as debian:bookworm
# and debian:latest. `npm run build:images` runs it; npm install never does (it downloads
# about 45 MB of packages and takes a few minutes). Needs root and mmdebstrap:
#
#   sudo bash scripts/system-deps.sh --images && sudo npm run build:images
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
cli=$repo/server/dist/src/cli/main.js
suite=bookworm
packages=bash,coreutils,procps,iproute2,iputils-ping,util-linux,less,nano

fail() {
  echo "rootfs/build-debian.sh: $*" >&2
  exit 1
}
[[ $(id -u) == 0 ]] || fail "needs root (mmdebstrap's root mode keeps owners and file capabilities)"
command -v mmdebstrap >/dev/null || fail "mmdebstrap is missing; run: sudo bash scripts/system-deps.sh --images"
[[ -f $cli ]] || fail "the CLI is not built; run: npm run build:server"

# The machine's own apt sources (mmdebstrap reads a file argument as sources.list, or as
# deb822 when it ends in .sources), so the image comes from the mirror this host uses.
sources=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [[ -f $file ]] && grep -qE '^[[:space:]]*(deb[[:space:]]|Types:)' "$file" && sources+=("$file")
done
[[ ${#sources[@]} -gt 0 ]] || fail "no apt sources in /etc/apt/sources.list or /etc/apt/sources.list.d"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/mdocker-debian.XXXXXX")
trap 'rm -rf "$work"' EXIT

started=$SECONDS
# minbase: Essential and Priority required, plus apt. The merged-usr hook makes /bin, /sbin
# and /lib links into /usr as Debian's debootstrap does, without the usrmerge package (and
# the Perl it pulls in). Manuals, docs (but copyrights), info pages and translations are left
# out, as in Debian's own slim images. The tar keeps owners, modes and the xattrs dpkg
# set (ping's cap_net_raw), which the image store's unpacker keeps.
mmdebstrap --quiet --variant=minbase --include="$packages" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --aptopt='Acquire::Languages "none"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
  "$suite" "$work/rootfs.tar" "${sources[@]}"

version=$(tar -xOf "$work/rootfs.tar" ./etc/debian_version)
node "$script_dir/oci-layout.mjs" "$work/rootfs.tar" "$work/layout" \
  --architecture "$(dpkg --print-architecture)" \
  --tag debian:latest --tag "debian:$suite" \
  --description "Debian $version ($suite), minimal, with ${packages//,/, }" \
  --created-by "mmdebstrap --variant=minbase --include=$packages $suite"
rm "$work/rootfs.tar"
node "$cli" load -i "$work/layout"
echo "rootfs: built debian ($version) in $((SECONDS - started)) s; run it: mdocker run -it debian"
