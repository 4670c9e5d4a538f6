#!/usr/bin/env bash
# scripts/loadtest.sh — build in release, start an example server pinned to chosen cores, load it
# with shardnet-load on the other cores, print the client's and the server's histograms, stop the
# server, and exit non-zero if the load saw errors or the server did not exit cleanly.
#
# Usage: scripts/loadtest.sh [-h] [-e echo|kv|http] [-s SERVER_CORES] [-c CLIENT_CORES]
#                            [-n CONNECTIONS] [-p PIPELINE] [-r RATE] [-z SIZE]
#                            [-d DURATION] [-w WARMUP] [-o OUTDIR] [-- SHARDNET_LOAD_ARGS...]
#
#   -e  example server to run (default echo; kv is loaded with RESP, http with GET /plaintext)
#   -s  cores for the server, e.g. 0 or 0,1 (default 0)
#   -c  cores for the load generator (default: the cores the server does not use)
#   -n  connections (default 50)      -p  requests in flight per connection (default 1)
#   -r  open loop at RATE requests/s over all connections (default: closed loop)
#   -z  request size in bytes (default 64)
#   -d  measured duration (default 10s)   -w  warmup (default 2s)
#   -o  directory for client.json, client.hgrm, server.hgrm, server.hlog, latency.svg
#       (default target/loadtest/<example>-<time>)
#
# Everything runs on loopback and is bounded in time: each step has a timeout, and the server
# is stopped by its PID (SIGTERM, then SIGKILL after 30 s).
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
example=echo server_cores=0 client_cores="" conns=50 pipeline=1 rate="" size=64
duration=10s warmup=2s outdir=""
while getopts "he:s:c:n:p:r:z:d:w:o:" opt; do
  case "$opt" in
    h) usage; exit 0 ;;
    e) example=$OPTARG ;;
    s) server_cores=$OPTARG ;;
    c) client_cores=$OPTARG ;;
    n) conns=$OPTARG ;;
    p) pipeline=$OPTARG ;;
    r) rate=$OPTARG ;;
    z) size=$OPTARG ;;
    d) duration=$OPTARG ;;
    w) warmup=$OPTARG ;;
    o) outdir=$OPTARG ;;
    *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift

case "$example" in
  echo) protocol=(--protocol echo) ;;
  kv) protocol=(--protocol resp) ;;
  http) protocol=(--protocol http --path /plaintext) ;;
  *) echo "loadtest.sh: unknown example '$example' (echo, kv or http)" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
outdir=${outdir:-target/loadtest/$example-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$outdir"

echo "== building (release)" >&2
cargo build --release --quiet --example "$example" --bin shardnet-load
server_bin=target/release/examples/$example
load_bin=target/release/shardnet-load

server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

echo "== starting $example on cores $server_cores" >&2
"$server_bin" --addr 127.0.0.1:0 --cores "$server_cores" \
  --hgrm "$outdir/server.hgrm" --hlog "$outdir/server.hlog" \
  >"$outdir/server.out" 2>"$outdir/server.err" &
server_pid=$!
addr=""
for _ in $(seq 300); do
  addr=$(grep -o 'listening on [^ ]*' "$outdir/server.err" 2>/dev/null | head -n1 | cut -d' ' -f3 || true)
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "loadtest.sh: the server did not start:" >&2
  cat "$outdir/server.err" >&2
  exit 1
fi
echo "== $example listening on $addr (pid $server_pid)" >&2

load_args=(--addr "$addr" "${protocol[@]}" -c "$conns" -p "$pipeline" -s "$size"
  -d "$duration" -w "$warmup" --json "$outdir/client.json" --hgrm "$outdir/client.hgrm"
  --plot "$outdir/latency.svg")
[ -n "$rate" ] && load_args+=(--rate "$rate")
[ -n "$client_cores" ] && load_args+=(--cores "$client_cores")

to_seconds() { # 10s, 500ms, 2m, 10 -> whole seconds, rounded up
  local v=$1
  case "$v" in
    *ms) echo $(( (${v%ms} + 999) / 1000 )) ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *s) echo "${v%s}" | cut -d. -f1 ;;
    *) echo "$v" | cut -d. -f1 ;;
  esac
}
limit=$(( $(to_seconds "$duration") + $(to_seconds "$warmup") + 60 ))

echo "== shardnet-load ${load_args[*]} $*" >&2
set +e
timeout "$limit" "$load_bin" "${load_args[@]}" "$@"
load_rc=$?
set -e

echo "== stopping the server (SIGTERM)" >&2
kill -TERM "$server_pid"
server_rc=0
for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then
  echo "loadtest.sh: the server did not exit within 30 s of SIGTERM" >&2
  kill -KILL "$server_pid"
  server_rc=1
else
  wait "$server_pid" || server_rc=$?
fi
server_pid=""

echo
echo "== server stats ($outdir/server.out has the full distribution)"
sed '/^service latency distribution/,$d' "$outdir/server.out"

# Percentiles of both histograms, read from their .hgrm files (microseconds).
pct() { # FILE PERCENTILE -> the first value at or above it
  awk -v p="$2" '$1 ~ /^[0-9.]+$/ && $2 + 0 >= p { print $1; exit }' "$1"
}
hmax() { awk -F'[=,]' '/^#\[Max/ { gsub(/ /, "", $2); print $2 }' "$1"; }
if [ -s "$outdir/client.hgrm" ] && [ -s "$outdir/server.hgrm" ]; then
  echo
  echo "== latency histograms, microseconds (client: request to reply; server: receive to send)"
  printf '%-8s %12s %12s\n' percentile client server
  for p in 0.5 0.9 0.99 0.999 0.9999; do
    printf '%-8s %12s %12s\n' "$(awk -v p="$p" 'BEGIN { printf "p%g", p * 100 }')" \
      "$(pct "$outdir/client.hgrm" "$p")" "$(pct "$outdir/server.hgrm" "$p")"
  done
  printf '%-8s %12s %12s\n' max "$(hmax "$outdir/client.hgrm")" "$(hmax "$outdir/server.hgrm")"
fi
if [ -s "$outdir/client.hgrm" ] && [ -s "$outdir/server.hgrm" ]; then
  "$load_bin" plot --out "$outdir/client-vs-server.svg" \
    "$outdir/client.hgrm" "$outdir/server.hgrm" >/dev/null 2>&1 || true
fi
echo
echo "== files: $outdir/{client.json,client.hgrm,server.hgrm,server.hlog,latency.svg,client-vs-server.svg}"
if [ "$load_rc" != 0 ]; then
  echo "loadtest.sh: shardnet-load exited $load_rc (errors or a failed run)" >&2
  exit 1
fi
if [ "$server_rc" != 0 ]; then
  echo "loadtest.sh: the server exited $server_rc" >&2
  exit 1
fi
