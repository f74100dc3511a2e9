"""MQTT 5 subscription options: retain handling 0/1/2, retain-as-published, no-local."""

import paho.mqtt.client as mqtt

from pahoutil import ID, PREFIX, Conn, report

T = f"{PREFIX}/rh/t"
res = {}
pub = Conn(f"{ID}-rh-pub", True)
pub.connect()
pub.publish(T, "kept", qos=1, retain=True)


def opts(rh=0, rap=False, nl=False):
    return mqtt.SubscribeOptions(qos=1, retainHandling=rh, retainAsPublished=rap, noLocal=nl)


def seen(conn, marker):
    pub.publish(T, marker, qos=1)
    got, ok = conn.until(marker)
    return [(m["payload"], m["retain"]) for m in got] + ([] if ok else [("<timeout>", False)])


c1 = Conn(f"{ID}-rh-c1", True)
c1.connect()
res["c1_rh0"] = (c1.subscribe(T, options=opts(0)), seen(c1, "m1"))
res["c1_rh1_existing"] = (c1.subscribe(T, options=opts(1)), seen(c1, "m2"))
c2 = Conn(f"{ID}-rh-c2", True)
c2.connect()
res["c2_rh1_new"] = (c2.subscribe(T, options=opts(1)), seen(c2, "m3"))
c3 = Conn(f"{ID}-rh-c3", True)
c3.connect()
res["c3_rh2"] = (c3.subscribe(T, options=opts(2)), seen(c3, "m4"))
res["c1_rh0_again"] = (c1.subscribe(T, options=opts(0)), seen(c1, "m5"))

# Retain as published: a live retained publish keeps its flag only for c4.
c4 = Conn(f"{ID}-rh-c4", True)
c4.connect()
res["c4_rap_suback"] = c4.subscribe(T, options=opts(2, rap=True))
pub.publish(T, "live", qos=1, retain=True)
res["c4_rap"] = [(m["payload"], m["retain"]) for m in c4.receive(1)]
res["c3_norap"] = [(m["payload"], m["retain"]) for m in c3.receive(1)]

# No local: nl does not get its own message back, other does.
T2 = f"{PREFIX}/nl/t"
nl = Conn(f"{ID}-nl", True)
nl.connect()
res["nl_suback"] = nl.subscribe(T2, options=opts(nl=True))
other = Conn(f"{ID}-nl-other", True)
other.connect()
other.subscribe(T2, options=opts())
nl.publish(T2, "own", qos=1)
pub.publish(T2, "theirs", qos=1)
got, _ = nl.until("theirs")
res["nl_got"] = [m["payload"] for m in got]
got, _ = other.until("theirs")
res["other_got"] = [m["payload"] for m in got]
# Without no-local the publisher does get its own message.
T3 = f"{PREFIX}/nl/self"
nl.subscribe(T3, options=opts())
nl.publish(T3, "self", qos=1)
res["self_got"] = [m["payload"] for m in nl.receive(1)]
report(res)
