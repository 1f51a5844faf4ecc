#!/usr/bin/env bash
# Builds a named image (a read-only root filesystem) into rootfs/images/NAME, or into
# $MDOCKER_IMAGES/NAME. Idempotent: an image built from the same source binary by the same
# version of this script is left alone.
#
#   rootfs/build.sh busybox
set -euo pipefail

usage() {
  echo "usage: rootfs/build.sh NAME   (images: busybox)" >&2
  exit 2
}

[[ $# -eq 1 ]] || usage
name=$1

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images_dir=${MDOCKER_IMAGES:-$script_dir/images}
target=$images_dir/$name
marker_name=.mdocker-image

build_busybox() {
  local root=$1 busybox=$2

  install -d -m 0755 "$root"/{bin,sbin,usr/bin,usr/sbin,etc,home,var,run,mnt,proc,sys,dev}
  install -d -m 1777 "$root/tmp"
  install -d -m 0700 "$root/root"
  install -m 0755 "$busybox" "$root/bin/busybox"

  # Relative links keep the image valid wherever it is mounted: as the container's / , or
  # inspected from the host at rootfs/images/busybox.
  local applet dir link up
  while IFS= read -r applet; do
    [[ -n $applet && $applet != bin/busybox ]] || continue
    if [[ $applet == */* ]]; then dir=${applet%/*}; else dir=.; fi
    case $dir in
      .) link=bin/busybox ;;
      bin) link=busybox ;;
      *)
        # One ".." per directory level: usr/bin/env -> ../../bin/busybox.
        up=${dir//[!\/]/}
        up=${up//\//../}
        link=../${up}bin/busybox
        ;;
    esac
    [[ -d $root/$dir ]] || mkdir -p "$root/$dir"
    ln -sfn "$link" "$root/$applet"
  done < <("$root/bin/busybox" --list-full)

  cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
  echo mdocker >"$root/etc/hostname"
  cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
EOF
  local version
  version=$("$root/bin/busybox" --help 2>&1 | sed -n '1s/^BusyBox v\([^ ]*\).*/\1/p') || true
  # Not a distribution: an honest note for `cat /etc/os-release` inside a container.
  cat >"$root/etc/os-release" <<EOF
NAME="mdocker busybox"
ID=mdocker-busybox
VERSION_ID="${version:-unknown}"
PRETTY_NAME="mdocker busybox image (BusyBox ${version:-unknown} from Debian's busybox-static)"
HOME_URL="https://busybox.net/"
EOF
  chmod 0644 "$root"/etc/{passwd,group,hostname,hosts,os-release}
}

case $name in
  busybox)
    source_binary=/bin/busybox
    # Debian's plain "busybox" package ships a dynamically linked /bin/busybox, which
    # would find no libc inside the image; only busybox-static's binary works there.
    if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' ||
      [[ ! -x $source_binary ]]; then
      echo "rootfs/build.sh: busybox-static is not installed; run: apt-get install -y busybox-static" >&2
      exit 1
    fi
    ;;
  *)
    echo "rootfs/build.sh: unknown image \"$name\" (available: busybox)" >&2
    exit 2
    ;;
esac

source_sha256=$(sha256sum "$source_binary" | cut -d' ' -f1)
builder_sha256=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
marker_content="name=$name
source=$source_binary
source_sha256=$source_sha256
builder_sha256=$builder_sha256"

mkdir -p "$images_dir"
# Two builds at once (npm run build in two shells) must not interleave their renames.
exec {lock_fd}>"$images_dir/.$name.lock"
flock "$lock_fd"

if [[ -f $target/$marker_name && "$(cat "$target/$marker_name")" == "$marker_content" ]]; then
  echo "rootfs: $name is up to date ($target)"
  exit 0
fi

# Build next to the target so the final rename stays on one filesystem (rename(2) is
# atomic only there); a dot-name keeps listImages() from ever seeing a half-built tree.
work=$(mktemp -d "$images_dir/.$name.build.XXXXXX")
old=''
cleanup() {
  rm -rf "$work"
  if [[ -n $old ]]; then rm -rf "$old"; fi
}
trap cleanup EXIT

chmod 0755 "$work"
build_"$name" "$work" "$source_binary"
# The marker goes in last: its presence says the tree is complete.
printf '%s\n' "$marker_content" >"$work/$marker_name"
chmod 0644 "$work/$marker_name"

if [[ -e $target ]]; then
  # Debian 12's mv lacks --exchange (renameat2 RENAME_EXCHANGE), so replacing a
  # directory takes two renames; the image is missing only between them, and containers
  # already running keep their mounts of the old tree.
  old=$(mktemp -u "$images_dir/.$name.old.XXXXXX")
  mv -T "$target" "$old"
fi
mv -T "$work" "$target"
echo "rootfs: built $name ($(du -sh "$target" | cut -f1), BusyBox from $source_binary) in $target"
