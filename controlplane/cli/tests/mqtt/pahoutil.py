"""A small synchronous wrapper around paho-mqtt (1.6 API) for the MQTT interoperability tests.

Every scenario script reads where the broker is from the environment, set by tests/mqtt.rs:

    MQTT_HOST, MQTT_PORT, MQTT_CA         the TLS listener and the CA that signed its cert
    MQTT_USER, MQTT_PASS                  an account allowed to read and write MQTT_PREFIX/#
    MQTT_PREFIX                           a topic prefix of the test's own (under scenescape/)
    MQTT_ID                               a client id prefix of the test's own

and prints one JSON object on its last line of stdout, which the Rust test asserts on. Nothing
here asserts: the scripts report what they saw, the Rust side decides.
"""

import json
import os
import queue
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST = os.environ.get("MQTT_HOST", "127.0.0.1")
PORT = int(os.environ["MQTT_PORT"])
CA = os.environ["MQTT_CA"]
USER = os.environ["MQTT_USER"]
PASS = os.environ["MQTT_PASS"]
PREFIX = os.environ["MQTT_PREFIX"]
ID = os.environ["MQTT_ID"]
# The harness runs the data plane on two cores; a client id's home core is as broker.rs's
# home_core computes it (FNV-1a, finalised, scaled to the cores).
CORES = int(os.environ.get("MQTT_CORES", "2"))

TIMEOUT = 5.0

# paho 1.6.1 reads a DISCONNECT's reason code only when its remaining length is over 2, so the
# short forms (reason alone, or reason and an empty property length) reach on_disconnect as
# None. Keep the raw reason byte of every DISCONNECT the server sends.
_handle_disconnect = mqtt.Client._handle_disconnect


def _keep_disconnect_reason(self):
    packet = self._in_packet["packet"]
    self._server_disconnect = packet[0] if len(packet) >= 1 else 0
    return _handle_disconnect(self)


mqtt.Client._handle_disconnect = _keep_disconnect_reason


def home_core(client_id):
    """The core that owns a client id's session, as the broker computes it."""
    mask = 0xFFFFFFFFFFFFFFFF
    h = 0xCBF29CE484222325
    for b in client_id.encode():
        h ^= b
        h = (h * 0x100000001B3) & mask
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & mask
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    h ^= h >> 33
    return (h * CORES) >> 64


def id_on(base, core):
    """A client id starting with `base` whose home is `core` (to cover cross-core paths)."""
    for i in range(1000):
        cid = f"{base}-{i}"
        if home_core(cid) == core % CORES:
            return cid
    raise RuntimeError("no id found")


def rc_value(rc):
    """A reason code (paho's ReasonCodes object in v5, an int in v3) as an int."""
    if rc is None:
        return None
    return getattr(rc, "value", rc)


def props(kind, **kw):
    """MQTT 5 properties of packet type `kind` ("CONNECT", "PUBLISH", "SUBSCRIBE", ...)."""
    p = Properties(getattr(PacketTypes, kind))
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def props_dict(p):
    """The properties paho decoded, as a JSON-friendly dict."""
    if p is None:
        return {}
    out = {}
    for k, v in p.json().items():
        out[k] = v
    return out


class Conn:
    """One client connection driven by a thread of our own (no automatic reconnect)."""

    def __init__(self, client_id, v5=True, user=None, password=None):
        self.v5 = v5
        kw = {"client_id": client_id, "protocol": mqtt.MQTTv5 if v5 else mqtt.MQTTv311}
        if hasattr(mqtt, "CallbackAPIVersion"):  # paho 2.x keeps the 1.6 callbacks this way
            kw["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION1
        self._kw = kw
        self.user = user if user is not None else USER
        self.password = password if password is not None else PASS
        self.messages = queue.Queue()
        self.events = queue.Queue()
        self.connack = None
        self.disconnect_rc = None
        self.disconnected = threading.Event()
        self.c = None

    def _make(self, clean):
        kw = dict(self._kw)
        if not self.v5:
            kw["clean_session"] = clean
        c = mqtt.Client(**kw)
        c.tls_set(ca_certs=CA)
        c.username_pw_set(self.user, self.password)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_unsubscribe = self._on_unsubscribe
        c.on_publish = self._on_publish
        c.on_disconnect = self._on_disconnect
        return c

    # paho 1.6 callbacks: v3 and v5 differ in arity.
    def _on_connect(self, _c, _u, flags, rc, properties=None):
        self.connack = {
            "rc": rc_value(rc),
            "session_present": bool(flags.get("session present")),
            "props": props_dict(properties),
        }
        self.events.put(("connack", self.connack))

    def _on_message(self, _c, _u, msg):
        self.messages.put(
            {
                "topic": msg.topic,
                "payload": msg.payload.decode("utf-8", "replace"),
                "qos": msg.qos,
                "retain": bool(msg.retain),
                "props": props_dict(getattr(msg, "properties", None)) if self.v5 else {},
            }
        )

    def _on_subscribe(self, _c, _u, mid, granted, properties=None):
        self.events.put(("suback", mid, [rc_value(g) for g in granted]))

    def _on_unsubscribe(self, _c, _u, mid, *rest):
        self.events.put(("unsuback", mid))

    def _on_publish(self, _c, _u, mid):
        self.events.put(("puback", mid))

    def _on_disconnect(self, c, _u, rc, properties=None):
        # The server's DISCONNECT reason (MQTT 5) if it sent one, else paho's code (7: the
        # connection was lost).
        if self.disconnect_rc is None:
            server = getattr(c, "_server_disconnect", None)
            self.disconnect_rc = server if server is not None else rc_value(rc)
        self.disconnected.set()

    def connect(self, clean=True, properties=None, will=None):
        """Connects; returns the CONNACK as a dict ({"rc": ..., "session_present": ...})."""
        self.c = self._make(clean)
        if will is not None:
            self.c.will_set(**will)
        self.disconnected.clear()
        self.connack = None
        kw = {"keepalive": 30}
        if self.v5:
            kw["clean_start"] = clean
            if properties is not None:
                kw["properties"] = properties
        # A server-side close must not be followed by paho's automatic reconnect.
        self.c.reconnect_delay_set(min_delay=60, max_delay=60)
        self.c.connect(HOST, PORT, **kw)
        self.c.loop_start()
        ev = self.wait_event("connack")
        return ev[1] if ev else {"rc": None, "disconnect_rc": self.disconnect_rc}

    def wait_event(self, kind, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                ev = self.events.get(timeout=min(left, 0.1))
            except queue.Empty:
                if self.disconnected.is_set() and kind != "disconnect":
                    # Drain what arrived before the close.
                    try:
                        ev = self.events.get_nowait()
                    except queue.Empty:
                        return None
                else:
                    continue
            if ev[0] == kind:
                return ev

    def subscribe(self, topic, qos=1, options=None, properties=None):
        """Subscribes and waits for the SUBACK; returns its reason codes (None on timeout)."""
        if self.v5:
            opts = options or mqtt.SubscribeOptions(qos=qos)
            rc, mid = self.c.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        ev = self.wait_event("suback")
        return ev[2] if ev else None

    def publish(self, topic, payload, qos=1, retain=False, properties=None, wait=True):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if wait and qos > 0:
            info.wait_for_publish(timeout=TIMEOUT)
            return info.is_published()
        return True

    def receive(self, n, timeout=TIMEOUT):
        """Up to `n` messages, waiting at most `timeout` seconds in all."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return out

    def until(self, payload, timeout=TIMEOUT):
        """Every message up to and including the first whose payload is `payload` (a marker)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out, False
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                return out, False
            out.append(m)
            if m["payload"] == payload:
                return out, True

    def wait_closed(self, timeout=TIMEOUT):
        return self.disconnected.wait(timeout)

    def disconnect(self, properties=None):
        if self.c is None:
            return
        if self.v5 and properties is not None:
            self.c.disconnect(properties=properties)
        else:
            self.c.disconnect()
        self.disconnected.wait(TIMEOUT)
        self.stop()

    def stop(self):
        if self.c is not None:
            self.c.loop_stop()


def report(result):
    """The scenario's result, as the last line of stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # Daemon threads and sockets go with the process.
    os._exit(0)
