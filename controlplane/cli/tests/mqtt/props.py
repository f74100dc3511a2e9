"""MQTT 5 properties round trip: user properties (order and duplicates kept), response topic,
correlation data, content type, payload format, message expiry (counted down, and an expired
retained message is not delivered), subscription identifier."""

import time

from pahoutil import ID, PREFIX, Conn, props, report

topic = f"{PREFIX}/props/t"
res = {}
sub = Conn(f"{ID}-props-sub", True)
sub.connect()
res["suback"] = sub.subscribe(
    topic, 1, properties=props("SUBSCRIBE", SubscriptionIdentifier=7)
)
pub = Conn(f"{ID}-props-pub", True)
pub.connect()
pp = props(
    "PUBLISH",
    UserProperty=[("a", "1"), ("a", "2"), ("b", "x")],
    ResponseTopic=f"{PREFIX}/props/reply",
    CorrelationData=b"\x00\x01corr",
    ContentType="application/json",
    PayloadFormatIndicator=1,
    MessageExpiryInterval=60,
)
pub.publish(topic, '{"x": 1}', qos=1, properties=pp)
res["received"] = sub.receive(1)

# Message expiry on retained messages: the short one is gone 2 s later, the long one stays.
short = f"{PREFIX}/exp/short"
long_ = f"{PREFIX}/exp/long"
pub.publish(short, "short", qos=1, retain=True, properties=props("PUBLISH", MessageExpiryInterval=1))
pub.publish(long_, "long", qos=1, retain=True, properties=props("PUBLISH", MessageExpiryInterval=300))
time.sleep(2.2)
late = Conn(f"{ID}-props-late", True)
late.connect()
res["late_suback"] = late.subscribe(f"{PREFIX}/exp/#", 1)
pub.publish(f"{PREFIX}/exp/marker", "marker", qos=1)
res["late"], res["late_marker"] = late.until("marker")
report(res)
