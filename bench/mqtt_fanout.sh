#!/usr/bin/env bash
# MQTT QoS 0 fan-out, Rampart against a reference Mosquitto, with identical loadgen options:
# 100-byte payloads, 1 publisher -> 1, 10 and 100 subscribers, plain TCP and TLS, alternating
# the brokers run by run. Rampart runs as `rampart up` with cores = 2 (as the tests do);
# Mosquitto (Debian package, single-threaded) runs with its defaults plus anonymous access and
# the certificate `rampart init` made. Both listen on free loopback ports in a temp dir; the
# system's own Mosquitto (1883) is never touched.
#
# Usage: bench/mqtt_fanout.sh [seconds] [rounds]   (default 10 s measured per run, 1 round)
#   RATE=N   messages/s of the publisher (default 0: as fast as the broker takes them; then the
#            latency is mostly queueing in socket buffers and broker queues, set RATE to
#            compare latencies below saturation)
#   QOS=1    QoS 1 instead of 0
#   SUBS="1 10"   the fan-outs to run (default "1 10 100")
#   TRANSPORTS=tcp   the transports to run (default "tcp tls")
#   PREFIX=P the load generator's client id prefix (--client-id-prefix). Rampart homes each
#            client on a core by its id, so a fixed prefix fixes the placement: with 2 cores,
#            "same" puts P-p0 and P-s0 on core 0, "cross" the publisher on 1 and the subscriber
#            on 0. Default: lg<pid>, a placement that changes run by run.
#   PIN=false   Rampart's pin_cores (default true)
# Prints a Markdown table on stdout, progress on stderr. Every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-1}
rate=${RATE:-0}
qos=${QOS:-0}
subs_list=${SUBS:-1 10 100}
transports=${TRANSPORTS:-tcp tls}
prefix=${PREFIX:-}
case ${PIN:-true} in true|false) ;; *) echo "PIN must be true or false" >&2; exit 2 ;; esac
cargo build --release --locked -q -p rampart-cli -p rampart-loadgen
bin=${CARGO_TARGET_DIR:-target}/release
command -v mosquitto >/dev/null || { echo "mosquitto is not installed" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source bench/lib.sh
r_plain=$(free_port); r_tls=$(free_port); m_plain=$(free_port); m_tls=$(free_port)

# === Rampart ===
mkdir "$work/rampart"
cat > "$work/rampart/rampart.toml" <<TOML
data_dir = "$work/rampart/var"
[log]
level = "warn"
[controlplane.limits]
# One account opens every connection (Mosquitto runs anonymous, without such a limit).
max_connections_per_account = 4096
[dataplane]
cores = 2
pin_cores = ${PIN:-true}
[dataplane.broker]
plain_listen = ["127.0.0.1:$r_plain"]
[dataplane.https]
listen = []
[dataplane.mqtt]
listen = ["127.0.0.1:$r_tls"]
[dataplane.cira]
listen = []
TOML
"$bin/rampart" init --config "$work/rampart/rampart.toml" --ip-san 127.0.0.1 >/dev/null
secrets=$work/rampart/var/secrets
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"], end="")' \
    "$secrets/controller.auth" > "$work/scenectrl.password"
"$bin/rampart" up --config "$work/rampart/rampart.toml" >"$work/rampart/up.log" 2>&1 &
up_pid=$!
pids+=("$up_pid")
wait_port "$r_plain"; wait_port "$r_tls"
# Ready once the data plane has the policy: scenectrl's CONNECT is accepted.
python3 - "$r_plain" "$work/scenectrl.password" <<'PY'
import socket, struct, sys, time
port, pw = int(sys.argv[1]), open(sys.argv[2]).read()
def field(s): b = s.encode(); return struct.pack(">H", len(b)) + b
body = b"\x00\x04MQTT\x04\xc2\x00\x3c" + field("bench-ready") + field("scenectrl") + field(pw)
pkt = bytes([0x10, len(body)]) + body
deadline = time.time() + 30
while time.time() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(pkt)
            if s.recv(4) == b"\x20\x02\x00\x00":
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("rampart never accepted scenectrl")
PY
dp_pid=$(pgrep -P "$up_pid" -f "rampart dataplane" | head -n1)

# === Mosquitto ===
mkdir -m 755 "$work/mosquitto"
chmod 711 "$work"
cp "$secrets/certs/mqtt.pem" "$secrets/certs/mqtt.key" "$work/mosquitto/"
chmod 644 "$work/mosquitto/mqtt.pem" "$work/mosquitto/mqtt.key"
cat > "$work/mosquitto/mosquitto.conf" <<CONF
persistence false
allow_anonymous true
log_dest stderr
log_type error
log_type warning
listener $m_plain 127.0.0.1
listener $m_tls 127.0.0.1
certfile $work/mosquitto/mqtt.pem
keyfile $work/mosquitto/mqtt.key
CONF
mosquitto -c "$work/mosquitto/mosquitto.conf" 2>"$work/mosquitto/log" &
mq_pid=$!
pids+=("$mq_pid")
wait_port "$m_plain"; wait_port "$m_tls"

echo "mosquitto $(mosquitto -h 2>/dev/null | head -n1 | awk '{print $3}'), rampart $("$bin/rampart" --version | awk '{print $2}'), $(nproc) CPUs, QoS $qos, rate ${rate} msg/s (0 = unlimited), ${secs} s per run, client ids ${prefix:-lg<pid>}-*" >&2
echo "| broker | transport | subscribers | sent msg/s | delivered msg/s | lost % | p50 ms | p99 ms | p99.9 ms | max ms | errors | client CPU % | server peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for subs in $subs_list; do
        for transport in $transports; do
            for broker in rampart mosquitto; do
                args=(mqtt-fanout --publishers 1 --subscribers "$subs" --qos "$qos" --payload 100
                      --rate "$rate" --duration "${secs}s" --warmup 1s
                      --topic-prefix scenescape/loadgen --json "$work/out.json")
                if [ "$broker" = rampart ]; then
                    port=$([ "$transport" = tls ] && echo "$r_tls" || echo "$r_plain")
                    args+=(--username scenectrl --password-file "$work/scenectrl.password"
                           --sample-rss-pid "$dp_pid")
                else
                    port=$([ "$transport" = tls ] && echo "$m_tls" || echo "$m_plain")
                    args+=(--sample-rss-pid "$mq_pid")
                fi
                args+=(--target "127.0.0.1:$port")
                [ -n "$prefix" ] && args+=(--client-id-prefix "$prefix")
                [ "$transport" = tls ] && args+=(--tls --ca "$secrets/ca/ca.pem")
                echo "round $round: $broker $transport $subs subscribers" >&2
                rm -f "$work/out.json"
                if ! timeout $((secs + 90)) "$bin/rampart-loadgen" "${args[@]}" \
                        >"$work/run.txt" 2>"$work/run.err"; then
                    echo "| $broker | $transport | $subs | failed: $(tail -n1 "$work/run.err") |"
                    cat "$work/run.txt" >&2
                    continue
                fi
                python3 - "$work/out.json" "$broker" "$transport" "$subs" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
lat = j["latency_us"] or {}
ms = lambda k: f"{lat[k] / 1000:.2f}" if k in lat else "-"
cpu = j.get("client_cpu") or {}
rss = j.get("server_rss") or {}
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {j['sent_per_s']:.0f} | "
      f"{j['delivered_per_s']:.0f} | {j['lost_pct']:.3f} | {ms('p50')} | {ms('p99')} | "
      f"{ms('p999')} | {ms('max')} | {j['errors']} | {cpu.get('pct_of_one_core', 0):.0f} | "
      f"{rss.get('peak_kib', 0) / 1024:.1f} |")
PY
            done
        done
    done
done
