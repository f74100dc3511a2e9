"""MQTT 5 topic aliases from the client: set, use, remap; an unknown alias (0x82) and one above
the server's Topic Alias Maximum (0x94) end the connection with that DISCONNECT reason."""

from pahoutil import ID, PREFIX, Conn, props, report

A = f"{PREFIX}/alias/a"
B = f"{PREFIX}/alias/b"
res = {}
sub = Conn(f"{ID}-alias-sub", True)
sub.connect()
res["suback"] = sub.subscribe(f"{PREFIX}/alias/#", 1)
pub = Conn(f"{ID}-alias-pub", True)
res["connack"] = pub.connect()
steps = [(A, 1, "a1"), ("", 1, "a2"), (B, 2, "b3"), (B, 1, "b4"), ("", 1, "b5"), ("", 2, "b6")]
for topic, alias, payload in steps:
    pub.publish(topic, payload, qos=1, properties=props("PUBLISH", TopicAlias=alias))
res["received"] = [
    {"topic": m["topic"], "payload": m["payload"], "alias": m["props"].get("TopicAlias")}
    for m in sub.receive(len(steps))
]

unknown = Conn(f"{ID}-alias-unknown", True)
unknown.connect()
unknown.publish("", "x", qos=0, properties=props("PUBLISH", TopicAlias=5))
res["unknown_closed"] = unknown.wait_closed()
res["unknown_rc"] = unknown.disconnect_rc

maximum = res["connack"]["props"].get("TopicAliasMaximum", 0)
big = Conn(f"{ID}-alias-big", True)
big.connect()
big.publish(A, "x", qos=0, properties=props("PUBLISH", TopicAlias=maximum + 1))
res["big_closed"] = big.wait_closed()
res["big_rc"] = big.disconnect_rc
# Nothing of those two was delivered.
res["after"] = [m["payload"] for m in sub.receive(1, timeout=0.5)]
report(res)
