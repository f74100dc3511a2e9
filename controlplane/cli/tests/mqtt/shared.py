"""Shared subscriptions: two members of `$share/grp/T` on different cores split the messages,
each message delivered exactly once across the group; a plain subscriber of T gets them all;
after one member unsubscribes, the other gets everything.

argv: VERSION (3 or 5).
"""

import sys
import time

from pahoutil import ID, PREFIX, Conn, id_on, report

v = sys.argv[1]
v5 = v == "5"
topic = f"{PREFIX}/shared/v{v}"
share = f"$share/grp/{topic}"
N = 40
M = 10

members = [Conn(id_on(f"{ID}-sh{v}-a", 0), v5), Conn(id_on(f"{ID}-sh{v}-b", 1), v5)]
res = {"connack": [], "suback": []}
for m in members:
    res["connack"].append(m.connect())
    res["suback"].append(m.subscribe(share, 1))
plain = Conn(id_on(f"{ID}-sh{v}-plain", 0), v5)
plain.connect()
res["suback_plain"] = plain.subscribe(topic, 1)

pub = Conn(id_on(f"{ID}-sh{v}-pub", 1), v5)
pub.connect()
for i in range(N):
    pub.publish(topic, f"m{i}", qos=1)


def collect(conns, total, timeout=5.0, grace=0.5):
    got = [[] for _ in conns]
    deadline = time.monotonic() + timeout
    done_at = None
    while time.monotonic() < deadline:
        moved = False
        for i, c in enumerate(conns):
            while not c.messages.empty():
                got[i].append(c.messages.get_nowait()["payload"])
                moved = True
        n = sum(len(g) for g in got)
        if n >= total and done_at is None:
            done_at = time.monotonic() + grace  # keep listening for duplicates
        if done_at is not None and time.monotonic() >= done_at:
            break
        if not moved:
            time.sleep(0.02)
    return got


res["members"] = collect(members, N)
res["plain"] = [m["payload"] for m in plain.receive(N)]

# One member leaves: the other gets every message.
members[0].c.unsubscribe(share)
members[0].wait_event("unsuback")
for i in range(M):
    pub.publish(topic, f"n{i}", qos=1)
res["after_leave"] = collect(members, M)
report(res)
