#!/usr/bin/env bash
# The box fan-out: one message to every one of CONNS connections held by
# WORKERS fan-out workers on this box, sharing one redis-server (issue 20).
#
#   scripts/box-fanout.sh CONNS [WORKERS] [MESSAGES] [PROCS] [SOURCES]
#
# Starts a redis-server on 127.0.0.1:$REDIS_PORT (default 17479), the fan-out
# example (FANOUT, default target/release/examples/fanout, built with
# `cargo build --release --example fanout --features bus`) as
# `--workers WORKERS --reuse-port --bus redis://... --idle-timeout 10m` on
# 127.0.0.1:$BOX_PORT (default 17401), and `vigil-load hold` with CONNS
# connections from PROCS processes and SOURCES source addresses (defaults as
# scripts/box.sh: 16,700 connections per process, 4,000 per source). Once
# the workers hold them all, a client on one more connection sends MESSAGES
# (default 5) `PUB`s, 3 s apart, each after the previous `OK`, and for each
# samples every worker's CPU time (all threads, /proc/PID/task/*/schedstat,
# exact) every 10 ms:
#
# - last delivery: from the PUB until the workers' CPU time stops growing
#   (less than 0.5 ms in a 10 ms poll: the last worker finished writing;
#   +-10 ms), the time to the last write, not a receipt;
# - deliveries per busy core: CONNS / the workers' CPU seconds for the
#   message, i.e. deliveries per CPU-second, comparable with one process's
#   1 / (CPU per delivery) of `cargo bench --bench capacity -- --fanout`;
# - the workers' descriptors before and after (a recipient closed as slow
#   would show as one fewer).
#
# The hold clients read what arrives but do not time it: this is the
# server's side only. Run `NOBUS=1 scripts/box-fanout.sh 19000 1` for the
# one-process figure by the same method (no bus: the OK counts connections). Bounded: the load run is killed after 10
# minutes; every process started is stopped at exit.
set -euo pipefail

conns=${1:?usage: scripts/box-fanout.sh CONNS [WORKERS] [MESSAGES] [PROCS] [SOURCES]}
workers=${2:-$(( (conns + 15999) / 16000 ))}
messages=${3:-5}
procs=${4:-$(( (conns + 16699) / 16700 ))}
sources=${5:-$(( (conns + 3999) / 4000 > 254 ? 254 : (conns + 3999) / 4000 ))}
port=${BOX_PORT:-17401}
rport=${REDIS_PORT:-17479}

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin vigil-load
bin=${CARGO_TARGET_DIR:-target}/release
fanout=${FANOUT:-$bin/examples/fanout}
if [[ ! -x $fanout ]]; then
    echo "no fan-out example at $fanout: cargo build --release --example fanout --features bus (or FANOUT=PATH)" >&2
    exit 2
fi
command -v redis-server >/dev/null || { echo "no redis-server: apt-get install -y redis-server" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
    exec 3>&- 2>/dev/null || true
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do timeout 60 tail --pid="$pid" -f /dev/null 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

sum_fds() { local t=0; for p in "$@"; do t=$((t + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l))); done; echo "$t"; }
# CPU time of every thread of every worker (its bus threads included), in
# ns, from the scheduler's exact count (/proc/PID/task/TID/schedstat), with
# one awk for all of them.
sum_cpu_ns() { local files=(); for p in "$@"; do files+=(/proc/"$p"/task/*/schedstat); done; awk '{t += $1} END {printf "%.0f\n", t}' "${files[@]}" 2>/dev/null; }
now_us() { echo $(( $(date +%s%N) / 1000 )); }

redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning >"$work/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$rport" PING 2>/dev/null | grep -q PONG; do sleep 0.05; done

bus=(--bus "redis://127.0.0.1:$rport")
[[ ${NOBUS:-} == 1 ]] && bus=()
"$fanout" --listen "127.0.0.1:$port" --workers "$workers" --reuse-port "${bus[@]}" \
    --idle-timeout 10m --max-conns $((conns * 6 / 5 + 100)) \
    --log-level warn 2>"$work/fanout.log" &
supervisor=$!
pids+=("$supervisor")
for _ in $(seq 100); do
    [[ ${NOBUS:-} == 1 || $(redis-cli -p "$rport" PUBSUB NUMSUB vigil.fanout | tail -1) == "$workers" ]] && break
    sleep 0.1
done
if (( workers > 1 )); then
    mapfile -t wpids < <(pgrep -P "$supervisor" | sort -n)
else
    wpids=("$supervisor")  # --workers 1: the process is the instance
fi
(( ${#wpids[@]} == workers )) || { echo "fanout: ${#wpids[@]} of $workers workers:" >&2; cat "$work/fanout.log" >&2; exit 1; }
[[ ${NOBUS:-} == 1 ]] || echo "redis subscribers: $(redis-cli -p "$rport" PUBSUB NUMSUB vigil.fanout | tail -1) of $workers workers"
fds0=$(sum_fds "${wpids[@]}")

timeout 600 "$bin/vigil-load" hold --addr "127.0.0.1:$port" --conns "$conns" --procs "$procs" \
    --sources "$sources" --pending 500 --duration 600s --connect-timeout "${OPEN_LIMIT:-300s}" \
    --label "fanout x$workers" >"$work/load.txt" 2>"$work/load.err" &
load=$!
pids+=("$load")
opened_at=$(now_us)
last=-1; still=0
while kill -0 "$load" 2>/dev/null; do
    open=$(( $(sum_fds "${wpids[@]}") - fds0 ))
    if (( open >= conns )); then break; fi
    if (( open == last )); then still=$((still + 1)); else still=0; fi
    if (( still >= 10 )); then break; fi
    last=$open
    sleep 1
done
sleep 2
held=$(( $(sum_fds "${wpids[@]}") - fds0 ))
echo "held: $held of $conns in $(( ($(now_us) - opened_at) / 1000000 )) s ($procs load processes x $sources sources)"

exec 3<>"/dev/tcp/127.0.0.1/$port"
payload=$(printf 'x%.0s' $(seq 53))
printf '| message | OK | last delivery (ms) | workers CPU (ms) | deliveries per CPU-second |\n|---:|---|---:|---:|---:|\n'
for i in $(seq "$messages"); do
    cpu0=$(sum_cpu_ns "${wpids[@]}")
    t0=$(now_us)
    printf 'PUB %010d %s\n' "$i" "$payload" >&3
    IFS= read -r -t 5 ok <&3 || ok="(none in 5 s)"
    # Busy: more than 0.5 ms + 20 us per worker of CPU in a 10 ms poll (an
    # idle worker's bus thread wakes every 50 ms for a few us); done after
    # 100 ms idle, or 60 s.
    busy=$(( 500000 + 20000 * workers ))
    last_change=$t0; busy_cpu=$cpu0; prev=$cpu0; quiet=0
    while (( quiet < 10 && $(now_us) - t0 < 60000000 )); do
        sleep 0.01
        c=$(sum_cpu_ns "${wpids[@]}")
        if (( c - prev > busy )); then last_change=$(now_us); busy_cpu=$c; quiet=0; else quiet=$((quiet + 1)); fi
        prev=$c
    done
    cpu_ms=$(( (busy_cpu - cpu0) / 1000000 ))
    awk -v i="$i" -v ok="${ok%$'\r'}" -v ms="$(( (last_change - t0) / 1000 ))" -v cpu="$cpu_ms" -v n="$held" \
        'BEGIN { printf "| %d | %s | %d | %d | %s |\n", i, ok, ms, cpu, (cpu > 0 ? sprintf("%.0f", n / (cpu / 1000)) : "-") }'
    sleep 3
done
echo "workers' descriptors after publishing: $(( $(sum_fds "${wpids[@]}") - fds0 )) (held before: $held)"
grep -E "WARN|ERROR" "$work/fanout.log" | head -5 || true
