"""Ordering and completeness under load: one publisher, subscribers on both cores; QoS 1
messages arrive all, once, in order (MQTT 5 §4.6); QoS 0 in order (drops allowed).

argv: VERSION (3 or 5) N."""

import sys
import time

from pahoutil import ID, PREFIX, Conn, id_on, report

v = sys.argv[1]
v5 = v == "5"
n = int(sys.argv[2])
T = f"{PREFIX}/order/v{v}"
subs = [Conn(id_on(f"{ID}-ord{v}-s", core), v5) for core in (0, 1)]
for s in subs:
    s.connect()
    s.subscribe(f"{T}/#", 1)
p = Conn(id_on(f"{ID}-ord{v}-p", 0), v5)
p.connect()
infos = []
for i in range(n):
    infos.append(p.c.publish(f"{T}/q1", f"{i}", qos=1))
    p.c.publish(f"{T}/q0", f"{i}", qos=0)
deadline = time.monotonic() + 30
for info in infos:
    info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
res = {"acked": sum(1 for i in infos if i.is_published()), "subs": []}
for s in subs:
    got = {"q1": [], "q0": []}
    end = time.monotonic() + 20
    while len(got["q1"]) < n and time.monotonic() < end:
        for m in s.receive(2 * n, timeout=0.5):
            got[m["topic"].rsplit("/", 1)[1]].append(int(m["payload"]))
    for m in s.receive(2 * n, timeout=0.3):
        got[m["topic"].rsplit("/", 1)[1]].append(int(m["payload"]))
    q1, q0 = got["q1"], got["q0"]
    res["subs"].append({
        "q1_count": len(q1),
        "q1_in_order": q1 == sorted(q1),
        "q1_unique": len(set(q1)) == len(q1),
        "q1_missing": sorted(set(range(n)) - set(q1))[:10],
        "q0_count": len(q0),
        "q0_in_order": q0 == sorted(q0),
    })
report(res)
