"""MQTT 5 wills: delayed will after a dropped connection, DISCONNECT 0x04 (with will) sends
it, a normal DISCONNECT discards it."""

import socket
import time

from pahoutil import ID, PREFIX, Conn, props, report

W = f"{PREFIX}/will5"
res = {}
watch = Conn(f"{ID}-will5-watch", True)
watch.connect()
res["suback"] = watch.subscribe(f"{W}/#", 1)


def will(name, delay=None):
    p = props("WILLMESSAGE", WillDelayInterval=delay) if delay is not None else None
    return {"topic": f"{W}/{name}", "payload": f"will-{name}", "qos": 1, "properties": p}


# Dropped without DISCONNECT, will delay 1 s, session expiry 10 s: sent about 1 s later.
dropped = Conn(f"{ID}-will5-dropped", True)
dropped.connect(will=will("dropped", 1), properties=props("CONNECT", SessionExpiryInterval=10))
t0 = time.monotonic()
dropped.c.socket().shutdown(socket.SHUT_RDWR)
got = watch.receive(1, timeout=5)
res["dropped"] = [m["payload"] for m in got]
res["dropped_after"] = time.monotonic() - t0

# DISCONNECT with reason 0x04: the will is sent.
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.reasoncodes import ReasonCodes  # noqa: E402

withwill = Conn(f"{ID}-will5-0x04", True)
withwill.connect(will=will("with"))
withwill.c.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT, "Disconnect with will message"))
res["with"] = [m["payload"] for m in watch.receive(1)]
withwill.stop()

# Normal DISCONNECT: no will.
normal = Conn(f"{ID}-will5-normal", True)
normal.connect(will=will("normal"))
normal.disconnect()
marker = Conn(f"{ID}-will5-marker", True)
marker.connect()
marker.publish(f"{W}/marker", "marker", qos=1)
got, _ = watch.until("marker")
res["normal"] = [m["payload"] for m in got]
report(res)
