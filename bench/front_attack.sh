#!/usr/bin/env bash
# The HTTPS front under slowhttptest, measured from a legitimate client's side: wrk fetches the
# web console's index page (keep-alive, 8 connections) for a fixed time, first with no attack,
# then while slowhttptest runs each of its four modes against the same port. Rampart runs as
# `rampart up` with cores = 2 and the production defaults (header=20-40,MinRate=500
# body=20,MinRate=500, send_timeout 20,MinRate=1024, 256 connections per address), so the
# slow connections are alive for the whole measurement.
#
# Usage: bench/front_attack.sh [seconds] [connections]   (default 15 s of wrk per row, 200
#        slow connections per attack)
# Prints a Markdown table on stdout, progress on stderr. Loopback only; every step is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
conns=${2:-200}
for tool in wrk slowhttptest; do
    command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release --locked -q -p rampart-cli
bin=${CARGO_TARGET_DIR:-target}/release

# shellcheck source=bench/lib.sh
source bench/lib.sh
port=$(free_port)
metrics=$(free_port)
mkdir -p "$work/web"
printf '<!doctype html><title>console</title><p>Rampart web console</p>\n' > "$work/web/index.html"
head -c 4194304 /dev/zero > "$work/web/big.bin"
cat > "$work/rampart.toml" <<TOML
data_dir = "$work/var"
[log]
level = "warn"
[dataplane]
cores = 2
metrics_listen = "127.0.0.1:$metrics"
[dataplane.https]
listen = ["127.0.0.1:$port"]
[dataplane.front]
web_root = "$work/web"
access_log = "off"
[dataplane.mqtt]
listen = []
[dataplane.cira]
listen = []
TOML
"$bin/rampart" init --config "$work/rampart.toml" --ip-san 127.0.0.1 >/dev/null 2>&1
"$bin/rampart" up --config "$work/rampart.toml" >"$work/up.log" 2>&1 &
pids+=($!)
wait_port "$port"
sleep 1
url="https://127.0.0.1:$port"

gauge() { curl -s "127.0.0.1:$metrics/metrics" | awk '$1 == "rampart_https_connections" { print $2 }'; }

# One wrk run: "req/s p50 p99 errors", latencies in ms.
measure() {
    local out
    out=$(timeout $((secs + 30)) wrk -t1 -c8 -d"${secs}s" --latency "$url/" 2>&1)
    awk '
        function ms(v) {
            if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
            if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
            if (v ~ /s$/) { sub(/s$/, "", v); return v * 1000 }
            return v
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx/ { errs += $NF }
        /Socket errors/ { gsub(/,/, ""); errs += $4 + $6 + $8 + $10 }
        END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, errs }
    ' <<<"$out"
}

attack_args() {
    case "$1" in
        H) echo "-H -i 10" ;;
        B) echo "-B -i 10 -s 8192 -f application/json" ;;
        R) echo "-R -a 10 -b 3000" ;;
        X) echo "-X -w 16 -y 64 -n 1 -z 32 -k 3" ;;
    esac
}
attack_path() { case "$1" in B) echo /api/v1/auth/login ;; X) echo /big.bin ;; *) echo / ;; esac; }
attack_name() {
    case "$1" in
        none) echo "no attack" ;; H) echo "slowloris (-H)" ;; B) echo "slow body (-B)" ;;
        R) echo "range (-R)" ;; X) echo "slow read (-X)" ;;
    esac
}

echo "| attack | slow connections held by the server | wrk req/s | p50 ms | p99 ms | wrk errors |"
echo "|---|---|---|---|---|---|"
for mode in none H B R X; do
    held="-"
    if [ "$mode" != none ]; then
        # shellcheck disable=SC2046
        slowhttptest $(attack_args "$mode") -c "$conns" -r 100 -l $((secs + 15)) -p 3 \
            -u "$url$(attack_path "$mode")" >"$work/slow-$mode.log" 2>&1 &
        spid=$!
        pids+=("$spid")
        sleep 5
        held=$(gauge)
    fi
    echo "measuring: $(attack_name "$mode")" >&2
    read -r rps p50 p99 errs < <(measure)
    if [ "$mode" != none ]; then
        kill -TERM "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
        sleep 2
    fi
    echo "| $(attack_name "$mode") | $held | $rps | $p50 | $p99 | $errs |"
done
echo >&2 "server counters after the runs:"
curl -s "127.0.0.1:$metrics/metrics" | grep -E '^rampart_https_(timeouts|rejections)_total' | grep -v ' 0$' >&2 || true
