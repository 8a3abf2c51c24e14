#!/usr/bin/env bash
# verdict side by side with the batch SQL a team would write instead, on the same
# events, on this machine, in one command:
#
#   scripts/bench-sql.sh                 # 1,000,000 inferences (2 M predictions)
#   INFERENCES=200000 scripts/bench-sql.sh
#
# It installs what is missing (Debian's postgresql, npm's @duckdb/node-api into
# .cache/duckdb-node), starts a throwaway PostgreSQL on 127.0.0.1 with a temporary
# data directory, runs `verdict bench --only sql` (which writes the events, runs
# verdict, PostgreSQL and DuckDB on them and checks their counts agree), and stops
# and removes everything it started. Extra arguments go to `verdict bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

INFERENCES=${INFERENCES:-1000000}
PORT=${BENCH_PG_PORT:-55432}
WORK=$(mktemp -d "${BENCH_SQL_DIR:-${TMPDIR:-/tmp}}/verdict-bench-sql.XXXXXX")
chmod 755 "$WORK"

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(pgbin)" ] || ! command -v psql >/dev/null; then
  echo "bench-sql: installing PostgreSQL (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
PGBIN=$(pgbin)

export DUCKDB_NODE_DIR=${DUCKDB_NODE_DIR:-$PWD/.cache/duckdb-node}
if [ ! -d "$DUCKDB_NODE_DIR/node_modules/@duckdb/node-api" ]; then
  echo "bench-sql: installing DuckDB (npm @duckdb/node-api)" >&2
  mkdir -p "$DUCKDB_NODE_DIR"
  [ -f "$DUCKDB_NODE_DIR/package.json" ] || echo '{"name":"verdict-bench-duckdb","private":true}' >"$DUCKDB_NODE_DIR/package.json"
  (cd "$DUCKDB_NODE_DIR" && npm install --no-audit --no-fund --silent @duckdb/node-api@1.5.6-r.1)
fi

go build -o bin/verdict ./cmd/verdict

# PostgreSQL refuses to run as root: as root, run it as the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGDATA="$WORK/pgdata"
mkdir -p "$PGDATA"
[ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
cleanup() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres --no-sync >/dev/null
# A server a team would run for this: fsync on (the default), more memory than the
# package's default, room for the load's WAL.
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories='$PGDATA' -c shared_buffers=1GB -c work_mem=256MB -c maintenance_work_mem=512MB -c max_wal_size=8GB" \
  start >/dev/null

bin/verdict bench --only sql --dir "$WORK/verdict" --sql-inferences "$INFERENCES" \
  --pg "host=127.0.0.1 port=$PORT user=postgres dbname=postgres" \
  --duckdb "node scripts/duckdb-sql.mjs" "$@"
