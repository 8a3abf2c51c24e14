#!/usr/bin/env bash
# emulators.sh — install, start, describe and stop the local AWS emulators that verdict's
# tests run against (see docs/testing.md):
#
#   kinesalite 3.3.3 (npm)       Kinesis
#   dynalite   4.0.0 (npm)       DynamoDB without transactions/TTL (optional, installed only)
#   kumo       v0.33.1 (Go)      DynamoDB with transactions and TTL, minimal CloudWatch, S3, SQS
#
# Usage: scripts/emulators.sh install|start|env|stop|status
#
# Environment:
#   VERDICT_EMULATOR_CACHE    where installs live (default <repo>/.cache/emulators)
#   VERDICT_EMULATOR_RUN_DIR  where pids, logs and the env file live (default $CACHE/run);
#                             give each concurrent test run its own
#   VERDICT_KINESALITE_PORT   fixed port for kinesalite (default: a free port)
#   VERDICT_KUMO_PORT         fixed port for kumo (default: a free port)
#
# All subcommands are idempotent and quiet on success; failures say what went wrong and
# where the log is.
set -euo pipefail

KINESALITE_VERSION=3.3.3
DYNALITE_VERSION=4.0.0
KUMO_MODULE=github.com/sivchari/kumo
KUMO_VERSION=v0.33.1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${VERDICT_EMULATOR_CACHE:-$ROOT/.cache/emulators}"
RUN_DIR="${VERDICT_EMULATOR_RUN_DIR:-$CACHE/run}"
KUMO_BIN="$CACHE/bin/kumo-$KUMO_VERSION"
ENV_FILE="$RUN_DIR/env"

die() { echo "emulators: $*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH: $2"
}

npm_version_of() { # prints the installed version of an npm package in the cache, or nothing
  local pj="$CACHE/node_modules/$1/package.json"
  [[ -f $pj ]] || return 0
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$pj" 2>/dev/null || true
}

install_npm() {
  need node "install Node.js >= 18 (e.g. apt-get install nodejs npm)"
  need npm "install npm (e.g. apt-get install npm)"
  if [[ $(npm_version_of kinesalite) == "$KINESALITE_VERSION" && $(npm_version_of dynalite) == "$DYNALITE_VERSION" ]]; then
    return 0
  fi
  mkdir -p "$CACHE"
  [[ -f $CACHE/package.json ]] || echo '{"name":"verdict-emulators","private":true}' >"$CACHE/package.json"
  local log="$CACHE/npm-install.log"
  if ! npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error \
      "kinesalite@$KINESALITE_VERSION" "dynalite@$DYNALITE_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    die "npm install of kinesalite@$KINESALITE_VERSION dynalite@$DYNALITE_VERSION failed (log: $log)"
  fi
}

install_kumo() {
  need go "install Go (https://go.dev/dl/)"
  [[ -x $KUMO_BIN ]] && return 0
  mkdir -p "$CACHE/bin"
  # `go install kumo@version` fails on checksum-database lookups of two of its
  # dependencies; building from a copy of the module source uses kumo's own go.sum.
  local json dir src log
  json="$(cd "$CACHE" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "$KUMO_MODULE@$KUMO_VERSION" 2>&1)" ||
    die "go mod download $KUMO_MODULE@$KUMO_VERSION failed: $json"
  dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  [[ -n $dir && -d $dir ]] || die "go mod download $KUMO_MODULE@$KUMO_VERSION: no module directory in: $json"
  src="$(mktemp -d "$CACHE/kumo-src.XXXXXX")"
  cp -R "$dir/." "$src/"
  chmod -R u+w "$src"
  log="$CACHE/kumo-build.log"
  echo "emulators: building kumo $KUMO_VERSION (takes a few minutes, once)" >&2
  if ! (cd "$src" && GOWORK=off GOFLAGS=-mod=mod go build -o "$KUMO_BIN.tmp" ./cmd/kumo) >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$src"
    die "building kumo $KUMO_VERSION failed (log: $log)"
  fi
  mv "$KUMO_BIN.tmp" "$KUMO_BIN"
  rm -rf "$src"
}

cmd_install() {
  install_npm
  install_kumo
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})'
}

# alive PIDFILE NAME: the pid in PIDFILE runs and is NAME's process (not a recycled pid).
alive() {
  [[ -f $1 ]] || return 1
  local pid
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  [[ ! -r /proc/$pid/cmdline ]] || tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$2"
}

# answers URL: true once an HTTP server answers on URL (any status).
answers() {
  node -e '
    const req = require("http").request(process.argv[1], {method: "POST", timeout: 1000}, res => { res.resume(); process.exit(0) });
    req.on("error", () => process.exit(1));
    req.on("timeout", () => { req.destroy(); process.exit(1) });
    req.end();' "$1" 2>/dev/null
}

wait_for() { # name url pidfile log
  local i
  for ((i = 0; i < 150; i++)); do
    answers "$2" && return 0
    alive "$3" "$1" || { tail -n 30 "$4" >&2; die "$1 exited during start (log: $4)"; }
    sleep 0.1
  done
  tail -n 30 "$4" >&2
  die "$1 did not answer on $2 within 15 s (log: $4)"
}

start_kinesalite() {
  local pidf="$RUN_DIR/kinesalite.pid" log="$RUN_DIR/kinesalite.log" port
  if alive "$pidf" kinesalite && [[ -f $RUN_DIR/kinesalite.port ]]; then return 0; fi
  port="${VERDICT_KINESALITE_PORT:-$(free_port)}"
  # kinesalite's CLI listens on all interfaces; start it from Node on loopback only, with
  # an in-memory store and short state-change delays so tests need not wait 500 ms.
  NODE_PATH="$CACHE/node_modules" nohup node -e '
    const port = Number(process.argv[1]);
    const server = require("kinesalite")({
      createStreamMs: 10, deleteStreamMs: 10, updateStreamMs: 10, shardLimit: 100,
    });
    server.on("error", err => { console.error(err); process.exit(1) });
    // kinesalite rethrows a request stream error, so a client that cancels a call
    // mid-request (a consumer shutting down) would kill the emulator: survive that.
    process.on("uncaughtException", err => {
      if (err && (err.code === "ECONNRESET" || err.message === "aborted")) {
        console.error("kinesalite: a client aborted a request: " + err.message);
        return;
      }
      console.error(err);
      process.exit(1);
    });
    server.listen(port, "127.0.0.1", () => console.log("kinesalite listening on 127.0.0.1:" + port));
    for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => process.exit(0));
  ' "$port" >"$log" 2>&1 &
  echo $! >"$pidf"
  echo "$port" >"$RUN_DIR/kinesalite.port"
  wait_for kinesalite "http://127.0.0.1:$port/" "$pidf" "$log"
}

start_kumo() {
  local pidf="$RUN_DIR/kumo.pid" log="$RUN_DIR/kumo.log" port
  if alive "$pidf" kumo && [[ -f $RUN_DIR/kumo.port ]]; then return 0; fi
  port="${VERDICT_KUMO_PORT:-$(free_port)}"
  nohup "$KUMO_BIN" --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
  echo $! >"$pidf"
  echo "$port" >"$RUN_DIR/kumo.port"
  wait_for kumo "http://127.0.0.1:$port/" "$pidf" "$log"
}

write_env() {
  local tmp="$ENV_FILE.tmp"
  {
    echo "export VERDICT_TEST_KINESIS_ENDPOINT=http://127.0.0.1:$(cat "$RUN_DIR/kinesalite.port")"
    echo "export VERDICT_TEST_KUMO_ENDPOINT=http://127.0.0.1:$(cat "$RUN_DIR/kumo.port")"
  } >"$tmp"
  mv "$tmp" "$ENV_FILE"
}

cmd_start() {
  [[ -f $CACHE/node_modules/kinesalite/package.json && -x $KUMO_BIN ]] ||
    die "emulators not installed in $CACHE: run 'scripts/emulators.sh install' first"
  need node "install Node.js >= 18"
  mkdir -p "$RUN_DIR"
  start_kinesalite
  start_kumo
  write_env
}

cmd_env() {
  alive "$RUN_DIR/kinesalite.pid" kinesalite && alive "$RUN_DIR/kumo.pid" kumo && [[ -f $ENV_FILE ]] ||
    die "emulators are not running (run dir $RUN_DIR): run 'scripts/emulators.sh start'"
  cat "$ENV_FILE"
}

stop_one() { # name
  local pidf="$RUN_DIR/$1.pid" pid i
  [[ -f $pidf ]] || return 0
  pid="$(cat "$pidf")"
  if alive "$pidf" "$1"; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidf" "$RUN_DIR/$1.port"
}

cmd_stop() {
  stop_one kinesalite
  stop_one kumo
  rm -f "$ENV_FILE"
}

cmd_status() {
  local name
  for name in kinesalite kumo; do
    if alive "$RUN_DIR/$name.pid" "$name"; then
      echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"), port $(cat "$RUN_DIR/$name.port" 2>/dev/null))"
    else
      echo "$name: stopped"
    fi
  done
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  env) cmd_env ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|env|stop|status" >&2; exit 2 ;;
esac
