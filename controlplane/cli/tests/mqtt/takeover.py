"""Session takeover: a second connection with the same client id closes the first (MQTT 5:
DISCONNECT 0x8E) and, without clean start, keeps its session (subscriptions carry over).

argv: VERSION (3 or 5).
"""

import sys

from pahoutil import ID, PREFIX, Conn, props, report

v = sys.argv[1]
v5 = v == "5"
cid = f"{ID}-take-v{v}"
T = f"{PREFIX}/take/v{v}"
res = {}
keep = props("CONNECT", SessionExpiryInterval=60) if v5 else None
first = Conn(cid, v5)
res["first"] = first.connect(clean=v5, properties=keep)
res["suback"] = first.subscribe(T, 1)
second = Conn(cid, v5)
res["second"] = second.connect(clean=False, properties=keep)
res["first_closed"] = first.wait_closed()
res["first_rc"] = first.disconnect_rc
pub = Conn(f"{cid}-pub", v5)
pub.connect()
pub.publish(T, "after-takeover", qos=1)
res["second_got"] = [m["payload"] for m in second.receive(1)]
res["first_got"] = [m["payload"] for m in first.receive(1, timeout=0.3)]
second.disconnect()
report(res)
