#!/usr/bin/env bash
# The box benchmark: how many heartbeat connections one machine holds with
# `vigil --workers auto --reuse-port`, all opened by vigil-load on the same
# machine (so the box holds two sockets per connection).
#
#   scripts/box.sh CONNS [PROCS] [SOURCES] [HOLD]
#
# CONNS connections, opened by PROCS vigil-load processes (default: enough
# for 16,700 descriptors each) from SOURCES source addresses 127.0.0.1..N
# (default: 4,000 ports each, at most 254: the load generator's bind() slows
# to a crawl as a source's ephemeral ports fill, see docs/box.md), held silent for HOLD (default
# 60s) once open: long enough that every load process still holds its
# connections while the last ones open and the silent window is measured. Prints: connections held, failures, connect rate, time to
# open them all, user-space bytes per connection (growth of every worker's
# RSS / CONNS), kernel memory per connection (/proc/net/sockstat, and slab
# growth from /proc/meminfo, which counts both ends), and wakeups per second
# per worker while every connection is silent (context switches).
# OPEN_LIMIT (default 300s) bounds the opening phase (vigil-load --connect-timeout).
# Bounded: the load run is killed after 10 minutes; every process it starts
# is stopped when it exits.
set -euo pipefail

conns=${1:?usage: scripts/box.sh CONNS [PROCS] [SOURCES] [HOLD]}
procs=${2:-$(( (conns + 16699) / 16700 ))}
sources=${3:-$(( (conns + 3999) / 4000 > 254 ? 254 : (conns + 3999) / 4000 ))}
hold=${4:-60s}
port=${BOX_PORT:-17400}
window=5

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin vigil --bin vigil-load
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do timeout 60 tail --pid="$pid" -f /dev/null 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

workers_of() { pgrep -P "$1" | sort -n; }
sum_rss_kb() { local t=0 k; for p in "$@"; do k=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); t=$((t + k)); done; echo "$t"; }
# Open descriptors, from the FDSize-independent count of /proc/PID/fd.
sum_fds() { local t=0; for p in "$@"; do t=$((t + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l))); done; echo "$t"; }
sum_ctxt() { local t=0 k; for p in "$@"; do k=$(awk '/ctxt_switches/ {s += $2} END {print s}' "/proc/$p/status" 2>/dev/null || echo 0); t=$((t + k)); done; echo "$t"; }
tcp_mem_pages() { awk '/^TCP:/ {for (i = 1; i <= NF; i++) if ($i == "mem") print $(i + 1)}' /proc/net/sockstat; }
slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }

"$bin/vigil" --listen "127.0.0.1:$port" --workers auto --max-conns "$conns" \
    --idle-timeout 10m --log-level warn 2>"$work/vigil.log" &
supervisor=$!
pids+=("$supervisor")
sleep 1
mapfile -t workers < <(workers_of "$supervisor")
nworkers=${#workers[@]}
if (( nworkers == 0 )); then echo "vigil did not start:" >&2; cat "$work/vigil.log" >&2; exit 1; fi
rss0=$(sum_rss_kb "${workers[@]}")
fds0=$(sum_fds "${workers[@]}")
mem0=$(tcp_mem_pages)
slab0=$(slab_kb)

timeout 600 "$bin/vigil-load" hold --addr "127.0.0.1:$port" --conns "$conns" --procs "$procs" \
    --sources "$sources" --pending 500 --duration "$hold" --connect-timeout "${OPEN_LIMIT:-300s}" \
    --label "vigil x$nworkers" >"$work/load.txt" 2>"$work/load.err" &
load=$!
pids+=("$load")

# Wait until the workers hold every connection, or the count has not grown
# for 10 s (a limit was hit, or a few connects time out).
last=-1; still=0
while kill -0 "$load" 2>/dev/null; do
    open=$(( $(sum_fds "${workers[@]}") - fds0 ))
    if (( open >= conns )); then break; fi
    if (( open == last )); then still=$((still + 1)); else still=0; fi
    if (( still >= 10 )); then break; fi
    last=$open
    sleep 1
done
sleep 1
held=$(( $(sum_fds "${workers[@]}") - fds0 ))
rss1=$(sum_rss_kb "${workers[@]}")
mem1=$(tcp_mem_pages)
slab1=$(slab_kb)
ctxt0=$(sum_ctxt "${workers[@]}")
sleep "$window"
ctxt1=$(sum_ctxt "${workers[@]}")
wait "$load" || true

awk -v c="$conns" -v held="$held" -v w="$nworkers" -v p="$procs" -v s="$sources" \
    -v rss="$((rss1 - rss0))" -v mem="$((mem1 - mem0))" -v slab="$((slab1 - slab0))" \
    -v ctxt="$((ctxt1 - ctxt0))" -v win="$window" 'BEGIN {
    printf "| box figure | value |\n|---|---:|\n"
    printf "| connections asked | %d |\n", c
    printf "| vigil workers (--workers auto) | %d |\n", w
    printf "| vigil-load processes x sources | %d x %d |\n", p, s
    printf "| connections held by the workers | %d |\n", held
    printf "| user-space bytes per connection (workers RSS growth / held) | %.0f |\n", rss * 1024 / (held ? held : 1)
    printf "| kernel TCP buffer memory per connection (sockstat mem) | %.1f B |\n", mem * 4096 / (held ? held : 1)
    printf "| kernel slab per connection (both ends, /proc/meminfo Slab) | %.0f B |\n", slab * 1024 / (held ? held : 1)
    printf "| wakeups per second per worker, silent | %.2f |\n", ctxt / win / w
}'
echo
cat "$work/load.txt"
grep -v "^\[hold\]" "$work/load.err" | tail -5 || true
grep -E "WARN|ERROR" "$work/vigil.log" | head -5 || true
