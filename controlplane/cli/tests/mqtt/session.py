"""Persistent session across reconnect: subscribe QoS 1, disconnect, publish while offline,
reconnect without clean start -> session present and the queued messages arrive.

argv: VERSION (3 or 5) PHASE (all | subscribe | publish | receive). The phases let the Rust test
restart the broker between them.
"""

import sys

from pahoutil import ID, PREFIX, Conn, props, report

v = sys.argv[1]
v5 = v == "5"
phase = sys.argv[2]
cid = f"{ID}-sess-v{v}"
topic = f"{PREFIX}/sess/v{v}"
N = 3


def persistent():
    # MQTT 5: the session outlives the connection by 300 s; 3.1.1: clean session 0.
    return props("CONNECT", SessionExpiryInterval=300) if v5 else None


res = {}
if phase in ("all", "subscribe"):
    a = Conn(cid, v5)
    res["first"] = a.connect(clean=False, properties=persistent())
    res["suback"] = a.subscribe(topic, 1)
    a.disconnect()

if phase in ("all", "publish"):
    p = Conn(f"{cid}-pub", v5)
    res["pub_connack"] = p.connect()
    res["published"] = [p.publish(topic, f"offline-{i}", qos=1) for i in range(N)]
    p.disconnect()

if phase in ("all", "receive"):
    a = Conn(cid, v5)
    res["resumed"] = a.connect(clean=False, properties=persistent())
    res["received"] = a.receive(N)
    # Nothing more (no duplicates).
    res["extra"] = a.receive(1, timeout=0.5)
    a.disconnect()
    # A clean start discards the session.
    b = Conn(cid, v5)
    res["clean"] = b.connect(clean=True)
    b.disconnect()

report(res)
