#!/usr/bin/env python3
"""Reconnect storm of authenticated MQTT clients against a running broker (loopback only).

N clients connect to HOST:PORT as fast as a concurrency bound allows: TCP connect (from a
source address spread over 127.0.0.0/8, so the ephemeral ports never run out), TLS handshake
(verified with --ca) or plain TCP, CONNECT with a user name and password (MQTT 3.1.1 or 5,
clean session, keepalive 60 s), wait for the CONNACK, DISCONNECT, close. A refused or failed
attempt is retried up to --retries times after --retry-delay. Reported: the time until every
client has been accepted (null if one never was), accepted connects/s, connect latency (TCP
connect to CONNACK) p50/p90/p99/p99.9/max of the accepted attempts, and failed attempts by kind.
With --pid, the broker's VmRSS/VmHWM and CPU time (utime + stime) before and after.

Secrets are never arguments: --password-file, or --credentials-file with `user:password` lines
(client i takes line i mod lines).

Example:
  bench/mqtt_storm.py 10000 --port 8883 --tls --ca var/secrets/ca/ca.pem --user bench \\
      --password-file pw.txt --concurrency 200 --json storm.json
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys
import time

sys.dont_write_bytecode = True  # no bench/__pycache__ in the checkout
from mqtt_clients import (  # noqa: E402  (bench/, the script's folder, is sys.path[0])
    Refused,
    connect_packet,
    count_failure,
    die_with_parent,
    failures_by_kind,
    merge_failures,
    proc_cpu_s,
    proc_status,
    raise_nofile,
    read_packet,
    source_address,
    tls_context,
)

DISCONNECT = {4: b"\xe0\x00", 5: b"\xe0\x00"}


closing = []


async def attempt(i, args, ctx, creds):
    """One connect-CONNECT-CONNACK-DISCONNECT; returns the latency in s or raises."""
    user, password = creds[i % len(creds)]
    pkt = connect_packet(f"storm-{os.getpid()}-{i}", user, password, args.version, 60)
    t0 = time.perf_counter()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            args.host,
            args.port,
            ssl=ctx,
            server_hostname=args.server_name if ctx else None,
            local_addr=(source_address(i, args.spread), 0),
        ),
        args.timeout,
    )
    try:
        writer.write(pkt)
        first, body = await asyncio.wait_for(read_packet(reader), args.timeout)
        latency = time.perf_counter() - t0
        if first >> 4 != 2 or len(body) < 2:
            raise RuntimeError("not_connack")
        if body[1] != 0:
            raise Refused(f"CONNACK {body[1]:#04x}", body[1])
        writer.write(DISCONNECT[args.version])
        await asyncio.wait_for(writer.drain(), args.timeout)
        return latency
    finally:
        # The TLS close (close_notify) finishes in the background: waiting for it here would
        # hold a concurrency slot for nothing. `run_clients` waits for all of them at the end.
        writer.close()
        closing.append(writer)


async def run_clients(indices, args, creds, t_start):
    ctx = None
    if args.tls:
        ctx = tls_context(args.ca, check_hostname=args.server_name != "", tls12_only=args.tls12)
    sem = asyncio.Semaphore(args.concurrency)
    latencies, failures, examples, accepted_at = [], {}, {}, []

    async def client(i):
        for n in range(args.retries + 1):
            async with sem:
                try:
                    lat = await attempt(i, args, ctx, creds)
                    latencies.append(lat)
                    accepted_at.append(time.time() - t_start)
                    return
                except Exception as e:  # every failure is counted by kind
                    count_failure(failures, examples, e)
            if n < args.retries:
                await asyncio.sleep(args.retry_delay)

    # Every process starts at the same wall-clock instant.
    await asyncio.sleep(max(0.0, t_start - time.time()))
    deadline = t_start + args.total_timeout
    tasks = [asyncio.ensure_future(client(i)) for i in indices]
    done, pending = await asyncio.wait(tasks, timeout=max(0.1, deadline - time.time()))
    for t in pending:
        t.cancel()
    if pending:
        failures["total_timeout"] = failures.get("total_timeout", 0) + len(pending)
        examples.setdefault("total_timeout", f"not accepted within {args.total_timeout} s")
        await asyncio.gather(*pending, return_exceptions=True)
    if closing:
        await asyncio.wait(
            [asyncio.ensure_future(w.wait_closed()) for w in closing], timeout=5
        )
    return {
        "latencies": latencies,
        "accepted_at": accepted_at,
        "failures": failures,
        "examples": examples,
    }


def worker(indices, args, creds, t_start, q, parent):
    die_with_parent(parent)
    raise_nofile()
    try:
        q.put(asyncio.run(run_clients(indices, args, creds, t_start)))
    except BaseException as e:  # report instead of hanging the parent
        q.put({"error": repr(e)})


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def read_creds(args):
    if args.credentials_file:
        creds = []
        for line in open(args.credentials_file):
            line = line.strip()
            if line and not line.startswith("#"):
                u, _, p = line.partition(":")
                creds.append((u, p))
        if not creds:
            raise SystemExit("--credentials-file has no user:password line")
        return creds
    if not args.user or not args.password_file:
        raise SystemExit("give --user and --password-file, or --credentials-file")
    return [(args.user, open(args.password_file).read().rstrip("\r\n"))]


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("n", type=int, help="clients")
    a.add_argument("--host", default="127.0.0.1")
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--tls", action="store_true")
    a.add_argument("--ca", help="PEM CA of the broker's certificate (with --tls)")
    a.add_argument("--tls12", action="store_true", help="offer only TLS 1.2")
    a.add_argument("--server-name", default="localhost", help="SNI and name checked ('' skips)")
    a.add_argument("--user")
    a.add_argument("--password-file")
    a.add_argument("--credentials-file")
    a.add_argument("--mqtt-version", choices=["311", "5"], default="311")
    a.add_argument("--concurrency", type=int, default=200, help="clients in flight at once")
    a.add_argument("--procs", type=int, default=1, help="client processes")
    a.add_argument("--spread", type=int, default=1024, help="source addresses in 127.0.0.0/8")
    a.add_argument("--timeout", type=float, default=10, help="connect and CONNACK timeout, s")
    a.add_argument("--retries", type=int, default=2)
    a.add_argument("--retry-delay", type=float, default=0.1)
    a.add_argument("--total-timeout", type=float, default=300, help="whole storm, s")
    a.add_argument("--pid", type=int, help="the broker's pid: RSS and CPU before and after")
    a.add_argument("--json", help="also write the figures as JSON here")
    args = a.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback targets only")
    if args.tls and not args.ca:
        raise SystemExit("--tls needs --ca")
    if args.n < 1 or args.concurrency < 1 or args.procs < 1 or args.spread < 1:
        raise SystemExit("N, --concurrency, --procs and --spread must be at least 1")
    args.version = 5 if args.mqtt_version == "5" else 4
    creds = read_creds(args)
    nofile = raise_nofile()

    before = {}
    if args.pid:
        before = dict(proc_status(args.pid), cpu_s=proc_cpu_s(args.pid))
    procs = min(args.procs, args.n)
    args.concurrency = max(1, args.concurrency // procs)
    t_start = time.time() + 0.3 + 0.1 * procs
    if procs == 1:
        parts = [asyncio.run(run_clients(range(args.n), args, creds, t_start))]
    else:
        q = multiprocessing.get_context("fork").Queue()
        ps = [
            multiprocessing.get_context("fork").Process(
                target=worker,
                args=(range(k, args.n, procs), args, creds, t_start, q, os.getpid()),
            )
            for k in range(procs)
        ]
        for p in ps:
            p.start()
        parts = [q.get(timeout=args.total_timeout + 60) for _ in ps]
        for p in ps:
            p.join(10)
        errs = [p["error"] for p in parts if "error" in p]
        if errs:
            raise SystemExit(f"a client process failed: {errs[0]}")
    wall = time.time() - t_start
    after = {}
    if args.pid:
        try:
            after = dict(proc_status(args.pid), cpu_s=proc_cpu_s(args.pid))
        except FileNotFoundError:
            after = {"exited": True}

    lat = sorted(x for p in parts for x in p["latencies"])
    acc = sorted(x for p in parts for x in p["accepted_at"])
    failures, examples = merge_failures(parts)
    accepted = len(lat)
    all_s = acc[-1] if accepted == args.n and acc else None
    span = acc[-1] if acc else None
    ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
    out = {
        "tool": "bench/mqtt_storm.py",
        "command_line": sys.argv,
        "target": f"{args.host}:{args.port}",
        "transport": "tls" if args.tls else "tcp",
        "mqtt_version": args.mqtt_version,
        "clients": args.n,
        "concurrency": args.concurrency * procs,
        "procs": procs,
        "source_addresses": min(args.spread, args.n),
        "retries": args.retries,
        "rlimit_nofile": nofile,
        "accepted": accepted,
        "not_accepted": args.n - accepted,
        "time_to_all_accepted_s": None if all_s is None else round(all_s, 4),
        "last_accept_s": None if span is None else round(span, 4),
        "connects_per_s": round(accepted / span, 1) if span else None,
        "failed_attempts": sum(failures.values()),
        "failures_by_kind": failures_by_kind(failures, examples),
        "latency_ms": None
        if not lat
        else {
            "p50": ms(pct(lat, 0.50)),
            "p90": ms(pct(lat, 0.90)),
            "p99": ms(pct(lat, 0.99)),
            "p999": ms(pct(lat, 0.999)),
            "max": ms(lat[-1]),
            "mean": ms(sum(lat) / len(lat)),
        },
        "client_cpu_s": round(
            sum(
                resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime
                for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            ),
            2,
        ),
        "elapsed_s": round(max(wall, 0.0), 3),
        "server": None
        if not args.pid
        else {
            "pid": args.pid,
            "rss_before_kib": before.get("VmRSS"),
            "rss_after_kib": after.get("VmRSS"),
            "hwm_after_kib": after.get("VmHWM"),
            "cpu_s": None if "cpu_s" not in after else round(after["cpu_s"] - before["cpu_s"], 2),
        },
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    l = out["latency_ms"] or {}
    print(
        f"storm {out['transport']} {args.n} clients (concurrency {out['concurrency']}, "
        f"{procs} procs): {accepted} accepted"
        + (f" in {all_s:.2f} s" if all_s is not None else " (not all)")
        + (f", {out['connects_per_s']} connects/s" if out["connects_per_s"] else "")
        + f", latency p50 {l.get('p50')} p99 {l.get('p99')} max {l.get('max')} ms"
        + f", {out['failed_attempts']} failed attempts {dict(failures) if failures else ''}"
    )
    return 0 if accepted == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
