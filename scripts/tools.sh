#!/usr/bin/env bash
# tools.sh — install the tools besides Go and the AWS emulators that verdict's tests
# drive (see docs/testing.md):
#
#   chromium        (Debian package)  the dashboard's browser test (cmd/verdict)
#   helm v4.3.2     (Go module)       renders and lints the Helm chart (charts/verdict)
#
# Usage: scripts/tools.sh install|env
#
#   install  installs what is missing: chromium with apt-get (as root, or through
#            sudo), helm built once from its Go module into the cache
#   env      prints the exports the tests read: VERDICT_CHROMIUM, VERDICT_HELM
#
# Environment:
#   VERDICT_EMULATOR_CACHE   where builds are cached (default <repo>/.cache/emulators),
#                            shared with scripts/emulators.sh
set -euo pipefail

HELM_MODULE=helm.sh/helm/v4/cmd/helm
HELM_VERSION=v4.3.2

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${VERDICT_EMULATOR_CACHE:-$ROOT/.cache/emulators}"
HELM_BIN="$CACHE/bin/helm-$HELM_VERSION"

die() { echo "tools: $*" >&2; exit 1; }

chromium_path() {
  command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

install_chromium() {
  [[ -n $(chromium_path) ]] && return 0
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "chromium is missing and this user cannot apt-get install it: install Debian's chromium package"
    sudo=(sudo)
  fi
  local log="$CACHE/chromium-install.log"
  mkdir -p "$CACHE"
  echo "tools: installing Debian's chromium (once)" >&2
  if ! { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium; } >"$log" 2>&1; then
    cat "$log" >&2
    die "apt-get install chromium failed (log: $log)"
  fi
  [[ -n $(chromium_path) ]] || die "chromium installed but not on PATH"
}

install_helm() {
  [[ -x $HELM_BIN ]] && return 0
  command -v go >/dev/null 2>&1 || die "go not found: needed to build helm"
  mkdir -p "$CACHE/bin"
  local tmp log
  tmp="$(mktemp -d "$CACHE/helm-build.XXXXXX")"
  log="$CACHE/helm-build.log"
  echo "tools: building helm $HELM_VERSION from its Go module (takes a few minutes, once)" >&2
  if ! (cd "$tmp" && GOBIN="$tmp/bin" GOFLAGS= GOWORK=off go install -trimpath "$HELM_MODULE@$HELM_VERSION") >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$tmp"
    die "building helm $HELM_VERSION failed (log: $log)"
  fi
  mv "$tmp/bin/helm" "$HELM_BIN"
  rm -rf "$tmp"
}

case "${1:-}" in
  install)
    install_chromium
    install_helm
    ;;
  env)
    echo "export VERDICT_CHROMIUM='$(chromium_path)'"
    if [[ -x $HELM_BIN ]]; then echo "export VERDICT_HELM='$HELM_BIN'"; fi
    ;;
  *)
    die "usage: scripts/tools.sh install|env"
    ;;
esac
