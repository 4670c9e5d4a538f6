#!/usr/bin/env bash
# scripts/soak.sh — churn soak: random connect/send/close churn with stamped payloads against
# the example servers; at the end zero data mismatches, zero leaked slabs, and resident memory
# within 10 % of its value after warm-up.
#
# Usage: scripts/soak.sh [-h] [-d DURATION] [-e echo|kv|both] [-w WARMUP] [-R ROUND]
#                        [-s SERVER_CORE] [-c CLIENT_CORE] [-S SEED] [-o OUTDIR]
#
#   -d  soak time after the warm-up, shared by the servers soaked: 90, 90s, 2m, 1h
#       (default 10m)
#   -e  server(s): echo, kv or both (default both when the kv example exists, else echo)
#   -w  warm-up per server (default 30s)       -R  length of one load round (default 30s)
#   -s  server core (default 0)                -c  client core (default 1)
#   -S  seed of the rounds' random settings and of the load generator (default 1)
#   -o  output directory (default target/soak/<time>)
#
# Per server: start it pinned, warm it up with the heaviest churn load the rounds use, let its
# connections close and read its resident memory (VmRSS), then run shardnet-load rounds until
# the time is up. Each round draws its connections (8-64), pipeline depth (1-4), payload size
# range (echo; kv keeps one range so its store stops growing after the warm-up), requests per
# connection before it closes (up to 5, 50 or 500) and how connections end (close, half-close,
# reset). Every reply is checked byte for byte, payloads are stamped with their connection,
# generation and request, so a reply from another or an earlier connection is a mismatch.
# Memory is sampled every 5 s. At the end the load stops, the script waits for the server's
# connections to close, reads its stats (SIGUSR1: slabs in use must be 0 on every shard),
# reads VmRSS, and SIGTERMs it. It prints mismatches, other errors, leaked slabs, memory after
# warm-up vs at the end, requests and reconnects, and exits 1 on any violation (2 on bad
# arguments). Loopback only; every step has a deadline; it kills only the PIDs it started.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# Seconds in 90, 90s, 2m or 1h.
seconds() {
  local v=$1
  case "$v" in
    *h) v=$(( ${v%h} * 3600 )) ;;
    *m) v=$(( ${v%m} * 60 )) ;;
    *s) v=${v%s} ;;
  esac
  [[ $v =~ ^[0-9]+$ ]] || return 1
  echo "$v"
}

cd "$(dirname "$0")/.."
duration=10m examples="" warmup=30s round=30s server_core=0 client_core=1 seed=1 outdir=""
while getopts "hd:e:w:R:s:c:S:o:" opt; do
  case "$opt" in
    h) usage; exit 0 ;;
    d) duration=$OPTARG ;;
    e) examples=$OPTARG ;;
    w) warmup=$OPTARG ;;
    R) round=$OPTARG ;;
    s) server_core=$OPTARG ;;
    c) client_core=$OPTARG ;;
    S) seed=$OPTARG ;;
    o) outdir=$OPTARG ;;
    *) usage >&2; exit 2 ;;
  esac
done
bad() { echo "soak.sh: $*" >&2; exit 2; }
has_example() { [ -f "examples/$1.rs" ] || [ -f "examples/$1/main.rs" ]; }
duration_s=$(seconds "$duration") || bad "-d $duration is not a duration like 90, 90s, 2m or 1h"
warmup_s=$(seconds "$warmup") || bad "-w $warmup is not a duration"
round_s=$(seconds "$round") || bad "-R $round is not a duration"
if [ "$duration_s" -lt 1 ] || [ "$round_s" -lt 1 ] || [ "$warmup_s" -lt 1 ]; then
  bad "durations must be at least 1 s"
fi
[[ $seed =~ ^[0-9]+$ ]] || bad "-S $seed is not a number"
case "${examples:-default}" in
  default) if has_example kv; then examples="echo kv"; else examples="echo"; fi ;;
  both) examples="echo kv" ;;
  echo) ;;
  kv) ;;
  *) bad "-e must be echo, kv or both, not '$examples'" ;;
esac
for ex in $examples; do
  has_example "$ex" || bad "there is no $ex example (examples/$ex.rs or examples/$ex/main.rs)"
done
read -r -a list <<<"$examples"
per_server_s=$(( duration_s / ${#list[@]} ))
[ "$per_server_s" -ge 1 ] || per_server_s=1
outdir=${outdir:-target/soak/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$outdir"

echo "== building (release)" >&2
build=(--bin shardnet-load)
for ex in $examples; do build+=(--example "$ex"); done
cargo build --release --quiet "${build[@]}"
bin=target/release

server_pid="" sampler_pid=""
stop_pid() { # PID: TERM, wait up to 10 s, then KILL
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() { stop_pid "$sampler_pid"; stop_pid "$server_pid"; }
trap cleanup EXIT

# The first value of "KEY": in FILE's JSON, after the line that opens "SECTION" if given.
json_value() {
  awk -v key="$2" -v sect="${3:-}" '
    BEGIN { key = "\"" key "\":"; if (sect != "") sect = "\"" sect "\": {" }
    sect != "" && !in_sect { if (index($0, sect)) in_sect = 1; next }
    index($0, key) {
      v = substr($0, index($0, key) + length(key)); gsub(/[ ,"]/, "", v); print v; exit
    }' "$1"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# Asks the server for its stats (SIGUSR1) and prints the new table from its stderr ($1).
server_stats() {
  local err=$1 before lines
  before=$(wc -l <"$err")
  kill -USR1 "$server_pid"
  for _ in $(seq 100); do
    lines=$(tail -n +"$((before + 1))" "$err")
    if grep -q '^pool wait:' <<<"$lines"; then
      sed -n '/stats on SIGUSR1/,/^pool wait:/p' <<<"$lines"
      return 0
    fi
    sleep 0.1
  done
  echo "soak.sh: the server did not print its stats within 10 s" >&2
  return 1
}

# Per-shard columns of a stats table on stdin: "active slabs_in_use" a line, slabs in use
# "?" when the table has no such column. It is the `pool_use` column when the header names
# it, else the unnamed column before "high/total" in rows one field longer than the header.
shard_columns() {
  awk '$1 == "shard" { h = NF; u = 0; for (i = 1; i <= NF; i++) if ($i == "pool_use") u = i; next }
    h && $1 ~ /^[0-9]+$/ {
      use = "?"
      if (u) use = $u
      else if (NF == h + 1) for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) { use = $(i-1); break }
      print $4, use
    }'
}

RANDOM=$seed
pick() { # VAR CHOICES...: sets VAR to one of the choices (not in a subshell, so RANDOM advances)
  local var=$1; shift
  local a=("$@")
  printf -v "$var" '%s' "${a[RANDOM % ${#a[@]}]}"
}

total_failures=0
report=()

soak_one() { # EXAMPLE
  local ex=$1 dir="$outdir/$1" proto sizes_fixed="" addr="" failures=()
  mkdir -p "$dir"
  case "$ex" in
    echo) proto=(--protocol echo) ;;
    kv) proto=(--protocol resp --keys 10000 --set-ratio 0.3); sizes_fixed=16..4096 ;;
  esac

  echo "== $ex: starting on core $server_core" >&2
  "$bin/examples/$ex" --addr 127.0.0.1:0 --cores "$server_core" \
    >"$dir/server.out" 2>"$dir/server.err" &
  server_pid=$!
  for _ in $(seq 100); do
    addr=$(grep -o 'listening on [^ ]*' "$dir/server.err" 2>/dev/null | head -n1 | cut -d' ' -f3 || true)
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "soak.sh: $ex did not start:" >&2; cat "$dir/server.err" >&2
    total_failures=$((total_failures + 1)); report+=("$ex: FAIL (did not start)")
    return
  fi
  echo "== $ex: listening on $addr (pid $server_pid)" >&2

  # Totals over the rounds (the warm-up included).
  local requests=0 reconnects=0 mismatches=0 other_errors=0 abandoned=0 rounds=0
  load() { # NAME SECONDS ARGS...: one shardnet-load run, added to the totals
    local name=$1 secs=$2 rc=0 j="$dir/$1.json"
    shift 2
    timeout $((secs + 60)) "$bin/shardnet-load" --addr "$addr" "${proto[@]}" --cores "$client_core" \
      -d "$secs" -w 0 --quiet --json "$j" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
    if [ ! -s "$j" ]; then
      failures+=("$name: shardnet-load exited $rc without a summary (see $dir/$name.err)")
      return
    fi
    local req rec mis pro tot ab
    req=$(json_value "$j" requests); rec=$(json_value "$j" reconnects)
    mis=$(json_value "$j" mismatch errors); pro=$(json_value "$j" protocol errors)
    tot=$(json_value "$j" total errors); ab=$(json_value "$j" abandoned churn)
    requests=$((requests + req)); reconnects=$((reconnects + rec)); abandoned=$((abandoned + ${ab:-0}))
    mismatches=$((mismatches + mis + pro)); other_errors=$((other_errors + tot - mis - pro))
    rounds=$((rounds + 1))
    printf '%s: %s requests, %s reconnects, %s errors (%s)\n' "$name" "$req" "$rec" "$tot" "$*" >&2
    if [ "$rc" != 0 ]; then
      failures+=("$name: shardnet-load exited $rc: $(grep -A12 '^  errors' "$dir/$name.out" | grep 'first:' | head -n3 | tr -s ' ' | tr '\n' ';')")
    fi
  }

  # Warm-up: the heaviest settings the rounds use, so pools and allocator caches reach their
  # working size before memory is read.
  local warm_sizes=${sizes_fixed:-16..8192}
  load warmup "$warmup_s" -c 64 -p 4 --size "$warm_sizes" --reconnect-after 1..500 \
    --half-close 0.2 --reset 0.1 --seed "$seed"
  sleep 2 # lingering closes end
  local rss_warm rss_end rss_max
  rss_warm=$(rss_kb "$server_pid")
  echo "== $ex: VmRSS after warm-up $rss_warm kB" >&2

  ( while kill -0 "$server_pid" 2>/dev/null; do
      echo "$(date +%s) $(rss_kb "$server_pid")"; sleep 5
    done ) >"$dir/rss.txt" &
  sampler_pid=$!

  local start end_at now secs r=0
  start=$(date +%s); end_at=$((start + per_server_s))
  while now=$(date +%s); [ "$now" -lt "$end_at" ]; do
    r=$((r + 1))
    secs=$((end_at - now)); [ "$secs" -le "$round_s" ] || secs=$round_s
    local c p smax sizes amax half reset
    pick c 8 16 32 64; pick p 1 1 2 4; pick smax 64 512 4096 8192; pick amax 5 50 500
    pick half 0 0.1 0.2 0.4; pick reset 0 0.05 0.1 0.2
    sizes=${sizes_fixed:-16..$smax}
    load "round-$r" "$secs" -c "$c" -p "$p" --size "$sizes" --reconnect-after "1..$amax" \
      --half-close "$half" --reset "$reset" --seed $((seed * 1000 + r))
  done

  # Wait for every connection to close, then read the stats and memory.
  local stats active=1 leaked=0
  for _ in $(seq 20); do
    sleep 0.5
    stats=$(server_stats "$dir/server.err") || break
    active=$(shard_columns <<<"$stats" | awk '{ s += $1 } END { print s + 0 }')
    [ "$active" = 0 ] && break
  done
  printf '%s\n' "$stats" >"$dir/stats.txt"
  leaked=$(shard_columns <<<"$stats" | awk '$2 == "?" { u = 1 } { s += $2 } END { print (u ? "unknown" : s + 0) }')
  local shards_with_slabs
  shards_with_slabs=$(shard_columns <<<"$stats" | awk '$2 != 0' | wc -l)
  rss_end=$(rss_kb "$server_pid")
  stop_pid "$sampler_pid"; sampler_pid=""
  rss_max=$(awk -v m="$rss_end" '$2 > m { m = $2 } END { print m }' "$dir/rss.txt")
  local server_rc=0
  kill -TERM "$server_pid"
  for _ in $(seq 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    failures+=("the server did not exit within 15 s of SIGTERM")
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" || server_rc=$?
  server_pid=""
  [ "$server_rc" = 0 ] || failures+=("the server exited $server_rc after SIGTERM")

  local change
  change=$(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN { printf "%+.1f", (a > 0 ? (b - a) * 100 / a : 999) }')
  [ "$mismatches" = 0 ] || failures+=("$mismatches data mismatches")
  [ "$other_errors" = 0 ] || failures+=("$other_errors other client errors (timeouts, unexpected closes, resets)")
  if [ "$leaked" = unknown ]; then
    failures+=("the server's stats table has no slabs-in-use column to check")
  elif [ "$leaked" != 0 ]; then
    failures+=("$leaked slabs in use on $shards_with_slabs shard(s) with no connection left")
  fi
  [ "$active" = 0 ] || failures+=("$active connections still open 10 s after the load stopped")
  awk -v c="$change" 'BEGIN { exit !(c <= 10 && c >= -10) }' ||
    failures+=("VmRSS changed by $change % (limit 10 %)")

  local closed_line
  closed_line=$(grep '^closed:' "$dir/stats.txt" || true)
  {
    echo "soak $ex ($addr): warm-up ${warmup_s} s, then ${per_server_s} s in $((rounds - 1)) rounds"
    echo "  data mismatches   $mismatches"
    echo "  other errors      $other_errors"
    echo "  leaked slabs      $leaked (connections open at the end: $active)"
    echo "  VmRSS             $rss_warm kB after warm-up, $rss_end kB at the end ($change %), max $rss_max kB"
    echo "  requests          $requests"
    echo "  reconnects        $reconnects ($abandoned requests abandoned by resets, not errors)"
    echo "  server            $closed_line"
    echo "  files             $dir"
  } | tee "$dir/result.txt"
  if [ "${#failures[@]}" -gt 0 ]; then
    printf '  FAIL: %s\n' "${failures[@]}" | tee -a "$dir/result.txt"
    total_failures=$((total_failures + ${#failures[@]}))
    report+=("$ex: FAIL")
  else
    echo "  PASS" | tee -a "$dir/result.txt"
    report+=("$ex: PASS")
  fi
}

for ex in $examples; do
  soak_one "$ex"
done
echo "soak: ${report[*]}"
[ "$total_failures" = 0 ]
