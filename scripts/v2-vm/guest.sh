#!/bin/bash
# Inside the VM: runs server/test/v2 with the compiled tests of the checkout (shared from
# the host), leaves the exit status and a TAP report in /v2-vm/out for run.sh, then ends
# the VM. PID 1 without systemd (it mounts the API filesystems and cgroup2 itself); else
# started by cgroup-v2-tests.service, whose ExecStopPost powers off.
set -u
out=/v2-vm/out
# shellcheck source=/dev/null
. "$out/config.env"

if [ $$ = 1 ]; then
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev
  exec </dev/console >/dev/console 2>&1
  mkdir -p /dev/pts /dev/shm
  mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  # Not /tmp: the checkout may live there (the overlay's /tmp is writable anyway).
  mount -t tmpfs -o mode=0755 tmpfs /run
  # Nothing enabled in the root's cgroup.subtree_control: as the kernel leaves it.
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
  hostname cgroup-v2-vm
  # systemd brings the loopback up; the server's tests connect to 127.0.0.1.
  /bin/busybox ip link set lo up
fi

echo "== in the VM ($MODE): kernel $(uname -r), $(nproc) CPUs, PID $$ in cgroup $(cut -d: -f3 /proc/self/cgroup)"
echo "   /sys/fs/cgroup: $(stat -f -c %T /sys/fs/cgroup); controllers: $(cat /sys/fs/cgroup/cgroup.controllers);" \
  "root subtree_control: '$(cat /sys/fs/cgroup/cgroup.subtree_control)'"
echo "   images: $(findmnt -n -o FSTYPE,SOURCE "$MDOCKER_IMAGES")"

cd "$REPO" || exit 1
export PATH MDOCKER_IMAGES MDOCKER_V2_VM=1 NO_COLOR=1
started=$(date +%s)
"$NODE" --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$out/results.tap" \
  server/dist/test/v2/*.test.js
status=$?
echo "== tests in the VM ($MODE) exited $status after $(($(date +%s) - started)) s"
echo "$status" >"$out/status"
sync

if [ $$ = 1 ]; then
  # PID 1 must not exit (the kernel panics); power off directly, nothing else runs.
  /bin/busybox poweroff -f
fi
exit "$status"
