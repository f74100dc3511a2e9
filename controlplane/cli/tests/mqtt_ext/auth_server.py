"""A mosquitto-go-auth HTTP auth server as SceneScape runs one (form parameters, answer by
status), for the broker's external-auth tests. Over TLS with the certificate given.

Usage: auth_server.py PORT CERT KEY LOG
Users: `ext-cam` / `pw`. ACL: `ext/...` may be written (acc 2) and subscribed (acc 4); nothing
else. Each request is appended to LOG as one JSON line (the password is never written).
"""

import json
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, CERT, KEY, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        field = lambda k: form.get(k, [""])[0]
        if self.path == "/api/v1/auth":
            ok = field("username") == "ext-cam" and field("password") == "pw"
        elif self.path == "/api/v1/aclcheck":
            ok = field("username") == "ext-cam" and field("topic").startswith("ext/") and field("acc") in ("2", "4")
        else:
            ok = False
        entry = {"path": self.path, "username": field("username"), "clientid": field("clientid"),
                 "topic": field("topic"), "acc": field("acc"), "ok": ok,
                 "type": self.headers.get("Content-Type", "")}
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
