#!/usr/bin/env bash
# test.sh — vet and test verdict against the local AWS emulators.
#
# Installs (once, cached in .cache/emulators) and starts kinesalite and kumo on free
# loopback ports in a private run directory, installs chromium and helm for the
# dashboard's browser test and the Helm chart's test (scripts/tools.sh), exports
# their locations and VERDICT_REQUIRE_EMULATORS=1 (so those tests fail instead of
# skipping; the browser test leaves its screenshot in .artifacts/), runs
# `go vet ./...` and `go test -race -count=1 ./...`, and stops the emulators on exit.
# Extra arguments go to `go test`, e.g. scripts/test.sh -run Kinesis -v
# (packages default to ./...; pass your own after the flags to narrow them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EMU="$ROOT/scripts/emulators.sh"
cd "$ROOT"

# The installs run side by side: on a fresh machine chromium's download overlaps the
# emulator and helm builds (each done once and cached).
"$ROOT/scripts/tools.sh" install &
tools_pid=$!
"$EMU" install
wait "$tools_pid" || { echo "test.sh: installing the test tools failed" >&2; exit 1; }

# A run directory of our own: concurrent test runs in one checkout never share or stop
# each other's emulators.
VERDICT_EMULATOR_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/verdict-emulators.XXXXXX")"
export VERDICT_EMULATOR_RUN_DIR
cleanup() {
  "$EMU" stop || true
  rm -rf "$VERDICT_EMULATOR_RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$EMU" start
eval "$("$EMU" env)"
eval "$("$ROOT/scripts/tools.sh" env)"
export VERDICT_REQUIRE_EMULATORS=1
export VERDICT_ARTIFACTS="${VERDICT_ARTIFACTS:-$ROOT/.artifacts}"

go vet ./...

args=("$@")
has_pkg=0
for a in "${args[@]+"${args[@]}"}"; do
  [[ $a == ./* || $a == github.com/* ]] && has_pkg=1
done
if ((has_pkg)); then
  go test -race -count=1 "${args[@]}"
else
  go test -race -count=1 "${args[@]+"${args[@]}"}" ./...
fi
