#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 and print its SQLAlchemy URL on stdout.
set -euo pipefail
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$bindir" ]; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; })
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
fi
user=postgres
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
dir=$(mktemp -d /tmp/opensage-pg.XXXXXX)
chown "$user" "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }
as_pg "$bindir/initdb" -D "$dir/data" -A trust -U opensage >&2
as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-h 127.0.0.1 -p $port -k $dir" start >&2
as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U opensage opensage >&2
echo "postgresql+psycopg://opensage@127.0.0.1:$port/opensage"
