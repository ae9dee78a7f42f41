#!/usr/bin/env bash
# The own-image tests start their own dockerd and build their image from a static busybox:
# install Debian's docker.io and busybox-static when missing (CI runs as root). Bounded by
# the caller's timeout; any failure only makes those tests skip, saying why.
set -uo pipefail
if command -v dockerd >/dev/null && dpkg -s busybox-static >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "not root or no apt-get: the own-image tests will skip" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io busybox-static
