#!/usr/bin/env bash
# scripts/test.sh — run every check shardnet's CI runs: formatting, lints, and all tests in
# release mode (unit, integration against real sockets on loopback, doc tests).
#
# Usage: scripts/test.sh [-h] [--no-lint] [-- CARGO_TEST_ARGS...]
#
# The integration tests drive the example servers with real clients (redis-cli,
# redis-benchmark, wrk, curl). When one is missing and this runs as root on Debian, it is
# installed with apt-get (after apt-get update); otherwise the script stops and names the
# packages to install. A missing client is a failure, never a skip.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
lint=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --no-lint) lint=0; shift ;;
    --) shift; break ;;
    *) echo "scripts/test.sh: unknown argument '$1' (see -h)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."

# Clients the tests require: command -> Debian package.
declare -A need_pkg=([redis-cli]=redis-tools [redis-benchmark]=redis-tools [wrk]=wrk [curl]=curl)
missing=()
for cmd in "${!need_pkg[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need_pkg[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "scripts/test.sh: the tests need: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if [ "$lint" = 1 ]; then
  cargo fmt --all --check
  cargo clippy --release --all-targets -- -D warnings
  RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --quiet
fi
cargo test --release "$@"
