#!/usr/bin/env bash
# vigil behind HAProxy, on this machine: HAProxy (tcp mode, leastconn, a
# PING/PONG health check, send-proxy-v2) in front of `vigil --workers 2
# --reuse-port --proxy-protocol`, then vigil-load's keepalive and reap
# scenarios through the proxy. Prints vigil-load's tables (the capacity
# benchmark's format) and checks that vigil logged the PROXY addresses.
#
#   scripts/haproxy-check.sh [CONNS]      # default 5000
#
# Needs Debian's haproxy package (apt-get install haproxy). Every process it
# starts is stopped when it exits; each load run is bounded in count and time.
# vigil takes a free port; HAProxy the first free one from PROXY_PORT
# (default 27374).
set -euo pipefail

conns=${1:-5000}
# HAProxy holds two descriptors per proxied connection, under the
# per-process limit.
if (( conns > 9000 )); then
    echo "at most 9000 connections: HAProxy needs two descriptors each" >&2
    exit 2
fi

if ! command -v haproxy >/dev/null; then
    echo "haproxy is not installed. On Debian or Ubuntu: sudo apt-get install haproxy" >&2
    exit 2
fi

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin vigil --bin vigil-load
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -n "${KEEP:-}" ]] && rm -rf /tmp/haproxy-check-last && cp -r "$work" /tmp/haproxy-check-last; rm -rf "$work"
}
trap cleanup EXIT

# vigil: idle timeout 1 s (keepalive pings every 500 ms, the scenario's 2x).
"$bin/vigil" --listen 127.0.0.1:0 --workers 2 --reuse-port --proxy-protocol \
    --idle-timeout 1s --log-level debug 2>"$work/vigil.log" &
pids+=($!)
for _ in $(seq 100); do
    [[ $(grep -c "listening on" "$work/vigil.log") -ge 2 ]] && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/vigil.log" >&2; exit 1; }
    sleep 0.1
done
vigil_port=$(grep -m1 -o "listening on 127.0.0.1:[0-9]*" "$work/vigil.log" | cut -d: -f2)
proxy_port=${PROXY_PORT:-27374}
while ss -Htln "sport = :$proxy_port" | grep -q .; do proxy_port=$((proxy_port + 1)); done

# The configuration of docs/deployment.md, for one box on this machine.
cat >"$work/haproxy.cfg" <<CFG
global
    maxconn 9500

defaults
    mode tcp
    # Above vigil's idle timeout: vigil, not the proxy, decides that a
    # connection is dead, and its BYE idle reaches the client.
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend heartbeats
    bind 127.0.0.1:$proxy_port
    maxconn 9000
    default_backend vigil

backend vigil
    balance leastconn
    option tcp-check
    tcp-check send "PING\n"
    tcp-check expect string PONG
    default-server send-proxy-v2 check-send-proxy check inter 2s maxconn 9000
    server box1 127.0.0.1:$vigil_port
CFG
haproxy -c -q -f "$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" 2>"$work/haproxy.log" &
pids+=($!)

# Wait for HAProxy to listen and its first health check to pass.
for _ in $(seq 100); do
    if "$bin/vigil-load" hold \
        --addr "127.0.0.1:$proxy_port" --conns 1 --duration 0 >/dev/null 2>&1; then
        break
    fi
    sleep 0.1
done

echo "## keepalive through HAProxy: $conns connections, PING every 500ms, vigil idle timeout 1s"
timeout 120 "$bin/vigil-load" keepalive --addr "127.0.0.1:$proxy_port" --conns "$conns" \
    --interval 500ms --duration 5s --pending 200 --label "vigil behind haproxy" 2>/dev/null
echo
echo "## reap through HAProxy: $conns connections, one PING, then silent"
timeout 120 "$bin/vigil-load" reap --addr "127.0.0.1:$proxy_port" --conns "$conns" \
    --idle-timeout 1s --grace 2s --pending 200 --label "vigil behind haproxy" 2>/dev/null
echo

proxied=$(grep -c "PROXY from 127.0.0.1:" "$work/vigil.log" || true)
bad=$(grep -c "bad PROXY header" "$work/vigil.log" || true)
checks=$(grep -c "PROXY without addresses" "$work/vigil.log" || true)
echo "## vigil's log"
echo "connections with the client's address from the PROXY header: $proxied"
echo "HAProxy health checks (PROXY v2 LOCAL, no address): $checks"
echo "bad PROXY headers: $bad"
for worker in 0 1; do
    echo "worker $worker served $(grep "worker $worker: connection .*: PROXY from" "$work/vigil.log" | wc -l) proxied connections"
done
echo "sample:"
grep -m 2 "PROXY from" "$work/vigil.log" | sed 's/^/    /'
if (( proxied < 2 * conns || bad > 0 )); then
    echo "FAILED: expected $((2 * conns)) proxied connections and no bad header" >&2
    exit 1
fi
