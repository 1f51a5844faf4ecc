#!/usr/bin/env bash
# `npm run test:v2`: mdocker's v2 tests (server/test/v2/) on a pure cgroup v2 host, which
# this machine may not be. Boots Debian 12's own kernel in QEMU (TCG: no KVM needed) over
# this machine's root, shared read-only over virtio-9p under a tmpfs overlay, and runs the
# tests twice: from a systemd service (systemd as PID 1: the service's cgroup delegates no
# controllers), and with a bare cgroup2 mount and no systemd (nothing enabled in the
# root's subtree_control). Exits non-zero when a test failed or a VM did not finish.
#
# MDOCKER_V2_VM_MODES: the runs, "systemd nosystemd" by default, in that order.
# MDOCKER_V2_VM_TIMEOUT: seconds one VM may take before QEMU is killed (default 900; a
#   run takes 2-4 minutes under TCG).
# MDOCKER_V2_VM_BUILT=1: the server is compiled already (scripts/test.sh just did).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/scripts/v2-vm
cache=$repo/.cache/v2-vm

if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "test:v2: the cgroup v2 VM tests must run in CI, and this is not root" >&2
    exit 1
  fi
  echo "SKIPPED: cgroup v2 VM tests need root (sudo npm run test:v2): apt-get, 9p share of /, containers inside"
  exit 0
fi

# One VM at a time on this machine: each takes both of a small machine's cores.
exec 9>/run/lock/mdocker-v2-vm.lock
if ! flock -n 9; then
  echo "test:v2: another run holds /run/lock/mdocker-v2-vm.lock; waiting for it" >&2
  flock 9
fi

# ---- packages ----
# qemu-system-x86 depends on seabios (the BIOS) and ipxe-qemu; nothing it recommends is
# needed for -nographic with -kernel. mkfs.ext4 (-d) is e2fsprogs', busybox-static makes
# the initramfs.
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test:v2: installing ${missing[*]}" >&2
  apt-get update -qq </dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2
fi

# ---- kernel: Debian 12's own, downloaded (not installed) and unpacked once ----
kernel_dir=$(find "$cache" -mindepth 2 -maxdepth 2 -path "$cache/linux-image-*-amd64/.unpacked" -printf '%h\n' 2>/dev/null |
  sort -V | tail -n 1 || true)
if [ -z "$kernel_dir" ]; then
  package() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9.]*-[0-9]*-amd64\)$/\1/p' | head -n 1; }
  name=$(package)
  if [ -z "$name" ]; then
    apt-get update -qq </dev/null
    name=$(package)
  fi
  [ -n "$name" ] || { echo "test:v2: apt-cache names no kernel for linux-image-amd64" >&2; exit 1; }
  echo "test:v2: fetching $name into $cache" >&2
  download=$cache/download
  rm -rf "$download" "${cache:?}/$name"
  mkdir -p "$download"
  chown _apt "$download" 2>/dev/null || true # apt's sandbox user may write there
  (cd "$download" && apt-get download -q "$name" </dev/null >&2)
  dpkg-deb -x "$download/${name}"_*.deb "$cache/$name"
  rm -rf "$download"
  touch "$cache/$name/.unpacked"
  kernel_dir=$cache/$name
fi
kernel_release=${kernel_dir##*/linux-image-}
vmlinuz=$kernel_dir/boot/vmlinuz-$kernel_release
modules=$kernel_dir/lib/modules/$kernel_release
if [ ! -f "$vmlinuz" ] || [ ! -d "$modules" ]; then
  echo "test:v2: $kernel_dir is incomplete; remove it" >&2
  exit 1
fi

# ---- what the VM runs: the compiled tests, the launcher, the image store ----
if [ "${MDOCKER_V2_VM_BUILT:-}" != 1 ]; then
  (cd "$repo" && npm run --silent build:server)
fi
[ -x "$repo/native/build/Release/mdocker-init" ] || { echo "test:v2: build the launcher first (npm install)" >&2; exit 1; }
[ -f "$repo/rootfs/images/busybox/.mdocker-image" ] || { echo "test:v2: build the image first (npm run build:rootfs)" >&2; exit 1; }
ls "$repo"/server/dist/test/v2/*.test.js >/dev/null || exit 1
node=$(command -v node)

tmp=$(mktemp -d /tmp/mdocker-v2-vm.XXXXXX)
qemu=$(readlink -f "$(command -v qemu-system-x86_64)")
qemu_pid=
qemu_running() { # by PID, and only while that PID is still our QEMU (not reaped and reused)
  [ -n "$qemu_pid" ] && [ "$(readlink "/proc/$qemu_pid/exe" 2>/dev/null)" = "$qemu" ]
}
cleanup() {
  if qemu_running; then kill -KILL "$qemu_pid" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- initramfs: busybox, the modules the boot needs, init.sh ----
# Dependencies come from each module's own depends= (no depmod on this machine); ext4's
# soft dependency on a crc32c implementation is crc32c_generic (no SSE4.2 under TCG).
declare -A module_path=() module_added=()
while IFS= read -r path; do
  base=${path##*/}
  module_path[${base%.ko}]=$path
done < <(find "$modules/kernel" -name '*.ko')
module_order=()
add_module() {
  local name=$1 dep deps
  [ -n "${module_added[$name]:-}" ] && return
  [ -n "${module_path[$name]:-}" ] || { echo "test:v2: no module $name in $modules" >&2; exit 1; }
  module_added[$name]=1
  deps=$(grep -a -o -m 1 'depends=[a-z0-9_,-]*' "${module_path[$name]}" | head -n 1 | cut -d= -f2 || true)
  for dep in ${deps//,/ }; do add_module "$dep"; done
  module_order+=("$name")
}
for name in virtio_pci virtio_blk 9pnet_virtio 9p overlay crc32c_generic ext4; do add_module "$name"; done

initrd=$tmp/initrd
mkdir -p "$initrd"/{bin,modules,dev,proc,sys,host,out,rw,newroot}
cp /bin/busybox "$initrd/bin/busybox"
install -m 0755 "$here/init.sh" "$initrd/init"
for name in "${module_order[@]}"; do cp "${module_path[$name]}" "$initrd/modules/"; done
printf '%s\n' "${module_order[@]}" >"$initrd/modules/order"
(cd "$initrd" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$tmp/initramfs.gz"

# ---- one boot ----
failed=()
boot() { # boot MODE TIMEOUT_SECONDS KERNEL_ARGS...
  local mode=$1 timeout=$2 out=$tmp/out-$1 disk=$tmp/images-$1.ext4 started=$SECONDS status summary
  shift 2
  mkdir -p "$out"
  # Read by init.sh, guest.sh and the unit (EnvironmentFile): plain KEY="value" lines.
  {
    printf 'MODE="%s"\n' "$mode"
    printf 'REPO="%s"\n' "$repo"
    printf 'NODE="%s"\n' "$node"
    printf 'PATH="%s"\n' "$(dirname "$node"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    printf 'MDOCKER_IMAGES="%s"\n' /v2-vm/images
  } >"$out/config.env"
  mkfs.ext4 -q -F -d "$repo/rootfs/images" "$disk" 256M >/dev/null

  printf '\n== cgroup v2 VM, %s: Linux %s in QEMU (TCG)\n' "$mode" "$kernel_release"
  # No network; a reboot or a kernel panic (panic=-1) ends QEMU as a power-off does.
  # SeaBIOS's serial console (sercon-port 0: off) would reset the terminal it prints to;
  # QEMU warns about that fw_cfg name not starting with opt/, which SeaBIOS needs.
  "$qemu" -m 4096 -smp 2 -nographic -no-reboot -nic none -fw_cfg name=etc/sercon-port,string=0 \
    -kernel "$vmlinuz" -initrd "$tmp/initramfs.gz" \
    -append "console=ttyS0 quiet panic=-1 cgroup_no_v1=all $*" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
    -virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
    -drive "file=$disk,if=virtio,format=raw" </dev/null 2> >(grep -v 'fw_cfg item names should be prefixed' >&2) &
  qemu_pid=$!
  while qemu_running; do
    if ((SECONDS - started >= timeout)); then
      echo "test:v2: $mode: the VM did not finish in ${timeout} s; killing QEMU (PID $qemu_pid)" >&2
      kill -KILL "$qemu_pid" || true # it may have ended meanwhile
      break
    fi
    sleep 1
  done
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
  rm -f "$disk"

  status=$(cat "$out/status" 2>/dev/null || echo none)
  printf '\n== cgroup v2 VM, %s: %s in %d s' "$mode" \
    "$([ "$status" = 0 ] && echo passed || echo "FAILED (status $status)")" $((SECONDS - started))
  summary=$(grep -E '^# (pass|fail|cancelled|skipped|todo) ' "$out/results.tap" 2>/dev/null | cut -c3- | paste -sd ' ' || true)
  [ -z "$summary" ] || printf ' (%s)' "$summary"
  printf '\n'
  [ "$status" = 0 ] || failed+=("$mode")
}

modes=${MDOCKER_V2_VM_MODES:-systemd nosystemd}
for mode in $modes; do
  case $mode in
    systemd) boot systemd "${MDOCKER_V2_VM_TIMEOUT:-900}" init=/lib/systemd/systemd systemd.unit=cgroup-v2-tests.target ;;
    nosystemd) boot nosystemd "${MDOCKER_V2_VM_TIMEOUT:-900}" ;;
    *) echo "test:v2: unknown mode $mode (systemd, nosystemd)" >&2; exit 2 ;;
  esac
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "test:v2: failed on the cgroup v2 VM: ${failed[*]}" >&2
  exit 1
fi
