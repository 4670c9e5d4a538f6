#!/usr/bin/env bash
# scripts/compare-examples.sh — measure the example servers side by side with well-known
# servers on the same core budget, alternating A B A B, and print tables of medians:
#   kv   vs redis-server (Debian's), loaded by redis-benchmark (SET/GET, pipelined and not);
#   http vs hyper (bench/http-baseline), loaded by wrk (/plaintext pipelined and not, /json).
#
# Usage: scripts/compare-examples.sh [-h] [-r ROUNDS] [-n REQUESTS] [-d SECONDS]
#                                    [-s SERVER_CORE] [-c CLIENT_CORE] [-o OUTDIR] [-k kv|http]
#                                    [-w SECONDS]
#
#   -r  rounds (default 5); each round runs every server once, in alternating order
#   -n  requests per redis-benchmark test (default 200000)
#   -d  seconds per wrk run (default 4)
#   -s  the one core every server runs on (default 0)
#   -c  the core the load generators run on (default 1)
#   -o  directory for raw client outputs (default target/compare/<time>)
#   -k  run only the kv or only the http comparison
#   -w  most seconds, in all, to spend waiting for an idle machine and redoing disturbed runs
#       (default 600; 0 measures at once, whatever else runs)
#
# Everything runs on loopback and is bounded: each client run has a timeout, each server is
# started on a port checked to be free and stopped by its PID (SIGTERM, SIGKILL after 10 s).
# Each run first waits for the machine to be idle and is redone (up to 3 times) when other
# processes took more than 15% of a core meanwhile, within the -w budget. On a quiet machine
# the defaults take about six minutes. Missing tools (redis-server, redis-tools, wrk, curl)
# are installed with apt-get when running as root.
set -euo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
rounds=5 requests=200000 seconds=4 score=0 ccore=1 outdir="" only="" budget=600
while getopts "hr:n:d:s:c:o:k:w:" opt; do
  case "$opt" in
    h) usage; exit 0 ;;
    r) rounds=$OPTARG ;;
    n) requests=$OPTARG ;;
    d) seconds=$OPTARG ;;
    s) score=$OPTARG ;;
    c) ccore=$OPTARG ;;
    o) outdir=$OPTARG ;;
    k) only=$OPTARG ;;
    w) budget=$OPTARG ;;
    *) usage >&2; exit 2 ;;
  esac
done
for v in "$rounds" "$requests" "$seconds" "$score" "$ccore" "$budget"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "compare-examples.sh: '$v' is not a number (see -h)" >&2; exit 2; }
done
[ "$rounds" -ge 1 ] || { echo "compare-examples.sh: -r must be at least 1" >&2; exit 2; }
case "$only" in ""|kv|http) ;; *) echo "compare-examples.sh: -k takes kv or http" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
root=$PWD
outdir=${outdir:-target/compare/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# --- tools ---------------------------------------------------------------------------------
declare -A need_pkg=([redis-server]=redis-server [redis-cli]=redis-tools
  [redis-benchmark]=redis-tools [wrk]=wrk [curl]=curl [taskset]=util-linux [ss]=iproute2)
missing=()
for cmd in "${!need_pkg[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need_pkg[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "compare-examples.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "compare-examples.sh: needs ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

echo "building (release) ..." >&2
timeout 1200 cargo build --release --quiet --example kv --example http
timeout 1200 cargo build --release --quiet --manifest-path bench/http-baseline/Cargo.toml
kv_bin=$root/target/release/examples/kv
http_bin=$root/target/release/examples/http
hyper_bin=$root/bench/http-baseline/target/release/http-baseline

# --- servers -------------------------------------------------------------------------------
server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

port_free() { [ -z "$(ss -Htln "sport = :$1")" ]; }

# start_server NAME PORT CMD... : starts CMD pinned to the server core, waits until PORT
# accepts connections (at most 20 s).
start_server() {
  local name=$1 port=$2
  shift 2
  port_free "$port" || { echo "compare-examples.sh: port $port is in use" >&2; exit 1; }
  taskset -c "$score" "$@" >"$outdir/$name.server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do
    if ! port_free "$port"; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$outdir/$name.server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "compare-examples.sh: $name did not listen on $port" >&2
  exit 1
}

# The server's CPU time so far (all threads), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
# Busy ticks of CPU $1 so far (all but idle and iowait), or of the whole machine without $1.
core_busy() { awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# CPU time of this shell's finished children so far, in ticks, from the output of bash's
# `times` (second line) saved in $outdir/.times. (`times` must run in this shell, not in a
# command substitution, whose children are its own.)
children_ticks() {
  awk -v hz="$hz" 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
    printf "%.0f", t * hz
  }' "$outdir/.times"
}
hz=$(getconf CLK_TCK)

# Waits until the machine has been nearly idle (under 10% of its CPU busy) for a second,
# spending at most what is left of the -w budget; other people's benchmarks on a shared
# machine disturb ours.
wait_quiet() {
  local a b
  while [ "$budget" -gt 0 ]; do
    a=$(core_busy "") && sleep 1 && b=$(core_busy "")
    budget=$((budget - 1))
    if [ $((100 * (b - a) / hz)) -lt $((10 * $(nproc))) ]; then return 0; fi
  done
  return 1
}

# client OUTFILE CMD... : runs the load generator pinned to the client core (bounded) and
# sets $busy to the server's CPU use during the run (percent of one core) and $other to the
# CPU the two cores spent on anything but the server and the client. A run disturbed by
# others (other > 15%) is redone, up to 3 times; $disturbed counts the ones kept anyway.
busy=0 other=0 disturbed=0
client() {
  local out=$1 try t0 t1 c0 c1 s0 s1 k0 k1 l0 l1
  shift
  for try in 1 2 3 4; do
    wait_quiet || true
    local started=$SECONDS
    times >"$outdir/.times"
    c0=$(cpu_ticks) s0=$(core_busy "$score") k0=$(core_busy "$ccore") l0=$(children_ticks)
    t0=$(date +%s.%N)
    timeout 300 taskset -c "$ccore" "$@" >"$out" 2>&1
    t1=$(date +%s.%N)
    times >"$outdir/.times"
    c1=$(cpu_ticks) s1=$(core_busy "$score") k1=$(core_busy "$ccore") l1=$(children_ticks)
    read -r busy other < <(awk -v c="$((c1 - c0))" -v l="$((l1 - l0))" -v s="$((s1 - s0))" \
      -v k="$((k1 - k0))" -v hz="$hz" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
      'BEGIN { o = s + k - c - l; if (o < 0) o = 0; printf "%.0f %.0f\n", 100 * c / hz / w, 100 * o / hz / w }')
    [ "$other" -gt 15 ] || return 0
    [ "$budget" -gt 0 ] && [ "$try" -lt 4 ] || break
    budget=$((budget - (SECONDS - started)))
    echo "  (run disturbed: ${other}% of a core went to other work; again)" >&2
  done
  disturbed=$((disturbed + 1))
}

# Results: one line per measurement,
# "TABLE<TAB>ROW<TAB>SERVER<TAB>REQ_PER_S<TAB>SERVER_CPU%<TAB>OTHER_CPU%".
results=$outdir/results.tsv
: >"$results"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$busy" "$other" >>"$results"; }

# --- kv vs redis-server ----------------------------------------------------------------------
kv_port=16380 redis_port=16379
bench_resp() { # NAME PORT ROUND
  local name=$1 port=$2 round=$3 p t out rps
  for p in 16 1; do
    for t in SET GET; do
      out="$outdir/$name.r$round.$t.P$p.txt"
      client "$out" redis-benchmark -h 127.0.0.1 -p "$port" -t "$t" -n "$requests" -c 50 \
        -P "$p" -r 100000 -q
      rps=$(tr '\r' '\n' <"$out" | awk -v t="$t:" '$1 == t && /requests per second/ {print $2}' | tail -1)
      [ -n "$rps" ] || { echo "compare-examples.sh: no $t result in $out" >&2; cat "$out" >&2; exit 1; }
      record kv "$t -P $p" "$name" "$rps"
    done
  done
}
run_kv() {
  local round=$1
  start_server kv "$kv_port" "$kv_bin" --addr "127.0.0.1:$kv_port" --cores "$score"
  bench_resp kv "$kv_port" "$round"
  stop_server
  start_server redis "$redis_port" redis-server --port "$redis_port" --bind 127.0.0.1 \
    --save '' --appendonly no --protected-mode no
  bench_resp redis "$redis_port" "$round"
  stop_server
}

# --- http vs hyper ---------------------------------------------------------------------------
http_port=18080 hyper_port=18081
lua=$outdir/pipeline.lua
cat >"$lua" <<'EOF'
init = function(args)
  local depth = tonumber(args[1]) or 1
  local r = {}
  for i = 1, depth do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function() return req end
EOF
bench_http() { # NAME PORT ROUND
  local name=$1 port=$2 round=$3 label path depth out rps
  for spec in "plaintext -P 16:/plaintext:16" "plaintext:/plaintext:1" "json:/json:1"; do
    IFS=: read -r label path depth <<<"$spec"
    out="$outdir/$name.r$round.${label// /}.txt"
    if [ "$depth" = 1 ]; then
      client "$out" wrk -t 1 -c 64 -d "${seconds}s" --timeout 10s "http://127.0.0.1:$port$path"
    else
      client "$out" wrk -t 1 -c 64 -d "${seconds}s" --timeout 10s -s "$lua" \
        "http://127.0.0.1:$port$path" -- "$depth"
    fi
    if grep -q -e "Non-2xx" -e "Socket errors" "$out"; then
      echo "compare-examples.sh: errors in $out" >&2
      cat "$out" >&2
      exit 1
    fi
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    [ -n "$rps" ] || { echo "compare-examples.sh: no result in $out" >&2; cat "$out" >&2; exit 1; }
    record http "$label" "$name" "$rps"
  done
}
run_http() {
  local round=$1
  start_server http "$http_port" "$http_bin" --addr "127.0.0.1:$http_port" --cores "$score"
  bench_http shardnet "$http_port" "$round"
  stop_server
  start_server hyper "$hyper_port" "$hyper_bin" "127.0.0.1:$hyper_port"
  bench_http hyper "$hyper_port" "$round"
  stop_server
}

for round in $(seq "$rounds"); do
  echo "round $round of $rounds ..." >&2
  [ "$only" = http ] || run_kv "$round"
  [ "$only" = kv ] || run_http "$round"
done

# --- tables ----------------------------------------------------------------------------------
# clean TABLE ROW SERVER: 1 when some run of it was undisturbed (then only those count).
clean() {
  awk -F'\t' -v t="$1" -v r="$2" -v s="$3" '$1 == t && $2 == r && $3 == s && $6 <= 15 {n++}
    END {print (n > 0)}' "$results"
}
# runs TABLE ROW SERVER: how many runs the median is taken over.
runs() {
  local only
  only=$(clean "$1" "$2" "$3")
  awk -F'\t' -v t="$1" -v r="$2" -v s="$3" -v only="$only" \
    '$1 == t && $2 == r && $3 == s && (!only || $6 <= 15) {n++} END {print n + 0}' "$results"
}
# median COLUMN TABLE ROW SERVER: the median of column 4 (req/s) or 5 (CPU%) over the
# undisturbed runs (over all runs if every one was disturbed).
median() {
  local only
  only=$(clean "$2" "$3" "$4")
  awk -F'\t' -v c="$1" -v t="$2" -v r="$3" -v s="$4" -v only="$only" \
    '$1 == t && $2 == r && $3 == s && (!only || $6 <= 15) {print $c}' "$results" |
    sort -g | awk '{v[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
table() { # TABLE A B HEADER
  local t=$1 a=$2 b=$3 header=$4 row ra rb ca cb na nb
  printf '\n%s\n\n| test | %s req/s | %s CPU | %s req/s | %s CPU | %s / %s | runs |\n|---|---:|---:|---:|---:|---:|---:|\n' \
    "$header" "$a" "$a" "$b" "$b" "$a" "$b"
  awk -F'\t' -v t="$t" '$1 == t && !seen[$2]++ {print $2}' "$results" | while read -r row; do
    ra=$(median 4 "$t" "$row" "$a")
    rb=$(median 4 "$t" "$row" "$b")
    ca=$(median 5 "$t" "$row" "$a")
    cb=$(median 5 "$t" "$row" "$b")
    na=$(runs "$t" "$row" "$a")
    nb=$(runs "$t" "$row" "$b")
    awk -v r="$row" -v a="$ra" -v b="$rb" -v ca="$ca" -v cb="$cb" -v n="$na+$nb" \
      'BEGIN {printf "| %s | %.0f | %.0f%% | %.0f | %.0f%% | %.2f | %s |\n", r, a, ca, b, cb, a / b, n}'
  done
}
cpu=$(grep -m1 "model name" /proc/cpuinfo | sed 's/.*: //')
echo
echo "Machine: $cpu, $(nproc) cores, Linux $(uname -r). Servers on core $score, clients on core $ccore;"
echo "medians over $rounds alternating rounds, of the runs other work did not disturb (runs ="
echo "how many per side; $disturbed disturbed runs were left out or, where a row had no other,"
echo "kept). CPU = the server's CPU time over the run's wall time (100% = one core busy)."
echo "Raw outputs: $outdir"
if [ "$only" != http ]; then
  table kv kv redis "kv (1 shard) vs redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'): redis-benchmark -t set (then get) -n $requests -c 50 -r 100000 [-P 16]"
fi
if [ "$only" != kv ]; then
  table http shardnet hyper "http (1 shard) vs hyper 1 (current-thread tokio): wrk -t 1 -c 64 -d ${seconds}s [pipeline.lua 16]"
fi
