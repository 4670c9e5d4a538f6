#!/usr/bin/env bash
# scripts/slowloris.sh — does a good client keep its latency while slow clients trickle?
#
# Usage: scripts/slowloris.sh [-h] [-s SERVER_CORE] [-c CLIENT_CORE] [-n TRICKLERS]
#                             [-t RECV_TIMEOUT] [-T EVERY] [-m MEASURE] [-r ROUNDS]
#                             [-x MAX_RATIO] [-o OUTDIR]
#
#   -s  core for the echo server (default 0)       -c  core for both clients (default 1)
#   -n  trickling connections (default 500)
#   -t  the server's --recv-timeout in seconds (default 2)
#   -T  seconds between one trickling connection's bytes (default 3; must exceed -t)
#   -m  measured seconds of each good-client run (default 10)
#   -r  rounds; each is one run without and one with the tricklers (default 2)
#   -x  largest allowed ratio p99(with) / p99(without) (default 2)
#   -o  output directory (default target/slowloris/<time>)
#
# The echo server runs with a short receive timeout. The good client is shardnet-load, closed
# loop, 10 connections x 64 B. Runs alternate: without tricklers, then with -n connections from
# shardnet-trickle that each send one byte every -T seconds and reconnect when the server
# closes them, so the server holds -n slow peers all the time (their connects are spread over
# the first -T seconds, before the good client starts). The script prints every p99,
# the ratio of the mean p99 with them to the mean without, and the server's close counters.
# It fails (exit 1) if the ratio is above -x, if the server did not count a timed-out close
# for every trickling connection it closed, if the closes did not come at the receive timeout,
# if the good client saw any error, or if slabs are left in use. Loopback only; every step
# has a deadline (about 55 s with the defaults, plus the build); it kills only its own PIDs.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
server_core=0 client_core=1 tricklers=500 recv_timeout=2 every=3 measure=10 rounds=2
max_ratio=2 outdir=""
while getopts "hs:c:n:t:T:m:r:x:o:" opt; do
  case "$opt" in
    h) usage; exit 0 ;;
    s) server_core=$OPTARG ;;
    c) client_core=$OPTARG ;;
    n) tricklers=$OPTARG ;;
    t) recv_timeout=$OPTARG ;;
    T) every=$OPTARG ;;
    m) measure=$OPTARG ;;
    r) rounds=$OPTARG ;;
    x) max_ratio=$OPTARG ;;
    o) outdir=$OPTARG ;;
    *) usage >&2; exit 2 ;;
  esac
done
for v in "$tricklers" "$measure" "$rounds"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "slowloris.sh: '$v' is not a positive integer" >&2; exit 2; }
done
for v in "$recv_timeout" "$every" "$max_ratio"; do
  [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "slowloris.sh: '$v' is not a number" >&2; exit 2; }
done
if ! awk -v t="$recv_timeout" -v e="$every" 'BEGIN { exit !(e > t && t > 0) }'; then
  echo "slowloris.sh: -T ($every s) must be longer than -t ($recv_timeout s)" >&2
  exit 2
fi

cd "$(dirname "$0")/.."
outdir=${outdir:-target/slowloris/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$outdir"
pin=()
command -v taskset >/dev/null && pin=(taskset -c "$client_core")

echo "== building (release)" >&2
cargo build --release --quiet --example echo --bin shardnet-load --bin shardnet-trickle
bin=target/release

server_pid="" trickle_pid=""
stop_pid() { # PID: TERM, wait up to 10 s, then KILL
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() { stop_pid "$trickle_pid"; stop_pid "$server_pid"; }
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

# Asks the server for its stats (SIGUSR1) and prints the new table from its stderr.
server_stats() {
  local before lines
  before=$(wc -l <"$outdir/server.err")
  kill -USR1 "$server_pid"
  for _ in $(seq 100); do
    lines=$(tail -n +"$((before + 1))" "$outdir/server.err")
    if grep -q '^pool wait:' <<<"$lines"; then
      sed -n '/stats on SIGUSR1/,/^pool wait:/p' <<<"$lines"
      return 0
    fi
    sleep 0.1
  done
  echo "slowloris.sh: the server did not print its stats within 10 s" >&2
  return 1
}

# Slabs in use per shard, one a line ("?" when the table has no such column): the `pool_use`
# column when the header names it, else the unnamed column before "high/total" in rows one
# field longer than the header.
slabs_in_use() {
  awk '$1 == "shard" { h = NF; u = 0; for (i = 1; i <= NF; i++) if ($i == "pool_use") u = i; next }
    h && $1 ~ /^[0-9]+$/ {
      use = "?"
      if (u) use = $u
      else if (NF == h + 1) for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) { use = $(i-1); break }
      print use
    }'
}

echo "== starting echo on core $server_core, --recv-timeout $recv_timeout" >&2
"$bin/examples/echo" --addr 127.0.0.1:0 --cores "$server_core" --recv-timeout "$recv_timeout" \
  >"$outdir/server.out" 2>"$outdir/server.err" &
server_pid=$!
addr=""
for _ in $(seq 100); do
  addr=$(grep -o 'listening on [^ ]*' "$outdir/server.err" 2>/dev/null | head -n1 | cut -d' ' -f3 || true)
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "slowloris.sh: the server did not start:" >&2; cat "$outdir/server.err" >&2; exit 1
fi
echo "== echo listening on $addr (pid $server_pid)" >&2

failures=()
p99="" p50=""
good_run() { # NAME: one good-client run; sets p99 and p50 (µs)
  local name=$1 rc=0
  timeout $((measure + 30)) "$bin/shardnet-load" --addr "$addr" --protocol echo -c 10 --size 64 \
    -d "$measure" -w 1 --cores "$client_core" --quiet --json "$outdir/$name.json" \
    --hgrm "$outdir/$name.hgrm" >"$outdir/$name.out" 2>"$outdir/$name.err" || rc=$?
  if [ "$rc" != 0 ]; then
    failures+=("good client run $name exited $rc (see $outdir/$name.out)")
  fi
  p99=$(json_value "$outdir/$name.json" p99 latency_us)
  p99=${p99:-0}
  p50=$(json_value "$outdir/$name.json" p50 latency_us)
}

# Seconds the tricklers run before the good client starts: their connects are spread over one
# period (-T), so after it they are all there and their timeouts are spread evenly.
lead=$(awk -v e="$every" 'BEGIN { printf "%d", int(e + 0.999) + 1 }')
without=() with=() without50=() with50=() closed_total=0
for r in $(seq "$rounds"); do
  good_run "without-$r"
  p=$p99
  without+=("$p"); without50+=("$p50")
  echo "round $r: without tricklers  p99 ${p} us (p50 $p50)" >&2

  "${pin[@]}" "$bin/shardnet-trickle" --addr "$addr" -c "$tricklers" --every "${every}s" \
    -d "$((lead + measure + 2))s" --reconnect --json "$outdir/trickle-$r.json" \
    >"$outdir/trickle-$r.out" 2>"$outdir/trickle-$r.err" &
  trickle_pid=$!
  sleep "$lead"
  good_run "with-$r"
  p=$p99
  with+=("$p"); with50+=("$p50")
  rc=0
  wait "$trickle_pid" || rc=$?
  trickle_pid=""
  [ "$rc" = 0 ] || failures+=("shardnet-trickle round $r exited $rc (see $outdir/trickle-$r.out)")
  closed=$(json_value "$outdir/trickle-$r.json" closed_by_server)
  quiet=$(json_value "$outdir/trickle-$r.json" mean_s silence_before_close)
  quiet_max=$(json_value "$outdir/trickle-$r.json" max_s silence_before_close)
  closed_total=$((closed_total + closed))
  echo "round $r: with $tricklers tricklers p99 ${p} us (p50 $p50); the server closed $closed of them," \
    "${quiet} s mean / ${quiet_max} s max after their last byte" >&2
  if ! awk -v q="$quiet" -v t="$recv_timeout" 'BEGIN { exit !(q >= t * 0.9 && q <= t + 1) }'; then
    failures+=("round $r: trickling connections were closed ${quiet} s after their last byte, not at the ${recv_timeout} s receive timeout")
  fi
  if [ "$closed" -lt "$tricklers" ]; then
    failures+=("round $r: only $closed of $tricklers trickling connections were closed by the server")
  fi
done

sleep 1.5 # the server's lingering closes end
server_stats >"$outdir/stats.txt"
stop_pid "$server_pid"
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=""
[ "$server_rc" = 0 ] || failures+=("the server exited $server_rc")

closed_line=$(grep '^closed:' "$outdir/stats.txt")
timeouts=$(sed -n 's/.* timeout=\([0-9]*\).*/\1/p' <<<"$closed_line")
leaked=$(slabs_in_use <"$outdir/stats.txt" | awk '$1 == "?" { u = 1 } { s += $1 } END { print (u ? "unknown" : s + 0) }')
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.1f", s / NR }'; }
m_without=$(mean "${without[@]}")
m_with=$(mean "${with[@]}")
ratio=$(awk -v a="$m_with" -v b="$m_without" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 999) }')
# Runs of the same kind that differ by more than 2x mean something else was using the cores.
spread() { printf '%s\n' "$@" | awk 'NR == 1 || $1 < lo { lo = $1 } $1 > hi { hi = $1 } END { printf "%.1f", (lo > 0 ? hi / lo : 999) }'; }
spread_without=$(spread "${without[@]}")
spread_with=$(spread "${with[@]}")

echo
echo "slowloris: echo $addr, server core $server_core, clients core $client_core, --recv-timeout $recv_timeout s"
echo "  good client     shardnet-load closed loop, 10 connections x 64 B, ${measure} s per run"
echo "  tricklers       $tricklers connections, 1 byte each every ${every} s, reconnecting"
echo "  p99 without     ${without[*]} us (mean $m_without)"
echo "  p99 with        ${with[*]} us (mean $m_with)"
echo "  p50 without     ${without50[*]} us; with ${with50[*]} us"
echo "  ratio           $ratio (limit $max_ratio)"
if awk -v a="$spread_without" -v b="$spread_with" 'BEGIN { exit !(a > 2 || b > 2) }'; then
  echo "  note            runs of the same kind differ by ${spread_without}x (without) and" \
    "${spread_with}x (with): the machine was busy ($(cut -d' ' -f1-3 /proc/loadavg)); rerun"
fi
echo "  server closes   $closed_line"
echo "  timed out       $timeouts counted by the server, $closed_total trickling connections closed as seen by the client"
echo "  slabs in use    $leaked after the run"
echo "  files           $outdir"

awk -v r="$ratio" -v m="$max_ratio" 'BEGIN { exit !(r <= m) }' ||
  failures+=("p99 with tricklers is $ratio x the p99 without (limit $max_ratio)")
[ -n "$timeouts" ] && [ "$timeouts" -ge "$closed_total" ] ||
  failures+=("the server counted ${timeouts:-no} timed-out closes for $closed_total trickling connections it closed")
[ "$leaked" = 0 ] || failures+=("$leaked slabs still in use after the run")

if [ "${#failures[@]}" -gt 0 ]; then
  printf 'FAIL: %s\n' "${failures[@]}"
  exit 1
fi
echo "PASS"
