"""More MQTT 5 behaviour: overlapping subscriptions (one delivery, every subscription id),
UNSUBACK reason codes, the client's Maximum Packet Size, a large payload intact, a payload over
the server's maximum (DISCONNECT 0x95), session expiry, a retained will."""

import hashlib
import os
import time

import paho.mqtt.client as mqtt

from pahoutil import ID, PREFIX, Conn, props, report

res = {}
T = f"{PREFIX}/x"

# Overlapping subscriptions: delivered once, with both subscription identifiers.
s = Conn(f"{ID}-overlap", True)
res["connack"] = s.connect()
s.subscribe(f"{T}/#", 0, properties=props("SUBSCRIBE", SubscriptionIdentifier=1))
s.subscribe(f"{T}/+", 1, properties=props("SUBSCRIBE", SubscriptionIdentifier=2))
p = Conn(f"{ID}-pub", True)
p.connect()
p.publish(f"{T}/o", "overlap", qos=1)
got = s.receive(2, timeout=1.5)
res["overlap"] = [
    {"payload": m["payload"], "qos": m["qos"], "ids": sorted(m["props"].get("SubscriptionIdentifier", []))}
    for m in got
]

# UNSUBSCRIBE: 0x00 for a subscription that existed, 0x11 for one that did not; nothing after.
rc, mid = s.c.unsubscribe([f"{T}/#", f"{T}/+", f"{T}/none"])
ev = s.wait_event("unsuback")
res["unsuback"] = ev is not None
p.publish(f"{T}/o", "after-unsubscribe", qos=1)
res["after_unsubscribe"] = [m["payload"] for m in s.receive(1, timeout=0.7)]
s.disconnect()

# The client's Maximum Packet Size: a larger message is not sent to it, a smaller one is.
small = Conn(f"{ID}-maxpkt", True)
small.connect(properties=props("CONNECT", MaximumPacketSize=200))
small.subscribe(f"{T}/mp", 1)
p.publish(f"{T}/mp", "x" * 500, qos=1)
p.publish(f"{T}/mp", "small", qos=1)
res["max_packet"] = [m["payload"] for m in small.receive(2, timeout=1.5)]
small.disconnect()

# A large payload arrives intact (over TLS, both QoS 0 and 1); the policy's default
# max_message_bytes is 256 KiB.
big = os.urandom(250 * 1024)
r = Conn(f"{ID}-big", True)
r.connect()
r.subscribe(f"{T}/big", 1)
r.c.on_message = lambda _c, _u, m: r.messages.put(
    {"sha": hashlib.sha256(m.payload).hexdigest(), "qos": m.qos}
)
p.publish(f"{T}/big", big, qos=1)
p.publish(f"{T}/big", big, qos=0)
res["big_sent"] = hashlib.sha256(big).hexdigest()
res["big_got"] = []
for m in r.receive(2, timeout=10):
    res["big_got"].append(m)
r.disconnect()

# Over the server's Maximum Packet Size: DISCONNECT 0x95 (MQTT 5 §3.1.2.11.4 / §4.13).
# (Keep alive 0 is tested with raw bytes: paho 1.6 then makes the TLS socket non-blocking.)
maximum = res["connack"]["props"].get("MaximumPacketSize", 1048576)
huge = Conn(f"{ID}-huge", True)
huge.connect()
huge.publish(f"{T}/huge", b"h" * (maximum + 1), qos=0, wait=False)
res["huge_closed"] = huge.wait_closed(10)
res["huge_rc"] = huge.disconnect_rc
huge.stop()

# Session expiry of 1 s: gone 2.5 s after the disconnect.
e = Conn(f"{ID}-expiry", True)
e.connect(clean=True, properties=props("CONNECT", SessionExpiryInterval=1))
e.subscribe(f"{T}/exp", 1)
e.disconnect()
time.sleep(2.5)
e2 = Conn(f"{ID}-expiry", True)
res["expired"] = e2.connect(clean=False, properties=props("CONNECT", SessionExpiryInterval=1))
e2.disconnect()
# ... and kept within it.
e3 = Conn(f"{ID}-expiry2", True)
e3.connect(clean=True, properties=props("CONNECT", SessionExpiryInterval=30))
e3.disconnect()
e4 = Conn(f"{ID}-expiry2", True)
res["kept"] = e4.connect(clean=False, properties=props("CONNECT", SessionExpiryInterval=30))
e4.disconnect()

# A retained will: a later subscriber gets it with the retain flag.
w = Conn(f"{ID}-rwill", True)
w.connect(will={"topic": f"{T}/rwill", "payload": "rwill", "qos": 1, "retain": True})
import socket  # noqa: E402

w.c.socket().shutdown(socket.SHUT_RDWR)
w.wait_closed()
w.stop()
time.sleep(0.3)
late = Conn(f"{ID}-rwill-late", True)
late.connect()
late.subscribe(f"{T}/rwill", 1)
res["retained_will"] = [(m["payload"], m["retain"]) for m in late.receive(1, timeout=3)]
report(res)
