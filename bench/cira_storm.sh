#!/usr/bin/env bash
# A reconnect storm of simulated Intel AMT devices against the CIRA port: N allowlisted devices
# (each with its own MPS password) dial in at RATE connections/s over TLS 1.2, as AMT does, set
# up their APF tunnels (allowlist, credentials, pfwd, two forwards) and hold them with
# keepalives. Rampart runs as `rampart up` with cores = 2; the server's memory is sampled.
#
# Usage: bench/cira_storm.sh [devices] [rate] [hold]   (default 1000 devices, 200/s, 10s)
# Prints loadgen's summary on stdout, progress on stderr. Loopback only; every step is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
rate=${2:-200}
hold=${3:-10s}
cargo build --release --locked -q -p rampart-cli -p rampart-loadgen
bin=${CARGO_TARGET_DIR:-target}/release

# shellcheck source=bench/lib.sh
source bench/lib.sh
port=$(free_port)
cat > "$work/rampart.toml" <<TOML
data_dir = "$work/var"
[log]
level = "warn"
[controlplane.limits]
# Every device dials from 127.0.0.1: failed admissions must not lock the address out.
max_auth_failures_per_minute = 100000
[dataplane]
cores = 2
[dataplane.https]
listen = []
[dataplane.mqtt]
listen = []
[dataplane.cira]
listen = ["127.0.0.1:$port"]
TOML
"$bin/rampart" init --config "$work/rampart.toml" --ip-san 127.0.0.1 >/dev/null 2>&1
"$bin/rampart" up --config "$work/rampart.toml" >"$work/up.log" 2>&1 &
pids+=($!)
wait_port "$port"

echo "allowlisting $n devices" >&2
devices="$work/devices.csv"
: > "$devices"
chmod 600 "$devices"
for i in $(seq 1 "$n"); do
    guid=$(printf '%08x-0000-4000-8000-%012x' "$i" "$i")
    pw=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    printf '%s' "$pw" | "$bin/rampart" device add --config "$work/rampart.toml" \
        --guid "$guid" --mps-username admin --mps-password-stdin >/dev/null
    echo "$guid,admin,$pw" >> "$devices"
done
sleep 2 # the last policy generation reaches the data plane
dp=$(pgrep -f "dataplane --config $work/rampart.toml" | head -n 1)

echo "storm: $n devices at $rate/s" >&2
echo '```'
"$bin/rampart-loadgen" cira --target "127.0.0.1:$port" --ca "$work/var/secrets/ca/ca.pem" \
    --tls12 --devices-file "$devices" --rate "$rate" --hold "$hold" --keepalive 5s \
    --threads 8 --sample-rss-pid "$dp"
echo '```'
