#!/usr/bin/env bash
# scripts/compare.sh — shardnet side by side with tokio, monoio and raw glommio echo servers.
#
# Usage: scripts/compare.sh [-h] [-s SCENARIOS] [-t TARGETS] [-r ROUNDS] [-d SECS] [-w SECS]
#                           [--server-cores LIST] [--client-cores LIST] [-p PORT] [-o FILE]
#                           [--idle-conns N] [--idle-secs SECS] [--no-build] [--no-perf]
#                           [--keep] [--allow-few-rounds] [--max-others PCT|off] [--retries N]
#                           [--quiet-wait SECS]
#
#   -s SCENARIOS  comma list (default all): c1 c50 c500 open20k open50 open80 16k idle10k idle
#   -t TARGETS    comma list (default all): shardnet tokio-ct tokio-mt monoio glommio; also
#                 shardnet@FLAGS, the echo example with extra flags joined by +, e.g.
#                 shardnet@--backend=glommio or shardnet@--driver-spin-us=20; and alt (or
#                 alt@FLAGS): another build of the echo example, given with --alt-echo
#   -r ROUNDS     rounds per scenario, targets alternating in each (default 3, at least 3
#                 unless --allow-few-rounds)
#   -d SECS       measured seconds per load run (default 2, at least 2)
#   -w SECS       warmup seconds per load run (default 1, at least 1)
#   --server-cores LIST  cores of the server under test (default 0)
#   --client-cores LIST  cores of shardnet-load and the idle-connection helper (default 1)
#   -p PORT       loopback port the servers listen on (default 7350)
#   -o FILE       also write the tables and raw lines to FILE (markdown)
#   --idle-conns N   idle connections in idle10k (default 10000; 1000 are used in idle)
#   --idle-secs SECS idle CPU window in the idle scenario (default 5)
#   --no-build    use the binaries already built
#   --alt-echo PATH  the echo binary of target alt (e.g. a build of another commit, made
#                 with CARGO_TARGET_DIR=/tmp/other cargo build --release --example echo)
#   --no-perf     do not count syscalls (perf adds a little cost per syscall)
#   --keep        keep the working directory with every run's logs and JSON
#   --max-others PCT  a load run during which other processes (or hypervisor steal) used more
#                 than PCT % of one core is repeated, up to --retries times (default 25; off)
#   --retries N   repeats of a disturbed run (default 1); the last attempt counts, flagged
#   --quiet-wait SECS  before each run, wait up to SECS for other processes to use less than
#                 --max-others (default 5; 0 = do not wait)
#
# Scenarios (64-byte echo unless said): c1/c50/c500 closed loop at 1/50/500 connections;
# open20k open loop 20,000 req/s over 50 connections; open50 and open80 open loop at 50 % and
# 80 % of the fastest target's c50 median throughput measured in this invocation (c50 runs
# first; when it is not selected a one-round c50 calibration runs); 16k 16 KiB messages, 50 connections; idle10k N
# idle connections held open plus 50 active closed loop (RSS delta per idle connection);
# idle: server CPU over --idle-secs with no connection, then with 1,000 idle connections.
#
# Each run starts its own server (pinned with taskset to --server-cores), waits for its
# "listening" line, drives it with shardnet-load pinned to --client-cores, samples the server
# in a window inside shardnet-load's measured time, then stops it with SIGTERM (by PID).
# Defaults take about 12 minutes on a quiet 2-core machine (longer when other work delays
# runs); `-s c50` alone about 1.
# Loopback only. Exit 0 when every run worked, 1 when some target failed (the tables say
# which), 2 for bad arguments.
set -uo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "compare.sh: $*" >&2; exit 2; }

ALL_SCENARIOS="c1 c50 c500 open20k open50 open80 16k idle10k idle"
ALL_TARGETS="shardnet tokio-ct tokio-mt monoio glommio"
scenarios_arg="" targets_arg="" rounds=3 duration=2 warmup=1
server_cores=0 client_cores=1 port=7350 out_file="" idle_n=10000 idle_secs=5
alt_bin="" build=1 use_perf=1 keep=0 allow_few=0 max_others=25 retries=1 quiet_wait=5

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    -s) scenarios_arg="${2:?-s needs a value}"; shift 2 ;;
    -t) targets_arg="${2:?-t needs a value}"; shift 2 ;;
    -r) rounds="${2:?-r needs a value}"; shift 2 ;;
    -d) duration="${2:?-d needs a value}"; shift 2 ;;
    -w) warmup="${2:?-w needs a value}"; shift 2 ;;
    --server-cores) server_cores="${2:?--server-cores needs a value}"; shift 2 ;;
    --client-cores) client_cores="${2:?--client-cores needs a value}"; shift 2 ;;
    -p) port="${2:?-p needs a value}"; shift 2 ;;
    -o) out_file="${2:?-o needs a value}"; shift 2 ;;
    --idle-conns) idle_n="${2:?--idle-conns needs a value}"; shift 2 ;;
    --idle-secs) idle_secs="${2:?--idle-secs needs a value}"; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-perf) use_perf=0; shift ;;
    --alt-echo) [ $# -ge 2 ] || die "--alt-echo needs a path"; alt_bin=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --max-others) max_others="${2:?--max-others needs a value}"; shift 2 ;;
    --retries) retries="${2:?--retries needs a value}"; shift 2 ;;
    --quiet-wait) quiet_wait="${2:?--quiet-wait needs a value}"; shift 2 ;;
    --allow-few-rounds) allow_few=1; shift ;;
    *) die "unknown argument '$1' (see -h)" ;;
  esac
done

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$rounds" && [ "$rounds" -ge 1 ] || die "-r must be a positive integer"
[ "$rounds" -ge 3 ] || [ "$allow_few" = 1 ] || die "-r must be at least 3 (alternation needs rounds; --allow-few-rounds to override)"
is_uint "$duration" && [ "$duration" -ge 2 ] || die "-d must be an integer >= 2"
is_uint "$warmup" && [ "$warmup" -ge 1 ] || die "-w must be an integer >= 1"
is_uint "$port" && [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] || die "-p must be a port in 1024..65535"
is_uint "$idle_n" && [ "$idle_n" -ge 1 ] || die "--idle-conns must be a positive integer"
is_uint "$idle_secs" && [ "$idle_secs" -ge 1 ] || die "--idle-secs must be a positive integer"
is_uint "$retries" || die "--retries must be an integer >= 0"
is_uint "$quiet_wait" || die "--quiet-wait must be an integer >= 0"
[ "$max_others" = off ] || is_uint "$max_others" || die "--max-others takes a percentage or off"
[[ "$server_cores" =~ ^[0-9,-]+$ ]] || die "--server-cores takes a CPU list like 0 or 0,1"
[[ "$client_cores" =~ ^[0-9,-]+$ ]] || die "--client-cores takes a CPU list like 1 or 2-3"

pick() { # pick "CHOSEN" "ALL" NAME: the chosen items in canonical order, or die
  local chosen="${1//,/ }" all="$2" what="$3" c a ok out=""
  [ -n "$chosen" ] || { echo "$all"; return; }
  for c in $chosen; do
    ok=0; for a in $all; do [ "$a" = "$c" ] && ok=1; done
    case "$c" in shardnet@*|alt|alt@*) [ "$what" = target ] && ok=1 ;; esac
    [ "$ok" = 1 ] || die "unknown $what '$c' (one of: $all, shardnet@FLAGS, alt, alt@FLAGS)"
  done
  for a in $all; do for c in $chosen; do [ "$a" = "$c" ] && { out="$out $a"; break; }; done; done
  # Variants of shardnet (shardnet@--flag=value+--other=value) keep the order given.
  for c in $chosen; do case "$c" in shardnet@*|alt|alt@*) out="$out $c" ;; esac; done
  echo "${out# }"
}
scenarios=$(pick "$scenarios_arg" "$ALL_SCENARIOS" scenario) || exit 2
targets=$(pick "$targets_arg" "$ALL_TARGETS" target) || exit 2
case " $targets " in
  *" alt "*|*" alt@"*) [ -n "$alt_bin" ] && [ -x "$alt_bin" ] ||
    die "target alt needs --alt-echo PATH to an executable echo example" ;;
esac

command -v python3 >/dev/null || { echo "compare.sh: needs python3 (summaries, JSON)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "compare.sh: needs taskset (util-linux)" >&2; exit 1; }

root="$(cd "$(dirname "$0")/.." && pwd)"
load_bin="$root/target/release/shardnet-load"
echo_bin="$root/target/release/examples/echo"
base_dir="$root/bench/baselines"
base_bin="$base_dir/target/release/baseline-echo"
idle_bin="$base_dir/target/release/idle-conns"
addr="127.0.0.1:$port"
clk_tck=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/shardnet-compare.XXXXXX)
results="$work/results.txt"
: >"$results"

# Every process this script starts, by PID; the exit trap ends whichever still run.
SERVER_PID="" LOAD_PID="" IDLE_PID=""
alive() { # alive PID: running and not a zombie
  local st
  st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
stop_pid() { # stop_pid PID SECONDS: TERM, wait up to SECONDS, then KILL; sets STOP_STATUS
  local pid="$1" secs="$2" i
  STOP_STATUS=none
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < secs * 20; i++)); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    STOP_STATUS=killed
    return 0
  fi
  wait "$pid" 2>/dev/null
  STOP_STATUS=$?
}
cleanup() {
  local p
  for p in $LOAD_PID $IDLE_PID $SERVER_PID; do kill -KILL "$p" 2>/dev/null; done
  if [ "$keep" = 1 ]; then echo "compare.sh: logs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "compare.sh: interrupted" >&2; exit 130' INT TERM

log() { echo "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Build.
if [ "$build" = 1 ]; then
  log "compare.sh: building shardnet-load, the echo example and the baselines (release)"
  (cd "$root" && cargo build --release --quiet --bin shardnet-load --example echo) ||
    { echo "compare.sh: building shardnet failed" >&2; exit 1; }
  if ! (cd "$base_dir" && cargo build --release --quiet); then
    log "compare.sh: building bench/baselines failed; baseline targets will be reported as failed"
  fi
fi
[ -x "$load_bin" ] || { echo "compare.sh: $load_bin missing (run without --no-build)" >&2; exit 1; }

# perf, for syscalls per request. Debian ships it as linux-perf.
perf_bin=""
if [ "$use_perf" = 1 ]; then
  perf_bin=$(command -v perf || true)
  [ -n "$perf_bin" ] || { [ -x /usr/bin/perf ] && perf_bin=/usr/bin/perf; }
  if [ -z "$perf_bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "compare.sh: installing linux-perf for syscall counts"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends linux-perf >/dev/null 2>&1 ||
      { timeout 120 apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends linux-perf >/dev/null 2>&1; }
    perf_bin=$(command -v perf || true)
  fi
  if [ -n "$perf_bin" ] && ! timeout 20 "$perf_bin" stat -e raw_syscalls:sys_enter -x, -o /dev/null -- true 2>/dev/null; then
    log "compare.sh: perf cannot count raw_syscalls:sys_enter here; syscalls will be n/a"
    perf_bin=""
  fi
  [ -n "$perf_bin" ] || log "compare.sh: no usable perf; syscalls per request will be n/a"
fi

# Idle connections need file descriptors on both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---------------------------------------------------------------------------------------------
# Helpers.

port_listening() { # is anything listening on $port (IPv4 or IPv6)?
  local hex
  hex=$(printf '%04X' "$port")
  awk -v p="$hex" 'FNR > 1 { split($2, a, ":"); if (toupper(a[2]) == p && $4 == "0A") f = 1 }
                   END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

cpu_ticks() { # utime + stime of the whole process, in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null
}
sched_ns() { # CPU time of all live threads in ns (ns resolution, for the idle scenario)
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}
status_kb() { # status_kb PID FIELD: VmHWM or VmRSS in kB
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}
now() { date +%s.%N; }
busy_ticks() { # user + nice + system + irq + softirq + steal over all CPUs, in clock ticks
  # (/proc/stat). A task's stime includes the softirq work done in its context (loopback TCP
  # delivery runs there), which /proc/stat counts as softirq: so softirq belongs in "busy".
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}
fcalc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

server_cmd() { # the command line of target $1
  case "$1" in
    shardnet) echo "$echo_bin --addr $addr --cores $server_cores" ;;
    shardnet@*) local flags="${1#shardnet@}"; echo "$echo_bin --addr $addr --cores $server_cores ${flags//+/ }" ;;
    alt) echo "$alt_bin --addr $addr --cores $server_cores" ;;
    alt@*) local flags="${1#alt@}"; echo "$alt_bin --addr $addr --cores $server_cores ${flags//+/ }" ;;
    *) echo "$base_bin --impl $1 --addr $addr --cores $server_cores" ;;
  esac
}

# start_server TARGET LOGFILE: starts it pinned, waits for its listening line. Sets SERVER_PID.
# Returns non-zero (with a reason in $start_error) when it does not come up.
start_server() {
  local target="$1" logf="$2" i bin
  start_error=""
  SERVER_PID=""
  for ((i = 0; i < 60; i++)); do port_listening || break; sleep 0.05; done
  if port_listening; then
    start_error="port $port is already in use (a stale server would share it via SO_REUSEPORT)"
    return 1
  fi
  bin=$(server_cmd "$target" | cut -d' ' -f1)
  [ -x "$bin" ] || { start_error="$bin is not built"; return 1; }
  # shellcheck disable=SC2046
  taskset -c "$server_cores" $(server_cmd "$target") >"$logf" 2>&1 &
  SERVER_PID=$!
  for ((i = 0; i < 200; i++)); do # 10 s
    if ! alive "$SERVER_PID"; then
      wait "$SERVER_PID"; start_error="exited with status $? before listening: $(tail -n 2 "$logf" | tr '\n' ' ')"
      SERVER_PID=""; return 1
    fi
    grep -qs "listening on" "$logf" && port_listening && return 0
    sleep 0.05
  done
  start_error="not listening after 10 s"
  stop_pid "$SERVER_PID" 2; SERVER_PID=""
  return 1
}

# open_idle N LOGFILE: opens N idle connections from the client cores; sets IDLE_PID.
open_idle() {
  local n="$1" logf="$2" i
  IDLE_PID=""
  [ -x "$idle_bin" ] || { start_error="$idle_bin is not built"; return 1; }
  taskset -c "$client_cores" "$idle_bin" --addr "$addr" --count "$n" --hold 600 >"$logf" 2>&1 &
  IDLE_PID=$!
  for ((i = 0; i < 1200; i++)); do # 60 s
    grep -qs "^idle-conns: ready" "$logf" && return 0
    if ! alive "$IDLE_PID"; then
      wait "$IDLE_PID"; IDLE_PID=""
      start_error="idle-conns failed: $(tail -n 1 "$logf")"; return 1
    fi
    sleep 0.05
  done
  stop_pid "$IDLE_PID" 2; IDLE_PID=""
  start_error="idle-conns not ready after 60 s"
  return 1
}

# count_syscalls PID SECONDS: counts the syscalls of every thread of PID for SECONDS of wall
# time; prints "COUNT SECONDS" ("NA SECONDS" without perf). perf's own running time is not
# used: for a per-task counter it only advances while the task is on a CPU.
count_syscalls() {
  local pid="$1" secs="$2" f="$work/perf.$$" line
  if [ -z "$perf_bin" ]; then sleep "$secs"; echo "NA $secs"; return; fi
  timeout $((${secs%.*} + 20)) "$perf_bin" stat -e raw_syscalls:sys_enter -x, -o "$f" -p "$pid" -- sleep "$secs" >/dev/null 2>&1
  line=$(grep 'raw_syscalls:sys_enter' "$f" 2>/dev/null | head -n1)
  rm -f "$f"
  # "<not counted>" means no syscall at all in the window.
  awk -v l="$line" -v s="$secs" 'BEGIN { split(l, a, ",");
    if (a[1] ~ /^[0-9]+$/) print a[1], s; else if (a[1] == "<not counted>") print 0, s; else print "NA", s }'
}

# json_fields FILE: "rps p50 p99 p999 errors client_pct ended_early"
json_fields() {
  python3 - "$1" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    l = d["latency_us"]
    print(d["throughput_rps"], l["p50"], l["p99"], l["p99.9"], d["errors"]["total"],
          d["client_cpu"]["percent_of_one_core"], int(bool(d["ended_early"])))
except Exception:
    print("NA NA NA NA NA NA NA")
PY
}

# load_args SCENARIO: shardnet-load arguments for a load scenario
load_args() {
  case "$1" in
    c1) echo "-c 1" ;;
    c50|calib|idle10k) echo "-c 50" ;;
    c500) echo "-c 500" ;;
    open20k) echo "-c 50 --rate 20000" ;;
    open50|open80) echo "-c 50 --rate $open_rate" ;;
    16k) echo "-c 50 -s 16384" ;;
  esac
}

clean() { echo "$1" | tr '"\n' "' "; } # a reason without double quotes or newlines
record() { # record KEY=VALUE...: one raw line, to stdout and the results file
  echo "run $*" | tee -a "$results"
}

# measure_load SCENARIO TARGET ROUND: the load part of a run against the running server.
# Appends key=value fields to $fields, or sets $run_error.
measure_load() {
  local scen="$1" target="$2" round="$3" stem="$work/$1.$2.$3.$attempt" i win a b t0 t1 sc
  local lpid rc rps p50 p99 p999 errs cpct ended cpu_us sys_req hwm ba bb
  run_error=""
  # shellcheck disable=SC2046
  timeout -k 5 $((warmup + duration + 60)) taskset -c "$client_cores" "$load_bin" \
    -a "$addr" --protocol echo -w "${warmup}s" -d "${duration}s" $(load_args "$scen") \
    --json "$stem.json" >"$stem.load.out" 2>"$stem.load.err" &
  LOAD_PID=$!; lpid=$LOAD_PID
  # The first progress line comes 1 s after every connection is up and the clock started;
  # measuring starts after the warmup. Sample inside the measured time, 0.25 s in from each end.
  for ((i = 0; i < (warmup + 30) * 20; i++)); do
    grep -qs '^\[ *[0-9.]*s\]' "$stem.load.err" && break
    alive "$lpid" || break
    sleep 0.05
  done
  if grep -qs '^\[ *[0-9.]*s\]' "$stem.load.err"; then
    sleep "$(fcalc "$warmup - 1 + 0.25")"
    win=$(fcalc "$duration - 0.5")
    t0=$(now); a=$(cpu_ticks "$SERVER_PID"); ba=$(busy_ticks)
    read -r sc sc_secs < <(count_syscalls "$SERVER_PID" "$win")
    b=$(cpu_ticks "$SERVER_PID"); bb=$(busy_ticks); t1=$(now)
    hwm=$(status_kb "$SERVER_PID" VmHWM)
  else
    run_error="shardnet-load did not start measuring: $(grep -v '^shardnet-load: [0-9]* client' "$stem.load.err" | tail -n 2 | tr '\n' ' ')"
  fi
  wait "$lpid"; rc=$?; LOAD_PID=""
  [ -n "$run_error" ] && return 1
  read -r rps p50 p99 p999 errs cpct ended < <(json_fields "$stem.json")
  if [ "$rps" = NA ]; then
    run_error="shardnet-load exited $rc without a summary: $(tail -n 2 "$stem.load.err" | tr '\n' ' ')"
    return 1
  fi
  if [ -z "$a" ] || [ -z "$b" ]; then run_error="server exited during the run"; return 1; fi
  cpu_us=$(fcalc "($b - $a) / $clk_tck / ($t1 - $t0) / $rps * 1e6")
  if [ "$sc" = NA ]; then sys_req=NA; else sys_req=$(fcalc "$sc / $sc_secs / $rps"); fi
  # CPU that neither the server nor shardnet-load used in the window, in % of one core: other
  # processes, kernel threads (ksoftirqd too), the hypervisor's steal time. shardnet-load's
  # share is its own measured CPU % (same steady state).
  others_pct=$(fcalc "(($bb - $ba) - ($b - $a)) / $clk_tck / ($t1 - $t0) * 100 - $cpct")
  fields="rps=$(fcalc "$rps") p50=$p50 p99=$p99 p999=$p999 cpu_us=$cpu_us sys_req=$sys_req hwm_kb=${hwm:-NA} client_pct=$(fcalc "$cpct") others_pct=$others_pct load_rc=$rc errors=$errs ended_early=$ended"
}

# wait_quiet: waits (at most --quiet-wait s) until the machine's busy CPU, sampled over 0.5 s
# with none of our processes running, is below --max-others % of one core.
wait_quiet() {
  local i b0 b1 pct
  [ "$max_others" != off ] && [ "$quiet_wait" -gt 0 ] || return 0
  for ((i = 0; i < quiet_wait * 2; i++)); do
    b0=$(busy_ticks); sleep 0.5; b1=$(busy_ticks)
    pct=$(fcalc "($b1 - $b0) / $clk_tck / 0.5 * 100")
    awk -v o="$pct" -v m="$max_others" 'BEGIN { exit !(o <= m) }' && return 0
  done
  log "compare.sh: other processes still use ${pct}% of a core after ${quiet_wait} s; running anyway"
}

# one_run SCENARIO TARGET ROUND LAST: one server, one measurement. Returns 1 when it failed,
# 3 when other processes disturbed it and it is not the LAST attempt (LAST=1) so it should
# be repeated (its raw line then says status=noisy and it is left out of the tables).
one_run() {
  local scen="$1" target="$2" round="$3" last="$4" stem="$work/$1.$2.$3.$attempt" st rss0 rss1 n
  local c0 c1 d0 d1 t0 t1 i0 i1 ss0 ss1 ssec
  fields="" run_error=""
  wait_quiet
  if ! start_server "$target" "$stem.server.log"; then
    record "scenario=$scen target=$target round=$round status=failed reason=\"$(clean "$start_error")\""
    return 1
  fi
  case "$scen" in
    idle10k)
      sleep 0.3
      rss0=$(status_kb "$SERVER_PID" VmRSS)
      if open_idle "$idle_n" "$stem.idle.log"; then
        sleep 0.5
        rss1=$(status_kb "$SERVER_PID" VmRSS)
        measure_load "$scen" "$target" "$round" || true
        [ -n "$rss0" ] && [ -n "$rss1" ] &&
          fields="$fields idle_n=$idle_n rss_base_kb=$rss0 rss_idle_kb=$rss1 idle_bytes_per_conn=$(fcalc "($rss1 - $rss0) * 1024 / $idle_n")"
        stop_pid "$IDLE_PID" 5; IDLE_PID=""
      else
        run_error="$start_error"
      fi
      ;;
    idle)
      n=1000
      sleep 0.5
      rss0=$(status_kb "$SERVER_PID" VmRSS)
      c0=$(sched_ns "$SERVER_PID"); t0=$(now)
      read -r ss0 ssec < <(count_syscalls "$SERVER_PID" "$idle_secs")
      c1=$(sched_ns "$SERVER_PID"); t1=$(now)
      i0=$(fcalc "($c1 - $c0) / 1e9 / ($t1 - $t0) * 100")
      [ "$ss0" = NA ] || ss0=$(fcalc "$ss0 / $ssec")
      if open_idle "$n" "$stem.idle.log"; then
        sleep 0.5
        rss1=$(status_kb "$SERVER_PID" VmRSS)
        d0=$(sched_ns "$SERVER_PID"); t0=$(now)
        read -r ss1 ssec < <(count_syscalls "$SERVER_PID" "$idle_secs")
        d1=$(sched_ns "$SERVER_PID"); t1=$(now)
        i1=$(fcalc "($d1 - $d0) / 1e9 / ($t1 - $t0) * 100")
        [ "$ss1" = NA ] || ss1=$(fcalc "$ss1 / $ssec")
        fields="idle_cpu0_pct=$i0 idle_cpu1k_pct=$i1 idle_sys0_per_s=$ss0 idle_sys1k_per_s=$ss1 rss_base_kb=${rss0:-NA} rss_idle_kb=${rss1:-NA} idle_n=$n"
        [ -n "$rss0" ] && [ -n "$rss1" ] && fields="$fields idle_bytes_per_conn=$(fcalc "($rss1 - $rss0) * 1024 / $n")"
        fields="$fields hwm_kb=$(status_kb "$SERVER_PID" VmHWM)"
        stop_pid "$IDLE_PID" 5; IDLE_PID=""
      else
        run_error="$start_error"
      fi
      ;;
    *)
      measure_load "$scen" "$target" "$round" || true
      ;;
  esac
  stop_pid "$SERVER_PID" 8; st=$STOP_STATUS; SERVER_PID=""
  if [ -n "$run_error" ]; then
    record "scenario=$scen target=$target round=$round status=failed server_exit=$st reason=\"$(clean "$run_error")\""
    return 1
  fi
  others_pct=$(sed -n 's/.*others_pct=\([^ ]*\).*/\1/p' <<<"$fields")
  if [ "$max_others" != off ] && [ -n "$others_pct" ] && [ "$others_pct" != NA ] &&
    awk -v o="$others_pct" -v m="$max_others" 'BEGIN { exit !(o > m) }'; then
    if [ "$last" != 1 ]; then
      record "scenario=$scen target=$target round=$round status=noisy server_exit=$st $fields"
      return 3
    fi
    fields="$fields noisy=1"
  fi
  record "scenario=$scen target=$target round=$round status=ok server_exit=$st $fields"
}

# ---------------------------------------------------------------------------------------------
# Run.
ncores_total=$(nproc)
log "compare.sh: scenarios: $scenarios; targets: $targets; $rounds rounds; ${warmup}s warmup + ${duration}s measured"
log "compare.sh: server on cores $server_cores, client on cores $client_cores, $ncores_total cores online; $addr; work dir $work"
failures=0
open_rate="" open_rates=""
started=$(date +%s)

run_scenario() { # run_scenario SCENARIO ROUNDS
  local scen="$1" nrounds="$2" r t attempt rc
  for ((r = 1; r <= nrounds; r++)); do
    for t in $targets; do
      for ((attempt = 0; attempt <= retries; attempt++)); do
        one_run "$scen" "$t" "$r" "$([ "$attempt" = "$retries" ] && echo 1 || echo 0)"; rc=$?
        [ "$rc" = 3 ] || break
        log "compare.sh: $scen $t round $r: other processes used ${others_pct}% of a core; repeating"
        sleep 1
      done
      [ "$rc" = 0 ] || failures=$((failures + 1))
    done
  done
}

fastest_c50() { # PERCENT % of the best target's median c50 req/s (scenario c50 or calib)
  python3 - "$results" "$1" <<'PY'
import re, statistics, sys
rps = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    if kv.get("scenario") in ("c50", "calib") and kv.get("status") == "ok":
        rps.setdefault(kv["target"], []).append(float(kv["rps"]))
best = max((statistics.median(v) for v in rps.values()), default=0)
print(int(best * float(sys.argv[2]) / 100))
PY
}

for scen in $scenarios; do
  if [ "$scen" = open50 ] || [ "$scen" = open80 ]; then
    if ! grep -qs 'scenario=\(c50\|calib\) .*status=ok' "$results"; then
      log "compare.sh: $scen needs the fastest c50 throughput: calibrating (c50, one round)"
      run_scenario calib 1
    fi
    open_rate=$(fastest_c50 "${scen#open}")
    if [ -z "$open_rate" ] || [ "$open_rate" -le 0 ]; then
      log "compare.sh: no c50 throughput to base $scen on; skipping it"
      continue
    fi
    open_rates="$open_rates $scen=$open_rate"
    log "compare.sh: $scen rate: $open_rate req/s (${scen#open} % of the fastest c50 median)"
  fi
  log "compare.sh: scenario $scen"
  run_scenario "$scen" "$rounds"
done

# ---------------------------------------------------------------------------------------------
# Summary.
summary=$(python3 - "$results" "$targets" "$scenarios" "$open_rates" <<'PY'
import re, statistics, sys

results, targets, scenarios = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
rates = dict(kv.split("=") for kv in sys.argv[4].split())
runs = []
for line in open(results):
    kv = {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line)}
    runs.append(kv)

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, digits=3):
    if x is None:
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"

def ratio_of_rounds(scen, target, key):
    """Median over rounds of target/shardnet for the same round (both runs ok)."""
    base = {r["round"]: num(r.get(key)) for r in runs
            if r.get("scenario") == scen and r.get("target") == "shardnet" and r.get("status") == "ok"}
    rs = []
    for r in runs:
        if r.get("scenario") == scen and r.get("target") == target and r.get("status") == "ok":
            b, v = base.get(r["round"]), num(r.get(key))
            if b and v is not None:
                rs.append(v / b)
    return med(rs)

titles = {
    "c1": "c1: 64 B closed loop, 1 connection",
    "c50": "c50: 64 B closed loop, 50 connections",
    "c500": "c500: 64 B closed loop, 500 connections",
    "open20k": "open20k: 64 B open loop, 20,000 req/s over 50 connections",
    "open50": f"open50: 64 B open loop, {rates.get('open50', '?')} req/s over 50 connections (50 % of the fastest c50)",
    "open80": f"open80: 64 B open loop, {rates.get('open80', '?')} req/s over 50 connections (80 % of the fastest c50)",
    "16k": "16k: 16 KiB closed loop, 50 connections",
    "idle10k": "idle10k: idle connections held open + 50 active, 64 B closed loop",
    "idle": "idle: server CPU with no connection, then with 1,000 idle connections",
}
out = []
for scen in scenarios:
    rows = [r for r in runs if r.get("scenario") == scen]
    if not rows:
        continue
    out.append(f"### {titles.get(scen, scen)}\n")
    if scen == "idle":
        out.append("| target | CPU % idle, 0 conns | CPU % idle, 1,000 conns | syscalls/s, 0 conns | syscalls/s, 1,000 conns | RSS per idle conn (B) | peak RSS (MiB) | runs ok |")
        out.append("|---|---|---|---|---|---|---|---|")
    else:
        extra = " RSS per idle conn (B) |" if scen == "idle10k" else ""
        out.append("| target | req/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | syscalls/req | peak RSS (MiB) | client CPU % | others' CPU % | req/s ÷ shardnet | CPU/req ÷ shardnet |" + extra + " runs ok |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if extra else "") + "---|")
    for t in targets:
        every = [r for r in rows if r.get("target") == t]
        tr = [r for r in every if r.get("status") != "noisy"]
        ok = [r for r in tr if r.get("status") == "ok"]
        repeated = len(every) - len(tr)
        flagged = sum(1 for r in ok if r.get("noisy") == "1")
        m = lambda k: med([num(r.get(k)) for r in ok])
        hwm = m("hwm_kb")
        hwm = hwm / 1024 if hwm is not None else None
        okcol = f"{len(ok)}/{len(tr)}"
        if repeated:
            okcol += f", {repeated} repeated"
        if flagged:
            okcol += f", {flagged} disturbed"
        if not ok:
            reasons = sorted({r.get("reason", "?") for r in tr})
            okcol += " — failed: " + "; ".join(reasons)[:200]
        if scen == "idle":
            out.append(f"| {t} | {fmt(m('idle_cpu0_pct'), 2)} | {fmt(m('idle_cpu1k_pct'), 2)} | {fmt(m('idle_sys0_per_s'))} | {fmt(m('idle_sys1k_per_s'))} | {fmt(m('idle_bytes_per_conn'))} | {fmt(hwm)} | {okcol} |")
            continue
        rr = ratio_of_rounds(scen, t, "rps")
        cr = ratio_of_rounds(scen, t, "cpu_us")
        row = (f"| {t} | {fmt(m('rps'))} | {fmt(m('p50'))} | {fmt(m('p99'))} | {fmt(m('p999'))} | "
               f"{fmt(m('cpu_us'))} | {fmt(m('sys_req'))} | {fmt(hwm)} | {fmt(m('client_pct'))} | {fmt(m('others_pct'), 2)} | "
               f"{fmt(rr, 3)} | {fmt(cr, 3)} |")
        if scen == "idle10k":
            row += f" {fmt(m('idle_bytes_per_conn'))} |"
        errs = sum(num(r.get("errors")) or 0 for r in ok)
        if errs:
            okcol += f" ({errs:.0f} request errors)"
        out.append(row + f" {okcol} |")
    out.append("")
print("\n".join(out))
PY
)

{
  echo "## shardnet compare: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $ncores_total cores, Linux $(uname -r)."
  echo "Server cores $server_cores, client cores $client_cores; $rounds rounds alternating targets; ${warmup} s warmup + ${duration} s measured per run; elapsed $(( $(date +%s) - started )) s."
  echo "Values are medians over rounds; the ÷ shardnet columns are medians of per-round ratios (target ÷ shardnet in the same round)."
  [ -n "$perf_bin" ] || echo "Syscalls: n/a (no usable perf)."
  echo
  echo "$summary"
  echo "<details><summary>raw per-round lines</summary>"
  echo
  echo '```text'
  cat "$results"
  echo '```'
  echo "</details>"
} >"$work/summary.md"
echo
cat "$work/summary.md"
[ -n "$out_file" ] && cp "$work/summary.md" "$out_file" && log "compare.sh: wrote $out_file"
[ "$failures" = 0 ] || { log "compare.sh: $failures run(s) failed (see the tables)"; exit 1; }
exit 0
