#!/usr/bin/env python3
"""Resident memory per idle MQTT connection of a running broker.

Opens N connections to 127.0.0.1:PORT (TLS verified with --ca, or plain TCP), each sending a
CONNECT (MQTT 3.1.1, keepalive --keepalive s, 60 by default) as USER with the password read
from --password-file and waiting for its CONNACK, then keeps them all open for --hold s (2 by
default) and prints how much the resident memory (VmRSS) of process --pid grew, per connection.
Loopback only.

The connections come from source addresses spread over 127.0.0.0/8 (--spread of them), so tens
of thousands never run out of ephemeral ports; --concurrency of them are set up at a time. The
soft RLIMIT_NOFILE is raised to the hard limit; when N is more than one process may hold, the
connections are spread over enough processes (or --procs). --json writes every figure,
failed connections by kind included.

Example, against `rampart up` (give the `rampart dataplane` child's pid):
  bench/mqtt_idle.py --port 8883 --tls --ca var/secrets/ca/ca.pem --user scenectrl \\
      --password-file pw.txt --pid $(pgrep -f 'rampart dataplane') 2000
"""

import argparse
import asyncio
import json
import math
import multiprocessing
import os
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
    raise_nofile,
    source_address,
    status_kib,
    tls_context,
)


async def open_all(indices, args, password, ctx):
    """Opens the connections of `indices`; returns (writers, failures, examples, seconds)."""
    sem = asyncio.Semaphore(args.concurrency)
    writers, failures, examples = [], {}, {}

    async def one(i):
        async with sem:
            w = None
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(
                        "127.0.0.1",
                        args.port,
                        ssl=ctx,
                        server_hostname=args.server_name if ctx else None,
                        local_addr=(source_address(i, args.spread), 0) if args.spread else None,
                    ),
                    args.timeout,
                )
                pkt = connect_packet(f"idle-{i}", args.user, password, keepalive=args.keepalive)
                w.write(pkt)
                ack = await asyncio.wait_for(r.readexactly(4), args.timeout)
                if ack[:1] != b"\x20" or ack[3] != 0:
                    raise Refused(f"connection {i}: CONNACK {ack!r}")
                writers.append((r, w))
            except Exception as e:
                count_failure(failures, examples, e)
                if w is not None:
                    w.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in indices))
    return writers, failures, examples, time.perf_counter() - t0


def make_ctx(args):
    return tls_context(args.ca) if args.tls else None


async def hold_in_worker(indices, args, password, ready_q, close_ev):
    writers, failures, examples, secs = await open_all(indices, args, password, make_ctx(args))
    ready_q.put({"open": len(writers), "failures": failures, "examples": examples, "s": secs})
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, close_ev.wait, args.hold + args.total_timeout)
    for _, w in writers:
        w.close()


def worker(indices, args, password, ready_q, close_ev, parent):
    die_with_parent(parent)
    raise_nofile()
    try:
        asyncio.run(hold_in_worker(indices, args, password, ready_q, close_ev))
    except BaseException as e:
        ready_q.put({"error": repr(e)})


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("n", type=int)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--tls", action="store_true")
    a.add_argument("--ca")
    a.add_argument("--server-name", default="localhost")
    a.add_argument("--user", required=True)
    a.add_argument("--password-file", required=True)
    a.add_argument("--pid", type=int, required=True)
    a.add_argument("--keepalive", type=int, default=60, help="MQTT keepalive, s (max 65535)")
    a.add_argument("--hold", type=float, default=2, help="s to hold them all before measuring")
    a.add_argument("--concurrency", type=int, default=200, help="connections set up at once")
    a.add_argument("--spread", type=int, default=1024,
                   help="source addresses in 127.0.0.0/8 (0: the kernel's choice)")
    a.add_argument("--procs", type=int, default=0,
                   help="client processes (default: as few as RLIMIT_NOFILE allows)")
    a.add_argument("--timeout", type=float, default=20, help="per connection, s")
    a.add_argument("--total-timeout", type=float, default=900, help="whole setup, s")
    a.add_argument("--json", help="also write the figures as JSON here")
    args = a.parse_args()
    if args.tls and not args.ca:
        raise SystemExit("--tls needs --ca")
    password = open(args.password_file).read().strip()
    nofile = raise_nofile()
    per_proc = max(1, nofile - 64)
    procs = max(args.procs, math.ceil(args.n / per_proc), 1)
    procs = min(procs, args.n) if args.n > 0 else 1
    args.concurrency = max(1, args.concurrency // procs)

    before = status_kib(args.pid, "VmRSS")
    cpu0 = proc_cpu_s(args.pid)
    t0 = time.perf_counter()
    results, workers = [], []
    if procs == 1:
        loop = asyncio.new_event_loop()
        writers, failures, examples, secs = loop.run_until_complete(
            asyncio.wait_for(
                open_all(range(args.n), args, password, make_ctx(args)), args.total_timeout
            )
        )
        results.append({"open": len(writers), "failures": failures, "examples": examples, "s": secs})
    else:
        mp = multiprocessing.get_context("fork")
        ready_q, close_ev = mp.Queue(), mp.Event()
        workers = [
            mp.Process(
                target=worker,
                args=(range(k, args.n, procs), args, password, ready_q, close_ev, os.getpid()),
            )
            for k in range(procs)
        ]
        for p in workers:
            p.start()
        results = [ready_q.get(timeout=args.total_timeout + 30) for _ in workers]
        errs = [r["error"] for r in results if "error" in r]
        if errs:
            close_ev.set()
            raise SystemExit(f"a client process failed: {errs[0]}")
    setup_s = time.perf_counter() - t0
    time.sleep(args.hold)
    after = status_kib(args.pid, "VmRSS")
    hwm = status_kib(args.pid, "VmHWM")
    cpu1 = proc_cpu_s(args.pid)
    if procs == 1:
        for _, w in writers:
            w.close()
        loop.run_until_complete(asyncio.sleep(0.1))
        loop.close()
    else:
        close_ev.set()
        for p in workers:
            p.join(30)
            if p.is_alive():
                p.kill()

    opened = sum(r["open"] for r in results)
    failures, examples = merge_failures(results)
    per_conn = (after - before) * 1024 / opened if opened else None
    kind = "tls" if args.tls else "tcp"
    print(f"{kind} {opened} idle connections: RSS {before} -> {after} KiB, "
          + (f"{per_conn:.0f} B per connection" if per_conn is not None else "no connection")
          + (f" ({args.n - opened} failed: {failures})" if failures else ""))
    if args.json:
        out = {
            "tool": "bench/mqtt_idle.py",
            "command_line": sys.argv,
            "transport": kind,
            "asked": args.n,
            "connected": opened,
            "failed": args.n - opened,
            "failures_by_kind": failures_by_kind(failures, examples),
            "procs": procs,
            "source_addresses": min(args.spread, args.n) if args.spread else 1,
            "rlimit_nofile": nofile,
            "keepalive_s": args.keepalive,
            "setup_s": round(setup_s, 3),
            "connects_per_s": round(opened / setup_s, 1) if setup_s > 0 else None,
            "hold_s": args.hold,
            "server": {
                "pid": args.pid,
                "rss_before_kib": before,
                "rss_after_kib": after,
                "hwm_kib": hwm,
                "cpu_s": round(cpu1 - cpu0, 2),
            },
            "bytes_per_connection": None if per_conn is None else round(per_conn),
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0 if opened == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
