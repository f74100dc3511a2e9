#!/usr/bin/env bash
# Full TLS 1.3 handshakes/s against `rampart dataplane` with each I/O driver, alternating.
# The server runs on one core (cores = 1), the load generator on the rest of the machine.
# Usage: bench/drivers.sh [rounds] [seconds]   (default 2 rounds of 10 s per driver)
# Prints a Markdown table; docs/benchmarks.md and docs/adr/0001-runtime.md quote its output.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
secs=${2:-10}
cargo build --release --locked -q -p rampart-cli -p rampart-loadgen
bin=target/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/rampart" init --secrets-dir "$work/secrets" >/dev/null

echo "| driver | round | handshakes/s | p50 ms | p99 ms | p99.9 ms | errors | server peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for driver in io_uring poll; do
        cat > "$work/rampart.toml" <<TOML
data_dir = "$work"
secrets_dir = "$work/secrets"
[log]
level = "warn"
[dataplane]
cores = 1
driver = "$driver"
[dataplane.https]
listen = ["127.0.0.1:$port"]
[dataplane.mqtt]
listen = []
[dataplane.cira]
listen = []
TOML
        "$bin/rampart" dataplane --config "$work/rampart.toml" 2>"$work/dp.log" &
        pid=$!
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
        "$bin/rampart-loadgen" handshake --target "127.0.0.1:$port" --ca "$work/secrets/ca/ca.pem" \
            --connections 16 --duration "${secs}s" --sample-rss-pid "$pid" --json "$work/out.json" >/dev/null 2>&1
        kill -TERM "$pid"; wait "$pid" || true
        python3 - "$work/out.json" "$driver" "$round" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
lat = j["latency_us"]; rss = j.get("server_rss") or {}
peak = rss.get("peak_kib", 0) / 1024
errs = j["errors"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {j['rate_per_s']:.0f} | {lat['p50']/1000:.2f} | {lat['p99']/1000:.2f} | {lat['p999']/1000:.2f} | {errs} | {peak:.1f} |")
PY
    done
done
