#!/usr/bin/env bash
# `npm test`: everything, in the order a failure is cheapest to find: typecheck, lint,
# C and TypeScript unit tests (no root), root tests (real kernel), end-to-end tests
# (real browser).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh --test

step() { printf '\n== %s\n' "$*"; }

step build
npm run --silent build:server
[ -x native/build/Release/mdocker-init ] || npx node-gyp rebuild --directory native
[ -f rootfs/images/busybox/.mdocker-image ] || bash rootfs/build.sh busybox
[ -f web/dist/index.html ] || npm run --silent build:web

step typecheck
npm run --silent typecheck

step lint
npm run --silent lint

step "C unit tests"
make -s -C native/test all check

step "unit tests"
node --test --test-reporter=spec server/dist/test/*.test.js

step "root tests (real namespaces, cgroups, mounts)"
if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "root tests must run in CI, and this is not root" >&2
    exit 1
  fi
  echo "SKIPPED: root tests need root (sudo npm test); they create namespaces, cgroups and mounts"
else
  node --test --test-concurrency=1 --test-reporter=spec server/dist/test/root/*.test.js
fi

step "cluster: three nodes behind HAProxy, the Kubernetes manifests"
# The manifests' test needs only kubectl; the three nodes need root (they skip with a
# printed reason otherwise, and fail so in CI).
node --test --test-concurrency=1 --test-reporter=spec server/dist/test/cluster/*.test.js

step "cgroup v2 host (VM)"
# Whatever this machine's cgroups are: a QEMU VM of Debian 12's kernel, with and without
# systemd (scripts/v2-vm/run.sh; it prints SKIPPED when not root, and fails so in CI).
MDOCKER_V2_VM_BUILT=1 bash scripts/v2-vm/run.sh

step "end-to-end tests (Chromium)"
if [ "$(id -u)" != 0 ]; then
  echo "SKIPPED: end-to-end tests start real containers and need root"
else
  npx playwright test -c e2e
fi
