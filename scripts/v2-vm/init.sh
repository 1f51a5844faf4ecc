#!/bin/busybox sh
# /init of the VM's initramfs (busybox only): loads the kernel's own modules in the order
# run.sh resolved (no depmod here), mounts the host's root (9p, read-only) under a tmpfs
# overlay, the results share and the image disk inside it, and switch_roots into it:
# systemd when the kernel command line says init=..., else guest.sh as PID 1.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
  echo "v2-vm init: $*"
  # run.sh sees no status file and reports the boot as failed.
  poweroff -f
}

mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

for module in $(cat /modules/order); do
  insmod "/modules/$module.ko" || fail "insmod $module failed"
done

# msize: 9p moves at most this much per request (the default 8 KiB makes Node's start crawl);
# cache=loose: the host's root is read-only for the VM's lifetime, so pages may stay cached.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose host /host || fail "no 9p share 'host'"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out || fail "no 9p share 'out'"
# shellcheck source=/dev/null
. /out/config.env

mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "overlay failed"

# The image store: idmapped mounts need ext4 on 6.1 (9p and tmpfs have them from 6.3).
mkdir -p /newroot/v2-vm/out /newroot/v2-vm/images
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.2; done
mount -t ext4 /dev/vda /newroot/v2-vm/images || fail "cannot mount the image disk /dev/vda"
mount --move /out /newroot/v2-vm/out

init=
for word in $(cat /proc/cmdline); do
  case $word in init=*) init=${word#init=} ;; esac
done
# The host may be a container: systemd would believe it is one too (and ignore the kernel
# command line) on seeing Docker's marker.
[ -e /newroot/.dockerenv ] && rm -f /newroot/.dockerenv
if [ -n "$init" ]; then
  # What the host keeps in /run is not this machine's.
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run
  # systemd: start only what the test unit needs; mask what would slow or hang the boot
  # (units.masked lists them, measured with systemd-analyze blame).
  units=/newroot/etc/systemd/system
  cp "/newroot$REPO/scripts/v2-vm/cgroup-v2-tests.service" "/newroot$REPO/scripts/v2-vm/cgroup-v2-tests.target" "$units/"
  grep -v '^#' "/newroot$REPO/scripts/v2-vm/units.masked" | while read -r unit; do
    [ -n "$unit" ] && ln -sf /dev/null "$units/$unit"
  done
  # tmpfiles.d/tmp.conf's "D /tmp" empties /tmp at boot, and with it a checkout in /tmp.
  mkdir -p /newroot/etc/tmpfiles.d
  : >/newroot/etc/tmpfiles.d/tmp.conf
else
  init=/bin/bash
  set -- "$REPO/scripts/v2-vm/guest.sh"
fi

# Lazily: the console stays open on /dev. Whoever runs next mounts its own.
umount /proc /sys
umount -l /dev
exec switch_root /newroot "$init" "$@"
