"""What bench/mqtt_idle.py and bench/mqtt_storm.py share: their MQTT clients' pieces (CONNECT,
reading a packet, source addresses over 127.0.0.0/8, TLS context, failures by kind), the client
processes' setup (RLIMIT_NOFILE, dying with the parent) and the broker's memory and CPU time
from /proc. Not a script: the two import it from their own folder.
"""

import asyncio
import errno
import os
import resource
import ssl

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    """VmRSS and VmHWM of a process, KiB (FileNotFoundError if there is no such process)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def status_kib(pid, key="VmRSS"):
    """VmRSS or VmHWM of a process, KiB; exits the program if the process (or the field) is
    gone."""
    try:
        value = proc_status(pid).get(key)
    except FileNotFoundError:
        value = None
    if value is None:
        raise SystemExit(f"no process {pid}")
    return value


def proc_cpu_s(pid):
    """utime + stime of a process, seconds (fields 14 and 15 of proc(5), after `(comm)`)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def varint(n):
    """MQTT's remaining length."""
    out = b""
    while True:
        d, n = n % 128, n // 128
        out += bytes([d | (0x80 if n else 0)])
        if not n:
            return out


def connect_packet(client_id, user, password, version=4, keepalive=60):
    """CONNECT with a user name and password, clean session; MQTT 3.1.1 (4) or 5."""

    def s(b):
        return len(b).to_bytes(2, "big") + b

    # Flags: user name, password, clean session (0xC2).
    body = s(b"MQTT") + bytes([version, 0xC2]) + keepalive.to_bytes(2, "big")
    if version == 5:
        body += b"\x00"  # no properties
    body += s(client_id.encode()) + s(user.encode()) + s(password.encode())
    return b"\x10" + varint(len(body)) + body


async def read_packet(reader):
    """One MQTT packet: (first byte, body)."""
    first = (await reader.readexactly(1))[0]
    length, mult = 0, 1
    for _ in range(4):
        b = (await reader.readexactly(1))[0]
        length += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first, await reader.readexactly(length)


def source_address(i, spread):
    """Connection i's source address: 127.1.0.1 upwards, `spread` addresses in turn."""
    k = i % spread
    return f"127.{1 + k // 65024}.{(k // 254) % 256}.{1 + k % 254}"


def tls_context(ca, check_hostname=False, tls12_only=False):
    """A client context that verifies the broker's certificate against `ca`, TLS 1.2 at least
    (only, with tls12_only)."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = check_hostname
    return ctx


class Refused(Exception):
    """No accepting CONNACK. Counted by `classify` as connack_0xNN with the return code `code`,
    else as connack_refused."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.kind = "connack_refused" if code is None else f"connack_{code:#04x}"


def classify(e):
    """A failed connection's kind, as counted in the output."""
    if isinstance(e, Refused):
        return e.kind
    if isinstance(e, asyncio.TimeoutError):
        return "timeout"
    if isinstance(e, ssl.SSLError):
        return "tls_error"
    if isinstance(e, asyncio.IncompleteReadError):
        return "closed_before_connack"
    if isinstance(e, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(e, ConnectionResetError):
        return "connection_reset"
    if isinstance(e, OSError) and e.errno:
        return "os_" + errno.errorcode.get(e.errno, str(e.errno)).lower()
    return type(e).__name__


def count_failure(failures, examples, e):
    """Counts `e` in failures (kind -> count) and keeps the first example of its kind."""
    kind = classify(e)
    failures[kind] = failures.get(kind, 0) + 1
    examples.setdefault(kind, str(e)[:200] or type(e).__name__)


def merge_failures(parts):
    """The failures and examples of several client processes' results, added up."""
    failures, examples = {}, {}
    for p in parts:
        for k, v in p["failures"].items():
            failures[k] = failures.get(k, 0) + v
        for k, v in p["examples"].items():
            examples.setdefault(k, v)
    return failures, examples


def failures_by_kind(failures, examples):
    """The JSON figure: kind -> {count, example}, sorted by kind."""
    return {k: {"count": v, "example": examples.get(k, "")} for k, v in sorted(failures.items())}


def die_with_parent(parent):
    """Linux: this (worker) process is killed when its parent dies, e.g. when `timeout` stops
    the parent, instead of holding its connections until its own timeouts."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def raise_nofile():
    """Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
