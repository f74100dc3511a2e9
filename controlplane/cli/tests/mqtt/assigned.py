"""An empty client id: MQTT 5 gets an Assigned Client Identifier; 3.1.1 with clean session is
accepted too. Both can then subscribe and receive."""

from pahoutil import PREFIX, Conn, report

res = {}
for v in ("5", "3"):
    c = Conn("", v == "5")
    res[f"v{v}"] = c.connect(clean=True)
    t = f"{PREFIX}/assigned/v{v}"
    res[f"v{v}_suback"] = c.subscribe(t, 1)
    c.publish(t, "hello", qos=1)
    res[f"v{v}_got"] = [m["payload"] for m in c.receive(1)]
    c.disconnect()
report(res)
