#!/usr/bin/env python3
"""Resident memory per idle MQTT connection of a running broker.

Opens N connections to 127.0.0.1:PORT (TLS verified with --ca, or plain TCP), each sending a
CONNECT (MQTT 3.1.1, keepalive 60 s) as USER with the password read from --password-file and
waiting for its CONNACK, then keeps them all open for 2 s and prints how much the resident
memory (VmRSS) of process --pid grew, per connection. Loopback only.

Example, against `rampart up` (give the `rampart dataplane` child's pid):
  bench/mqtt_idle.py --port 8883 --tls --ca var/secrets/ca/ca.pem --user scenectrl \
      --password-file pw.txt --pid $(pgrep -f 'rampart dataplane') 2000
"""

import argparse
import socket
import ssl
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise SystemExit(f"no process {pid}")


def connect_packet(client_id, user, password):
    def s(b):
        return len(b).to_bytes(2, "big") + b
    body = s(b"MQTT") + bytes([4, 0xC2]) + (60).to_bytes(2, "big")
    body += s(client_id.encode()) + s(user.encode()) + s(password.encode())
    n, enc = len(body), b""
    while True:
        d, n = n % 128, n // 128
        enc += bytes([d | (0x80 if n else 0)])
        if not n:
            break
    return b"\x10" + enc + body


a = argparse.ArgumentParser()
a.add_argument("n", type=int)
a.add_argument("--port", type=int, required=True)
a.add_argument("--tls", action="store_true")
a.add_argument("--ca")
a.add_argument("--user", required=True)
a.add_argument("--password-file", required=True)
a.add_argument("--pid", type=int, required=True)
args = a.parse_args()
password = open(args.password_file).read().strip()
ctx = None
if args.tls:
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.check_hostname = False
before = rss_kib(args.pid)
conns = []
for i in range(args.n):
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    if ctx:
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    sock.sendall(connect_packet(f"idle-{i}", args.user, password))
    ack = sock.recv(4)
    if ack[:1] != b"\x20" or len(ack) < 4 or ack[3] != 0:
        raise SystemExit(f"connection {i}: CONNACK {ack!r}")
    conns.append(sock)
time.sleep(2)
after = rss_kib(args.pid)
kind = "tls" if args.tls else "tcp"
print(f"{kind} {args.n} idle connections: RSS {before} -> {after} KiB, "
      f"{(after - before) * 1024 / args.n:.0f} B per connection")
