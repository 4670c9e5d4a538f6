#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time each; exits non-zero
# if any target finds a crash (its input is left in fuzz/artifacts/<target>/).
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/fuzz.sh [-t SECONDS] [-s SANITIZER] [--ci] [TARGET...]

Runs each fuzz target (all of `cargo fuzz list` by default) for SECONDS.

  -t SECONDS    time per target (default 30); long local runs: -t 3600
  -s SANITIZER  cargo-fuzz sanitizer (default none; address needs nightly)
  --ci          CI-sized run: 10 seconds per target
  -h            this help

The corpus grows in fuzz/corpus/<target>/ between runs. A crash leaves its input
in fuzz/artifacts/<target>/; replay it with
  cd fuzz && cargo fuzz run --sanitizer none <target> artifacts/<target>/crash-...
and turn it into a regression unit test. Installs cargo-fuzz if it is missing.
USAGE
}

seconds=30
sanitizer=none
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        -t) [ $# -ge 2 ] || { usage >&2; exit 2; }; seconds="$2"; shift 2 ;;
        -s) [ $# -ge 2 ] || { usage >&2; exit 2; }; sanitizer="$2"; shift 2 ;;
        --ci) seconds=10; shift ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
case "$seconds" in
    ''|*[!0-9]*) echo "fuzz.sh: -t needs a whole number of seconds, got '$seconds'" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/../fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

logdir=$(mktemp -d)
echo "== building fuzz targets (sanitizer: $sanitizer)"
if ! cargo fuzz build --sanitizer "$sanitizer" >"$logdir/build.log" 2>&1; then
    tail -30 "$logdir/build.log" >&2
    echo "fuzz.sh: build failed (log: $logdir/build.log)" >&2
    exit 1
fi

failed=()
for t in "${targets[@]}"; do
    echo "== $t: ${seconds}s"
    log="$logdir/$t.log"
    if cargo fuzz run --sanitizer "$sanitizer" "$t" -- -max_total_time="$seconds" >"$log" 2>&1; then
        runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -1 || true)
        echo "   ok: ${runs:-finished}"
    else
        failed+=("$t")
        echo "   CRASH (log: $log):"
        grep -E 'panicked at|SUMMARY|Test unit written' "$log" | sed 's/^/     /' || tail -20 "$log"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]}"
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no crash"
