"""MQTT over WebSocket through the HTTPS front's /mqtt, with paho-mqtt's websocket transport
(what a browser client does: wss://, subprotocol "mqtt", masked frames).

argv: port ca_file subscriber_user subscriber_password publisher_user publisher_password prefix

The subscriber subscribes to <prefix>/#; the publisher publishes QoS 0 and QoS 1 messages to
<prefix>/ok. A publisher without write access (the subscriber itself, read-only) publishes to
<prefix>/denied: the ACL drops it. Prints one JSON object with what happened.
"""

import json
import ssl
import sys
import threading
import time

import paho.mqtt.client as mqtt

port, ca, sub_user, sub_pw, pub_user, pub_pw, prefix = sys.argv[1:8]


def client(cid, user, pw):
    c = mqtt.Client(client_id=cid, clean_session=True, transport="websockets")
    c.ws_set_options(path="/mqtt")
    c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
    c.username_pw_set(user, pw)
    return c


res = {"received": [], "sub_connack": None, "pub_connack": None, "bad_connack": None}
got = threading.Event()
subscribed = threading.Event()
connected = {}


def on_connect(name):
    def cb(_c, _u, _f, rc):
        res[f"{name}_connack"] = rc
        connected[name] = threading.Event() if name not in connected else connected[name]
        connected[name].set()

    return cb


def on_message(_c, _u, msg):
    res["received"].append({"topic": msg.topic, "payload": msg.payload.decode(), "qos": msg.qos})
    if len(res["received"]) >= 2:
        got.set()


for name in ("sub", "pub", "bad"):
    connected[name] = threading.Event()

sub = client(f"{prefix.replace('/', '-')}-ws-sub", sub_user, sub_pw)
sub.on_connect = on_connect("sub")
sub.on_message = on_message
sub.on_subscribe = lambda *_: subscribed.set()
sub.connect("127.0.0.1", int(port), keepalive=30)
sub.loop_start()
connected["sub"].wait(10)
sub.subscribe(f"{prefix}/#", qos=1)
subscribed.wait(10)

pub = client(f"{prefix.replace('/', '-')}-ws-pub", pub_user, pub_pw)
pub.on_connect = on_connect("pub")
pub.connect("127.0.0.1", int(port), keepalive=30)
pub.loop_start()
connected["pub"].wait(10)
# The read-only subscriber tries to write: dropped by the ACL (MQTT 3.1.1 has no negative ack).
sub.publish(f"{prefix}/denied", "nope", qos=1).wait_for_publish(5)
pub.publish(f"{prefix}/ok", "qos0", qos=0)
pub.publish(f"{prefix}/ok", "qos1", qos=1).wait_for_publish(5)
got.wait(10)
time.sleep(0.5)

# Wrong password: refused with CONNACK 5 (not authorised) / 4 (bad credentials).
bad = client(f"{prefix.replace('/', '-')}-ws-bad", pub_user, "wrong-" + pub_pw)
bad.on_connect = on_connect("bad")
try:
    bad.connect("127.0.0.1", int(port), keepalive=30)
    bad.loop_start()
    connected["bad"].wait(10)
    bad.loop_stop()
except Exception as e:  # noqa: BLE001 - reported, the test decides
    res["bad_error"] = str(e)

for c in (sub, pub):
    c.disconnect()
    c.loop_stop()
print(json.dumps(res, sort_keys=True))
