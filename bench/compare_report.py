#!/usr/bin/env python3
"""The Markdown section of `bench/compare`, from the files of one run.

Reads RESULTS/meta.json (machine, settings, command), RESULTS/runs.jsonl (one line per broker
run: scenario, broker, round, the broker's CPU seconds, wall time, VmHWM) and the JSON each run
wrote (rampart-loadgen `mqtt`/`mqtt-fanout`, bench/mqtt_idle.py, bench/mqtt_storm.py). Every
number printed comes from those files. With several rounds, each figure is the median over the
rounds. Prints the section, or with --write FILE replaces the text between the markers
`<!-- compare:begin -->` and `<!-- compare:end -->` in FILE (appending the section with the
markers if they are absent).

Usage: bench/compare_report.py RESULTS [--write FILE]
"""

import argparse
import json
import os
import statistics
import sys

BEGIN = "<!-- compare:begin -->"
END = "<!-- compare:end -->"
BROKERS = ["rampart", "mosquitto", "rumqttd"]
MQTT_SCENARIOS = ["fanin", "fanin_fast", "fanout", "fanout_fast", "fanout_plain", "m2m"]
ORDER = MQTT_SCENARIOS + ["idle", "storm"]


def load(results):
    meta = json.load(open(os.path.join(results, "meta.json")))
    runs = []
    with open(os.path.join(results, "runs.jsonl")) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                path = os.path.join(results, r["result"])
                r["data"] = None
                if os.path.exists(path) and os.path.getsize(path) > 0:
                    try:
                        r["data"] = json.load(open(path))
                    except ValueError:
                        pass
                r["samples"] = []
                cpu = os.path.join(results, r.get("cpu_samples") or "-")
                if os.path.exists(cpu):
                    for x in open(cpu):
                        parts = x.split()
                        if len(parts) == 2:
                            r["samples"].append((float(parts[0]), int(parts[1])))
                    r["samples"].sort()
                err = os.path.join(results, r["name"] + ".err")
                r["err"] = ""
                if os.path.exists(err):
                    lines = [x for x in open(err, errors="replace").read().splitlines() if x.strip()]
                    r["err"] = lines[-1] if lines else ""
                runs.append(r)
    return meta, runs


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    if v is None:
        return "-"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.{digits}f}×"


def mib(kib):
    return None if not kib else kib / 1024


def cpu_pct(run):
    """The broker's CPU in % of one core over the whole run."""
    if not run.get("wall_s"):
        return None
    return 100.0 * run["cpu_s"] / run["wall_s"]


def window_cpu_pct(run):
    """The broker's CPU in % of one core over the load generator's measured window, from the
    samples (unix time, clock ticks) taken 4 times a second; None without them."""
    j, samples = run["data"], run.get("samples") or []
    if not j or not j.get("started_unix_ms") or len(samples) < 2:
        return None
    start = j["started_unix_ms"] / 1000 + (j.get("warmup_s") or 0)
    end = start + (j.get("duration_s") or 0)
    if end <= start or samples[0][0] > start or samples[-1][0] < end:
        return None

    def at(t):  # ticks at time t, linear between the samples around it
        for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
            if t0 <= t <= t1:
                return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)
        return None

    a, b = at(start), at(end)
    if a is None or b is None:
        return None
    return 100.0 * (b - a) / run.get("clk_tck", 100) / (end - start)


def figures(j):
    """The headline figures: nested under `figures` or flattened into the document."""
    f = j.get("figures")
    return f if isinstance(f, dict) else j


def failed(run):
    return run["data"] is None or (run["rc"] != 0 and run["scenario"] in MQTT_SCENARIOS)


def failure_note(run):
    why = run["err"].replace("|", "\\|")[:160]
    return f"failed (exit {run['rc']})" + (f": {why}" if why else "")


def mqtt_row(runs):
    """Median figures of one broker's runs of an MQTT scenario."""
    ok = [r for r in runs if not failed(r)]
    if not ok:
        return None
    lat = lambda r, k: (r["data"].get("latency_us") or {}).get(k)  # noqa: E731
    return {
        "sent": median(figures(r["data"]).get("sent_per_s") for r in ok),
        "delivered": median(figures(r["data"]).get("delivered_per_s") for r in ok),
        "lost": median(figures(r["data"]).get("lost_pct") for r in ok),
        "p50": median(None if lat(r, "p50") is None else lat(r, "p50") / 1000 for r in ok),
        "p99": median(None if lat(r, "p99") is None else lat(r, "p99") / 1000 for r in ok),
        "p999": median(None if lat(r, "p999") is None else lat(r, "p999") / 1000 for r in ok),
        "cpu": median(window_cpu_pct(r) for r in ok),
        "cpu_run": median(cpu_pct(r) for r in ok),
        "rss": median(mib(r["hwm_kib"]) for r in ok),
        "errors": median(r["data"].get("errors", 0) for r in ok),
        "client_cpu": median((r["data"].get("client_cpu") or {}).get("pct_of_one_core") for r in ok),
        "n": len(ok),
    }


# Table columns: header, row key, decimals, whether the Rampart / Mosquitto row gives a ratio.
MQTT_COLUMNS = [
    ("sent msg/s", "sent", 0, True), ("delivered msg/s", "delivered", 0, True),
    ("lost %", "lost", 3, False), ("p50 ms", "p50", 2, True), ("p99 ms", "p99", 2, True),
    ("p99.9 ms", "p999", 2, True), ("broker CPU % measured", "cpu", 0, True),
    ("broker CPU % whole run", "cpu_run", 0, True), ("broker peak RSS MiB", "rss", 1, True),
    ("errors", "errors", 0, False), ("client CPU %", "client_cpu", 0, False),
]
IDLE_COLUMNS = [
    ("connected", "connected", 0, False), ("setup s", "setup", 1, True),
    ("connects/s", "cps", 0, True), ("RSS before MiB", "before", 1, True),
    ("RSS after MiB", "after", 1, True), ("bytes per connection", "bpc", 0, True),
    ("broker peak RSS MiB", "rss", 1, True), ("broker CPU ms per connection", "cpu_ms", 2, True),
    ("failed", "failed", 0, False),
]
STORM_COLUMNS = [
    ("accepted", "accepted_of", 0, False), ("time to accept all s", "all", 2, True),
    ("connects/s", "cps", 0, True), ("p50 ms", "p50", 2, True), ("p99 ms", "p99", 2, True),
    ("max ms", "max", 2, True), ("failed attempts", "failed", 0, False),
    ("broker CPU %", "cpu", 0, True), ("broker CPU ms per connection", "cpu_ms", 2, True),
    ("broker peak RSS MiB", "rss", 1, True), ("client CPU s", "client", 1, False),
]


def broker_table(out, columns, by_broker, row_of):
    """A row per broker (`row_of(runs)`: its figures, None if every run failed), then
    Rampart / Mosquitto (and Rampart / rumqttd where it ran) for the columns that take a
    ratio."""
    out.append("| broker | " + " | ".join(c[0] for c in columns) + " |")
    out.append("|---" * (len(columns) + 1) + "|")
    rows = {}
    for b in BROKERS:
        runs = by_broker.get(b, [])
        if not runs:
            continue
        row = rows[b] = row_of(runs)
        if row is None:
            out.append(f"| {b} | {failure_note(runs[0])} |" + " - |" * (len(columns) - 1))
            continue
        cells = [row[k] if isinstance(row[k], str) else fmt(row[k], digits)
                 for _, k, digits, _ in columns]
        out.append(f"| {b} | " + " | ".join(cells) + " |")
    r = rows.get("rampart")
    for other, name in (("mosquitto", "Mosquitto"), ("rumqttd", "rumqttd")):
        o = rows.get(other)
        if r and o:
            cells = [ratio(r[k], o[k]) if takes_ratio else "-" for _, k, _, takes_ratio in columns]
            out.append(f"| **Rampart / {name}** | " + " | ".join(cells) + " |")


def idle_row(runs):
    """Median figures of one broker's idle runs."""
    ok = [r for r in runs if r["data"]]
    if not ok:
        return None
    d = lambda k: median(r["data"].get(k) for r in ok)  # noqa: E731
    s = lambda k: median(r["data"]["server"].get(k) for r in ok)  # noqa: E731
    return {
        "connected": d("connected"), "setup": d("setup_s"), "cps": d("connects_per_s"),
        "before": mib(s("rss_before_kib")), "after": mib(s("rss_after_kib")),
        "bpc": d("bytes_per_connection"), "rss": median(mib(r["hwm_kib"]) for r in ok),
        "cpu_ms": median(
            1000 * r["data"]["server"]["cpu_s"] / r["data"]["connected"]
            if r["data"]["connected"] else None for r in ok),
        "failed": d("failed"),
    }


def storm_row(runs):
    """Median figures of one broker's storm runs."""
    ok = [r for r in runs if r["data"]]
    if not ok:
        return None
    d = lambda k: median(r["data"].get(k) for r in ok)  # noqa: E731
    lat = lambda k: median((r["data"].get("latency_ms") or {}).get(k) for r in ok)  # noqa: E731
    return {
        "accepted_of": f"{fmt(d('accepted'))} / {fmt(ok[0]['data']['clients'])}",
        "all": d("time_to_all_accepted_s"),
        "cps": d("connects_per_s"), "p50": lat("p50"), "p99": lat("p99"), "max": lat("max"),
        "failed": d("failed_attempts"), "cpu": median(cpu_pct(r) for r in ok),
        "cpu_ms": median(
            1000 * r["data"]["server"]["cpu_s"] / r["data"]["accepted"]
            if r["data"].get("server") and r["data"]["accepted"] else None for r in ok),
        "rss": median(mib(r["hwm_kib"]) for r in ok), "client": d("client_cpu_s"),
    }


def scenario_title(scen, j, meta):
    pubs, subs = j.get("publishers"), j.get("subscribers")
    rate = j.get("rate_per_publisher")
    each = "as fast as the broker takes them" if rate == 0 else f"{rate:,} msg/s each"
    qos = j.get("qos", 0)
    retain = " retained," if j.get("retain") else ""
    base = {
        "fanin": "Fan-in, cameras at a fixed rate",
        "fanin_fast": "Fan-in, as fast as possible",
        "fanout": "Fan-out, fixed rate",
        "fanout_fast": "Fan-out, as fast as possible",
        "fanout_plain": "Fan-out over plain TCP (with rumqttd), as fast as possible",
        "m2m": "Many to many",
    }[scen]
    return (f"{base}: {pubs:,} publisher{'s' if pubs != 1 else ''} ({each}) → "
            f"{subs:,} subscriber{'s' if subs != 1 else ''}, QoS {qos},{retain} "
            f"{j.get('payload_bytes', '?')}-byte payloads")


def mqtt_section(scen, by_broker, meta, out):
    first = next((r["data"] for b in BROKERS for r in by_broker.get(b, []) if r["data"]), None)
    if first is None:
        out.append(f"### {scen}\n\nNo run produced a result.\n")
        for b in BROKERS:
            for r in by_broker.get(b, []):
                out.append(f"- {b}: {failure_note(r)}")
        out.append("")
        return
    out.append(f"### {scenario_title(scen, first, meta)}\n")
    filters = first.get("filters") or first.get("filter")
    detail = []
    if filters:
        detail.append("subscribers' filter " + ", ".join(f"`{f}`" for f in (
            filters if isinstance(filters, list) else [filters])))
    if first.get("rate_per_publisher") == 0 and first.get("max_ahead"):
        detail.append(f"each publisher at most {first['max_ahead']:,} messages ahead of its "
                      f"slowest subscriber")
    if first.get("warmup_s") is not None and first.get("duration_s") is not None:
        detail.append(f"{first['warmup_s']:g} s warm-up, {first['duration_s']:g} s measured")
    if detail:
        out.append("; ".join(detail) + ".\n")
    broker_table(out, MQTT_COLUMNS, by_broker, mqtt_row)
    for b in BROKERS:
        for run in by_broker.get(b, []):
            if run["data"] is not None and run["rc"] != 0:
                out.append(f"\n{b} round {run['round']}: {failure_note(run)}")
    out.append("")


def idle_section(by_broker, meta, out):
    first = next((r["data"] for b in BROKERS for r in by_broker.get(b, []) if r["data"]), None)
    asked = meta["sizes"].get("idle_asked")
    n = first["asked"] if first else meta["sizes"].get("idle_conns")
    out.append(f"### Idle TLS connections: memory per connection ({n:,} connections)\n")
    if asked and asked != n:
        out.append(f"{asked:,} connections were asked for; this machine's hard RLIMIT_NOFILE "
                   f"({meta['rlimit_nofile']}) lets a broker hold only {n:,}.\n")
    if first:
        out.append(f"Each connection: TLS, CONNECT as `bench` (keepalive {first['keepalive_s']} s), "
                   f"CONNACK, then silence; all held for {first['hold_s']:g} s before the broker's "
                   f"RSS is read. The connections come from {first['source_addresses']:,} source "
                   f"addresses in 127.0.0.0/8.\n")
    broker_table(out, IDLE_COLUMNS, by_broker, idle_row)
    failures_note(by_broker, out)
    out.append("")


def failures_note(by_broker, out):
    for b in BROKERS:
        for run in by_broker.get(b, []):
            kinds = (run["data"] or {}).get("failures_by_kind") or {}
            if kinds:
                items = ", ".join(f"{k} {v['count']} (e.g. {v['example']})" for k, v in kinds.items())
                out.append(f"\n{b} round {run['round']}, failures by kind: {items}")


def storm_section(by_broker, meta, out):
    first = next((r["data"] for b in BROKERS for r in by_broker.get(b, []) if r["data"]), None)
    n = first["clients"] if first else meta["sizes"].get("storm_clients")
    out.append(f"### Reconnect storm: {n:,} authenticated TLS clients\n")
    if first:
        out.append(f"Each client: TCP connect from one of {first['source_addresses']:,} source "
                   f"addresses in 127.0.0.0/8, TLS handshake, CONNECT as `bench`, CONNACK, "
                   f"DISCONNECT; {first['concurrency']:,} in flight at once over "
                   f"{first['procs']} client process(es), up to {first['retries']} retries. "
                   f"Latency is from the TCP connect to the CONNACK; connects/s is accepted "
                   f"clients over the time to the last CONNACK.\n")
    client_ms, broker_ms = [], []
    for b in BROKERS:
        for r in by_broker.get(b, []):
            j = r["data"]
            if j and j.get("accepted") and j.get("server"):
                client_ms.append(1000 * j["client_cpu_s"] / j["accepted"])
                broker_ms.append(1000 * j["server"]["cpu_s"] / j["accepted"])
    if client_ms and min(client_ms) > max(broker_ms):
        out.append(f"The Python client (OpenSSL) spent {min(client_ms):.1f}–{max(client_ms):.1f} ms "
                   f"of CPU per connection, more than either broker "
                   f"({min(broker_ms):.2f}–{max(broker_ms):.2f} ms), on the same 2 cores: the rate "
                   f"and the latencies are bounded by the client, and the broker's CPU per "
                   f"connection is the figure that compares the brokers.\n")
    broker_table(out, STORM_COLUMNS, by_broker, storm_row)
    failures_note(by_broker, out)
    out.append("")


def short(s, meta):
    return s.replace(meta["work"], "$WORK").replace(meta.get("out", "\0"), "$OUT")


def quote(arg):
    if arg and all(c.isalnum() or c in "-_./:=,{}+$" for c in arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def render(meta, runs):
    out = [BEGIN, "## Rampart and Mosquitto under the same load (`bench/compare`)", ""]
    env = " ".join(f"{k}={v}" for k, v in sorted(meta.get("env", {}).items()))
    out.append("Generated by the command below; every figure is from its JSON files "
               "(re-run it rather than edit this section).\n")
    out.append("```sh")
    out.append((env + " " if env else "") + meta["command"])
    out.append("```\n")
    mem_gib = meta["mem_total_kib"] / 1024 / 1024
    out.append("| | |")
    out.append("|---|---|")
    out.append(f"| date | {meta['date']} |")
    if meta.get("loadavg_at_start"):
        out.append(f"| load average before the run | {meta['loadavg_at_start']} |")
    out.append(f"| kernel (`uname -r`) | {meta['kernel']} |")
    out.append(f"| CPU | {meta['cpu_model']}, {meta['cpu_logical_in_cpuinfo']} logical CPUs in "
               f"/proc/cpuinfo ({meta['cpus']} usable) |")
    out.append(f"| memory | {mem_gib:.1f} GiB |")
    out.append(f"| Mosquitto | {meta['mosquitto']} (Debian package), one thread |")
    out.append(f"| Rampart | {meta['rampart']}, commit `{meta['commit']}`, `cores = 2` |")
    out.append(f"| rumqttd | {meta['rumqttd']} |")
    out.append(f"| load generator | {meta['loadgen']} (`mqtt`) |")
    out.append(f"| idle and storm clients | Python {meta['python']} asyncio, {meta['openssl']} |")
    out.append(f"| open files (RLIMIT_NOFILE) | {meta['rlimit_nofile']} |")
    out.append("")
    s = meta["sizes"]
    persist = ("both brokers keep retained messages and sessions on disk, written at most "
               "once a second" if s.get("persist") else "no persistence on either broker")
    out.append(
        "Both brokers get the same treatment: one TLS listener on loopback (TLS 1.2 and 1.3, "
        "ECDHE with AEAD suites, the P-384 certificate `rampart init` makes; the load generator "
        "and the Python clients negotiate TLS 1.3), every client authenticated as `bench` "
        "(Rampart: a service account; Mosquitto: `password_file`, `allow_anonymous false`) and "
        f"ACL-checked (readwrite on `bench/#`), {persist}. Each run starts a fresh broker, alone "
        "on the machine with its client (all on the same 2 cores). Broker CPU is utime + stime "
        "from /proc/PID/stat in % of one core (Rampart: data plane, control plane and supervisor "
        "together), over the load generator's measured window (sampled 4 times a second) and "
        "over the whole run (connection setup, warm-up, measured window, drain); peak RSS "
        "is VmHWM of the broker process (Rampart: the `rampart dataplane` process). Latencies "
        "are end to end, publisher to subscriber. Ratios are Rampart's figure over Mosquitto's."
        + (f" Figures are medians of {s['rounds']} rounds, the order of the brokers alternating."
           if s.get("rounds", 1) > 1 else " One round; Rampart ran first.")
        + "\n")
    cp = [r.get("controlplane_rss_kib") for r in runs if r.get("controlplane_rss_kib")]
    if cp:
        out.append(f"Rampart's control plane (not in the RSS columns) held "
                   f"{min(cp) / 1024:.1f}–{max(cp) / 1024:.1f} MiB at the end of the runs.\n")

    by = {}
    for r in runs:
        by.setdefault(r["scenario"], {}).setdefault(r["broker"], []).append(r)
    for scen in ORDER:
        if scen not in by:
            continue
        if scen == "fanout_plain":
            out.append(
                "The one scenario without TLS, run with rumqttd too (its anchor in issue 7 is "
                "plain TCP): MQTT 3.1.1 on a loopback listener of each broker, `bench` with "
                "its password on all three; Rampart and Mosquitto check the ACL as everywhere "
                "else, rumqttd has no ACLs and keeps nothing on disk.\n")
        if scen in MQTT_SCENARIOS:
            mqtt_section(scen, by[scen], meta, out)
        elif scen == "idle":
            idle_section(by[scen], meta, out)
        else:
            storm_section(by[scen], meta, out)

    out.append("### Exact commands\n")
    out.append("`$WORK` is the run's temporary directory. Broker configurations:\n")
    out.append("<details><summary>rampart.toml, mosquitto.conf and rumqttd.toml</summary>\n")
    out.append("```toml")
    out.append(short(meta["rampart_config"], meta).rstrip())
    out.append("```\n")
    out.append("```")
    out.append(short(meta["mosquitto_config"], meta).rstrip())
    out.append("```\n")
    if meta.get("rumqttd_config"):
        out.append("```toml")
        out.append(short(meta["rumqttd_config"], meta).rstrip())
        out.append("```\n")
    out.append("</details>\n")
    out.append("<details><summary>the client command of every run</summary>\n")
    out.append("```sh")
    for r in runs:
        cl = (r["data"] or {}).get("command_line")
        if cl:
            if cl and cl[0].endswith(".py"):
                cl = ["python3"] + cl
            out.append(f"# {r['scenario']}, {r['broker']}, round {r['round']}")
            out.append(short(" ".join(quote(a) for a in cl), meta))
    out.append("```\n")
    out.append("</details>")
    out.append(END)
    return "\n".join(out) + "\n"


def write(path, section):
    text = open(path).read() if os.path.exists(path) else ""
    b, e = text.find(BEGIN), text.find(END)
    if b != -1 and e != -1 and e > b:
        text = text[:b] + section.rstrip("\n") + text[e + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("results")
    a.add_argument("--write", metavar="FILE")
    args = a.parse_args()
    meta, runs = load(args.results)
    section = render(meta, runs)
    if args.write:
        write(args.write, section)
    else:
        sys.stdout.write(section)


if __name__ == "__main__":
    main()
