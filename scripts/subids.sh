#!/usr/bin/env bash
# Gives the containers' user namespaces a range of host ids of their own, as Docker's
# userns-remap does with its "dockremap" user: a system user "mdocker" (no login, no
# home) with 2^30 subordinate uids and gids from 2^28 (16384 slots of 65536) in
# /etc/subuid and /etc/subgid, unless it has a range already. The runtime reads the
# range (server/src/runtime/launcher.ts) and refuses to start containers while an
# account of the host lies inside it. Run by `npm install` as root; elsewhere it says
# what to run.
set -euo pipefail

start=268435456
count=1073741824

if [ "$(id -u)" != 0 ]; then
  grep -q '^mdocker:' /etc/subuid 2>/dev/null ||
    echo "mdocker: no id range for containers yet; as root: bash scripts/subids.sh" >&2
  exit 0
fi
if ! getent passwd mdocker >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment "mdocker container id range" mdocker
fi
for file in /etc/subuid /etc/subgid; do
  touch "$file"
  grep -q '^mdocker:' "$file" || echo "mdocker:$start:$count" >>"$file"
done
