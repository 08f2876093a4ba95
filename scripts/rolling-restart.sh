#!/usr/bin/env bash
# A rolling restart under load, on this machine: vigil A serves a fixed port
# with --reuse-port --drain 2s; vigil-load's rolling scenario holds CONNS
# heartbeating connections (a PING every 500 ms, reconnect at once on BYE
# shutdown) plus RATE new connects a second; vigil B starts on the same port,
# A gets SIGTERM and drains; the load runs on and prints its counts.
#
#   scripts/rolling-restart.sh [CONNS] [RATE]      # default 2000 500
#
# Environment:
#   MIGRATE=0|1   set net.ipv4.tcp_migrate_req for the run (needs root; the
#                 old value is put back at the end). Unset: left as it is.
#   VIGIL_A=PATH  the binary for A (default: this tree's release build), to
#                 compare a variant.
#   PORT=N        the port (default 27400, or the next free one).
#   STALL=SECS    stop A (SIGSTOP) this long before the SIGTERM, as a busy
#                 loop would: new connects hashed to A wait in its backlog
#                 meanwhile (default 0: no stall).
# Every process it starts is stopped by pid when it exits.
set -euo pipefail

conns=${1:-2000}
rate=${2:-500}
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin vigil --bin vigil-load
bin=target/release
vigil_a=${VIGIL_A:-$bin/vigil}
work=$(mktemp -d)
pids=()
migrate_was=
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n "$migrate_was" ]]; then sysctl -q -w net.ipv4.tcp_migrate_req="$migrate_was"; fi
    [[ -n "${KEEP:-}" ]] && rm -rf /tmp/rolling-restart-last && cp -r "$work" /tmp/rolling-restart-last
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -n "${MIGRATE:-}" ]]; then
    migrate_was=$(sysctl -n net.ipv4.tcp_migrate_req)
    sysctl -q -w net.ipv4.tcp_migrate_req="$MIGRATE"
fi
port=${PORT:-27400}
while ss -Htln "sport = :$port" | grep -q .; do port=$((port + 1)); done
addr=127.0.0.1:$port

# Waits until the log file $1 says "listening on" (the process $2 alive).
wait_listening() {
    for _ in $(seq 100); do
        grep -q "listening on" "$1" && return 0
        kill -0 "$2" 2>/dev/null || { cat "$1" >&2; exit 1; }
        sleep 0.1
    done
    echo "no 'listening on' in $1" >&2
    exit 1
}

"$vigil_a" --listen "$addr" --reuse-port --drain 2s 2>"$work/a.log" &
a=$!
pids+=("$a")
wait_listening "$work/a.log" "$a"

"$bin/vigil-load" rolling --addr "$addr" --conns "$conns" --rate "$rate" \
    --interval 500ms --duration 9s --grace 2s --label "vigil A, then B" \
    --json "$work/rolling.json" >"$work/table.txt" 2>"$work/load.log" &
load=$!
pids+=("$load")

sleep 3
"$bin/vigil" --listen "$addr" --reuse-port --drain 2s 2>"$work/b.log" &
b=$!
pids+=("$b")
wait_listening "$work/b.log" "$b"
sleep 1
stall=${STALL:-0}
if [[ "$stall" != 0 ]]; then
    kill -STOP "$a"
    sleep "$stall"
    queued=$(ss -Htln "sport = :$port" | awk '{print $2}' | paste -sd' ')
fi
term_at=$(date +%s.%N)
kill -TERM "$a"
[[ "$stall" != 0 ]] && kill -CONT "$a"
wait "$a" && a_status=0 || a_status=$?
a_secs=$(echo "$(date +%s.%N) - $term_at" | bc)
sleep 1
on_b=$(ss -Htnp state established "( sport = :$port )" | grep -c "pid=$b," || true)
wait "$load"

echo "## rolling restart: $conns held connections (PING every 500ms), $rate new connects/s"
echo "port $port; net.ipv4.tcp_migrate_req = $(sysctl -n net.ipv4.tcp_migrate_req); A = $vigil_a"
if [[ "$stall" != 0 ]]; then
    echo "A stopped for ${stall}s before SIGTERM; listen queues then (A's, B's in some order): $queued"
fi
cat "$work/table.txt"
echo
printf 'A exited with status %s, %.2f s after SIGTERM\n' "$a_status" "$a_secs"
echo "connections established on B one second after A exited: $on_b"
echo "A's log:"
grep -E "stopping|stopped by|ERROR" "$work/a.log" | sed 's/^/    /'
