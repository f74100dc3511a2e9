//! The MQTT broker end to end with real clients: `mosquitto_pub`/`mosquitto_sub` and paho-mqtt
//! (Python, the scripts in `tests/mqtt/`) over TLS with the CA `rampart init` made, in MQTT 3.1.1
//! and 5.0; and hand-made bytes on the plain-TCP loopback listener for malformed input.
//!
//! Every test runs its own `rampart up` (control plane and data plane on two cores) on ports of
//! its own, and uses the service accounts `init` made: `scenectrl` (readwrite `scenescape/#`)
//! and `webuser` (read `scenescape/#`). Client ids are chosen by their home core (FNV-1a of the
//! id, finalised, as the broker computes it) where a test wants both the same-core and the
//! cross-core path.
//!
//! Every wait is bounded; every child process is killed when its handle drops.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{Install, Running, free_port, python, text};

/// MQTT versions as mosquitto spells them.
const VERSIONS: [&str; 2] = ["mqttv311", "mqttv5"];
/// The data plane's cores in the harness (`cores = 2`).
const CORES: usize = 2;
/// How mosquitto_sub prints a message (`-F`).
const FORMAT: &str = "MSG|%t|%q|%r|%p";

// ---------------------------------------------------------------------------------------------
// The broker under test

/// One `rampart up` with a plain-TCP loopback listener next to the TLS one.
struct Broker {
    install: Install,
    up: Option<Running>,
    plain: u16,
    /// The test's name: topic prefix `scenescape/<name>` and client id prefix.
    name: &'static str,
}

/// A service account made by `rampart init`: `controller` (scenectrl), `browser` (webuser).
#[derive(Clone, Debug)]
struct Account {
    user: String,
    password: String,
}

impl Account {
    fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }
}

impl Broker {
    fn start(name: &'static str) -> Self {
        Self::with(name, "", "")
    }

    /// With extra `[dataplane.broker]` lines and extra `[dataplane.mqtt]` lines.
    fn with(name: &'static str, broker: &str, mqtt: &str) -> Self {
        Self::with_dataplane(name, "", broker, mqtt)
    }

    /// Also with extra `[dataplane]` lines.
    fn with_dataplane(name: &'static str, dataplane: &str, broker: &str, mqtt: &str) -> Self {
        let plain = free_port();
        let install = Install::with(
            &format!(
                "{dataplane}\n[dataplane.broker]\nplain_listen = [\"127.0.0.1:{plain}\"]\n{broker}"
            ),
            ["off", mqtt, "off"],
        );
        let up = install.start("up");
        let b = Self {
            install,
            up: Some(up),
            plain,
            name,
        };
        b.wait_ready();
        b
    }

    fn tls(&self) -> u16 {
        self.install.ports[1]
    }

    fn log(&self) -> String {
        self.up.as_ref().map(Running::log_text).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    fn prefix(&self) -> String {
        format!("scenescape/{}", self.name)
    }

    fn topic(&self, rest: &str) -> String {
        format!("scenescape/{}/{rest}", self.name)
    }

    fn id(&self, rest: &str) -> String {
        format!("{}-{rest}", self.name)
    }

    /// `init`'s account in `var/secrets/<file>.auth`.
    fn account(&self, file: &str) -> Account {
        let raw = std::fs::read(self.install.secrets().join(format!("{file}.auth"))).unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        Account::new(v["user"].as_str().unwrap(), v["password"].as_str().unwrap())
    }

    fn scenectrl(&self) -> Account {
        self.account("controller")
    }

    fn webuser(&self) -> Account {
        self.account("browser")
    }

    /// Waits until the data plane has a policy: a CONNECT on the plain listener is accepted.
    fn wait_ready(&self) {
        let acc = self.scenectrl();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = TcpStream::connect(("127.0.0.1", self.plain))
                .ok()
                .and_then(|mut tcp| {
                    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                    let id = self.id("ready");
                    tcp.write_all(&connect_packet(4, &id, Some(&acc), 0x02, &[]))
                        .ok()?;
                    let (first, body) = read_packet(&mut tcp).ok()??;
                    Some(first == 0x20 && body.get(1) == Some(&0))
                })
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the broker never accepted scenectrl:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, wait for a clean exit, start again on the same ports and data dir.
    fn restart(&mut self) {
        let up = self.up.take().expect("running");
        up.stop();
        self.up = Some(self.install.start("up"));
        self.wait_ready();
    }

    /// `rampart <args>` with the admin CLI; panics on failure.
    fn cli(&self, args: &[&str]) -> String {
        let out = self.install.run(args);
        assert!(
            out.status.success(),
            "rampart {args:?} failed: {}",
            text(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A new service account; returns its generated password.
    fn add_service(&self, name: &str) -> Account {
        let out = self.cli(&["user", "add", name, "--service"]);
        Account::new(name, &common::shown_once(&out, "password"))
    }

    fn acl(&self, user: &str, topic: &str, access: &str) {
        self.cli(&[
            "acl", "add", "--user", user, "--topic", topic, "--access", access,
        ]);
    }

    /// Deletes the ACL rule on `topic` with `access` (`acl list --json`, then `acl delete`).
    fn acl_delete(&self, topic: &str, access: &str) {
        let acls: Value = serde_json::from_str(&self.cli(&["acl", "list", "--json"])).unwrap();
        let rule = acls
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["topic"] == topic && a["access"] == access)
            .unwrap_or_else(|| panic!("{acls}"))["id"]
            .to_string();
        self.cli(&["acl", "delete", rule.trim_matches('"')]);
    }

    /// Waits until the data plane has applied the control plane's current generation.
    fn wait_applied(&self) {
        common::wait_applied(&self.install);
    }

    // --- mosquitto clients ---

    fn mosquitto(&self, bin: &str, version: &str, acc: Option<&Account>, args: &[&str]) -> Command {
        // Line-buffered: the tests watch the debug output (SUBACK) while the client runs.
        let mut c = Command::new("stdbuf");
        c.args([
            "-oL",
            bin,
            "-h",
            "127.0.0.1",
            "-p",
            &self.tls().to_string(),
            "--cafile",
        ])
        .arg(self.install.ca())
        .args(["-V", version]);
        if let Some(a) = acc {
            c.args(["-u", &a.user, "-P", &a.password]);
        }
        c.args(args);
        c
    }

    /// Runs `mosquitto_pub -d` to completion (10 s at most).
    fn publish(&self, version: &str, acc: &Account, args: &[&str]) -> Done {
        let mut all = vec!["-d"];
        all.extend_from_slice(args);
        let cmd = self.mosquitto("mosquitto_pub", version, Some(acc), &all);
        Proc::spawn(cmd, "mosquitto_pub").finish(Duration::from_secs(10))
    }

    /// Like [`Self::publish`], and asserts it succeeded.
    fn publish_ok(&self, version: &str, acc: &Account, args: &[&str]) -> Done {
        let done = self.publish(version, acc, args);
        assert!(
            done.success(),
            "mosquitto_pub {args:?} failed: {done:?}\n{}",
            self.log_tail()
        );
        done
    }

    /// Starts `mosquitto_sub -d -F ...` and waits for its SUBACK.
    fn subscribe(&self, version: &str, acc: &Account, args: &[&str]) -> Proc {
        let mut all = vec!["-d", "-F", FORMAT];
        all.extend_from_slice(args);
        let cmd = self.mosquitto("mosquitto_sub", version, Some(acc), &all);
        let p = Proc::spawn(cmd, "mosquitto_sub");
        p.wait_for("received SUBACK", Duration::from_secs(10), &|| {
            self.log_tail()
        });
        p
    }

    // --- paho-mqtt scenarios ---

    /// Runs `tests/mqtt/<script> <args>` as `acc` (scenectrl by default); returns its JSON.
    fn paho(&self, script: &str, args: &[&str]) -> Value {
        self.paho_as(script, args, &self.scenectrl())
    }

    fn paho_as(&self, script: &str, args: &[&str], acc: &Account) -> Value {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mqtt");
        let mut c = Command::new(python());
        c.arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", self.tls().to_string())
            .env("MQTT_CA", self.install.ca())
            .env("MQTT_USER", &acc.user)
            .env("MQTT_PASS", &acc.password)
            .env("MQTT_PREFIX", self.prefix())
            .env("MQTT_ID", self.name)
            .env("MQTT_CORES", CORES.to_string());
        let done = Proc::spawn(c, script).finish(Duration::from_secs(60));
        let last = done.stdout.lines().last().unwrap_or_default();
        match serde_json::from_str(last) {
            Ok(v) if done.success() => {
                eprintln!("{script} {args:?}: {v}");
                v
            }
            _ => panic!(
                "{script} {args:?} failed: {done:?}\n--- broker log ---\n{}",
                self.log_tail()
            ),
        }
    }

    // --- raw TCP on the plain listener ---

    fn raw(&self) -> TcpStream {
        let tcp = TcpStream::connect(("127.0.0.1", self.plain)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp
    }

    /// A raw connection after a successful CONNECT of protocol level `level` (4 or 5).
    fn raw_connected(&self, level: u8, id: &str) -> TcpStream {
        let mut tcp = self.raw();
        tcp.write_all(&connect_packet(
            level,
            id,
            Some(&self.scenectrl()),
            0x02,
            &[],
        ))
        .unwrap();
        let (first, body) = read_packet(&mut tcp)
            .unwrap()
            .expect("CONNACK before close");
        assert_eq!(first, 0x20, "CONNACK expected, got {first:#x} {body:?}");
        assert_eq!(body[1], 0, "CONNACK refused: {body:?}");
        tcp
    }
}

/// The home core of a client id, as the broker computes it (FNV-1a, finalised, high bits).
fn home_core(client_id: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in client_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // MurmurHash3's 64-bit finaliser: every input bit reaches the high bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    ((u128::from(h) * CORES as u128) >> 64) as usize
}

/// A client id starting with `base` whose home is `core`.
fn id_on(base: &str, core: usize) -> String {
    (0..)
        .map(|i| format!("{base}-{i}"))
        .find(|id| home_core(id) == core)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Child processes with bounded waits

/// Output of a child process as it comes, chunk by chunk from a reader thread.
struct Stream {
    rx: Receiver<String>,
    text: RefCell<String>,
}

impl Stream {
    fn text(&self) -> String {
        while let Ok(chunk) = self.rx.try_recv() {
            self.text.borrow_mut().push_str(&chunk);
        }
        self.text.borrow().clone()
    }
}

/// A child process whose output is collected as it comes; killed on drop.
struct Proc {
    child: Child,
    what: String,
    out: Stream,
    err: Stream,
    readers: Vec<JoinHandle<()>>,
}

/// A finished child process.
#[derive(Debug)]
struct Done {
    /// `None`: killed after its time ran out.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Done {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

fn collect(mut r: impl Read + Send + 'static) -> (Stream, JoinHandle<()>) {
    let (tx, rx): (Sender<String>, Receiver<String>) = channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let stream = Stream {
        rx,
        text: RefCell::new(String::new()),
    };
    (stream, reader)
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(mut cmd: Command, what: &str) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e} (.ci/test installs it)"));
        let (out, r1) = collect(child.stdout.take().unwrap());
        let (err, r2) = collect(child.stderr.take().unwrap());
        Self {
            child,
            what: what.to_owned(),
            out,
            err,
            readers: vec![r1, r2],
        }
    }

    fn stdout(&self) -> String {
        self.out.text()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits until stdout contains `needle`; panics (with `context()`) after `limit`.
    fn wait_for(&self, needle: &str, limit: Duration, context: &dyn Fn() -> String) {
        let deadline = Instant::now() + limit;
        while !self.stdout().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{} never printed {needle:?}:\n{}\n{}\n--- broker log ---\n{}",
                self.what,
                self.stdout(),
                self.err.text(),
                context()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit; kills the process after `limit`.
    fn finish(mut self, limit: Duration) -> Done {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Done {
            status,
            stdout: self.out.text(),
            stderr: self.err.text(),
        }
    }

    /// SIGKILL (no DISCONNECT reaches the broker), then what it printed.
    fn kill(mut self) -> Done {
        let _ = self.child.kill();
        self.finish(Duration::from_secs(5))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as mosquitto_sub printed it with [`FORMAT`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    topic: String,
    qos: u8,
    retain: bool,
    payload: String,
}

fn messages(out: &str) -> Vec<Msg> {
    out.lines()
        .filter_map(|l| l.strip_prefix("MSG|"))
        .map(|l| {
            let mut f = l.splitn(4, '|');
            let topic = f.next().unwrap().to_owned();
            let qos = f.next().unwrap().parse().unwrap();
            let retain = f.next().unwrap() == "1";
            let payload = f.next().unwrap_or_default().to_owned();
            Msg {
                topic,
                qos,
                retain,
                payload,
            }
        })
        .collect()
}

fn payloads(out: &str) -> Vec<String> {
    messages(out).into_iter().map(|m| m.payload).collect()
}

// ---------------------------------------------------------------------------------------------
// Raw MQTT bytes

fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

/// A packet: first byte, remaining length, body.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend(varint(body.len()));
    out.extend_from_slice(body);
    out
}

/// A UTF-8 string or binary field: two length bytes, then the bytes.
fn field(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// A CONNECT of protocol level 4 (3.1.1) or 5. `flags` is ORed with the user name and password
/// flags when `acc` is given; `props` is the v5 property block's content.
fn connect_packet(level: u8, id: &str, acc: Option<&Account>, flags: u8, props: &[u8]) -> Vec<u8> {
    connect_raw(b"MQTT", level, id.as_bytes(), acc, flags, props)
}

fn connect_raw(
    name: &[u8],
    level: u8,
    id: &[u8],
    acc: Option<&Account>,
    flags: u8,
    props: &[u8],
) -> Vec<u8> {
    connect_full(name, level, id, acc, flags, 30, props)
}

fn connect_full(
    name: &[u8],
    level: u8,
    id: &[u8],
    acc: Option<&Account>,
    flags: u8,
    keepalive: u16,
    props: &[u8],
) -> Vec<u8> {
    let mut body = field(name);
    body.push(level);
    body.push(flags | if acc.is_some() { 0xC0 } else { 0 });
    body.extend_from_slice(&keepalive.to_be_bytes());
    if level == 5 {
        body.extend(varint(props.len()));
        body.extend_from_slice(props);
    }
    body.extend(field(id));
    if let Some(a) = acc {
        body.extend(field(a.user.as_bytes()));
        body.extend(field(a.password.as_bytes()));
    }
    packet(0x10, &body)
}

/// A PUBLISH of QoS 0 with a raw topic and, in v5, raw property bytes.
fn publish_raw(v5: bool, topic: &[u8], props: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = field(topic);
    if v5 {
        body.extend(varint(props.len()));
        body.extend_from_slice(props);
    }
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

/// Reads one packet: `Ok(None)` at EOF (or a reset), `Err` on timeout.
fn read_packet(tcp: &mut TcpStream) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut first = [0u8; 1];
    match tcp.read(&mut first) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) if is_reset(&e) => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut len = 0usize;
    for i in 0..4 {
        let mut b = [0u8; 1];
        if tcp.read(&mut b)? == 0 {
            return Ok(None);
        }
        len |= usize::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    tcp.read_exact(&mut body)?;
    Ok(Some((first[0], body)))
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
    )
}

type Packets = Vec<(u8, Vec<u8>)>;

/// Reads every packet until the server closes; `Err` if it does not within `limit`.
fn until_closed(tcp: &mut TcpStream, limit: Duration) -> Result<Packets, String> {
    let deadline = Instant::now() + limit;
    tcp.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    loop {
        match read_packet(tcp) {
            Ok(None) => return Ok(got),
            Ok(Some(p)) => got.push(p),
            Err(e) => return Err(format!("not closed within {limit:?} ({e}); got {got:02x?}")),
        }
        if Instant::now() >= deadline {
            return Err(format!("not closed within {limit:?}; got {got:02x?}"));
        }
    }
}

/// Like [`until_closed`]; panics if the connection stays open.
fn packets_until_closed(tcp: &mut TcpStream, limit: Duration, what: &str) -> Packets {
    until_closed(tcp, limit).unwrap_or_else(|e| panic!("{what}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// mosquitto_pub / mosquitto_sub

#[test]
fn mosquitto_delivers_qos_0_1_2_over_tls_same_and_cross_core() {
    let b = Broker::start("qos");
    let acc = b.scenectrl();
    for v in VERSIONS {
        let filter = b.topic(&format!("{v}/#"));
        // One subscriber per core: one of them is always on another core than the publisher.
        let subs: Vec<Proc> = (0..CORES)
            .map(|core| {
                let id = id_on(&b.id(&format!("{v}-sub")), core);
                b.subscribe(v, &acc, &["-i", &id, "-q", "2", "-t", &filter, "-C", "3"])
            })
            .collect();
        let flows = [
            (0, &["sending PUBLISH"][..]),
            (1, &["received PUBACK (Mid: 1, RC:0)"][..]),
            (
                2,
                &[
                    "received PUBREC (Mid: 1)",
                    "received PUBCOMP (Mid: 1, RC:0)",
                ][..],
            ),
        ];
        for (q, expect) in flows {
            let topic = b.topic(&format!("{v}/q{q}"));
            let done = b.publish_ok(
                v,
                &acc,
                &[
                    "-q",
                    &q.to_string(),
                    "-t",
                    &topic,
                    "-m",
                    &format!("hello-{q}"),
                ],
            );
            for e in expect {
                assert!(done.stdout.contains(e), "{v} QoS {q}: no {e:?} in {done:?}");
            }
        }
        for (core, sub) in subs.into_iter().enumerate() {
            let done = sub.finish(Duration::from_secs(10));
            assert!(done.success(), "{v} subscriber on core {core}: {done:?}");
            let got = messages(&done.stdout);
            let want: Vec<Msg> = (0..3)
                .map(|q| Msg {
                    topic: b.topic(&format!("{v}/q{q}")),
                    qos: q,
                    retain: false,
                    payload: format!("hello-{q}"),
                })
                .collect();
            assert_eq!(got, want, "{v} subscriber on core {core}: {done:?}");
            if q2_flow_seen(&done.stdout) {
                continue;
            }
            panic!("{v}: the subscriber did not see the QoS 2 flow: {done:?}");
        }
    }
}

/// The subscriber side of a QoS 2 delivery: PUBLISH, PUBREC sent, PUBREL received, PUBCOMP sent.
fn q2_flow_seen(out: &str) -> bool {
    ["sending PUBREC", "received PUBREL", "sending PUBCOMP"]
        .iter()
        .all(|s| out.contains(s))
}

#[test]
fn mosquitto_retained_messages_are_kept_and_deleted_by_an_empty_payload() {
    let b = Broker::start("retain");
    let acc = b.scenectrl();
    for v in VERSIONS {
        let filter = b.topic(&format!("{v}/#"));
        let a = b.topic(&format!("{v}/a"));
        let c = b.topic(&format!("{v}/c"));
        let marker = b.topic(&format!("{v}/marker"));
        // A subscriber already there gets the retained publish live: retain flag 0
        // (3.1.1 §3.3.1.3; in 5.0 without retain-as-published).
        let live = b.subscribe(v, &acc, &["-q", "1", "-t", &filter, "-C", "1"]);
        b.publish_ok(v, &acc, &["-r", "-q", "1", "-t", &a, "-m", "kept-a"]);
        let done = live.finish(Duration::from_secs(10));
        assert_eq!(
            messages(&done.stdout),
            vec![Msg {
                topic: a.clone(),
                qos: 1,
                retain: false,
                payload: "kept-a".into()
            }],
            "{v} live: {done:?}"
        );

        // A new subscriber gets it with retain 1, at the lower QoS of the two.
        let retained = |what: &str| -> Vec<Msg> {
            let sub = b.subscribe(v, &acc, &["-q", "0", "-t", &filter, "--retained-only"]);
            b.publish_ok(v, &acc, &["-q", "1", "-t", &marker, "-m", "marker"]);
            let done = sub.finish(Duration::from_secs(10));
            assert!(done.status.is_some(), "{v} {what}: {done:?}");
            messages(&done.stdout)
                .into_iter()
                .filter(|m| m.retain)
                .collect()
        };
        assert_eq!(
            retained("new subscriber"),
            vec![Msg {
                topic: a.clone(),
                qos: 0,
                retain: true,
                payload: "kept-a".into()
            }],
            "{v}"
        );

        // An empty retained payload deletes it; another topic's stays.
        b.publish_ok(v, &acc, &["-r", "-q", "1", "-t", &c, "-m", "kept-c"]);
        b.publish_ok(v, &acc, &["-r", "-q", "1", "-t", &a, "-n"]);
        assert_eq!(
            retained("after delete"),
            vec![Msg {
                topic: c.clone(),
                qos: 0,
                retain: true,
                payload: "kept-c".into()
            }],
            "{v}"
        );
        // Replaced, not added.
        b.publish_ok(v, &acc, &["-r", "-q", "1", "-t", &c, "-m", "kept-c2"]);
        assert_eq!(
            payloads_of(&retained("after replace")),
            vec!["kept-c2"],
            "{v}"
        );
    }
}

fn payloads_of(m: &[Msg]) -> Vec<&str> {
    m.iter().map(|m| m.payload.as_str()).collect()
}

#[test]
fn mosquitto_will_is_sent_when_a_client_dies_and_not_after_disconnect() {
    let b = Broker::start("will");
    let acc = b.scenectrl();
    for v in VERSIONS {
        let will = b.topic(&format!("{v}/will"));
        let watcher = b.subscribe(v, &acc, &["-q", "1", "-t", &will, "-C", "2"]);
        // A client that dies without DISCONNECT (SIGKILL): its will is published.
        let victim = b.subscribe(
            v,
            &acc,
            &[
                "-i",
                &b.id(&format!("{v}-victim")),
                "-t",
                &b.topic("nothing"),
                "--will-topic",
                &will,
                "--will-payload",
                &format!("gone-{v}"),
                "--will-qos",
                "1",
            ],
        );
        victim.kill();
        watcher.wait_for(&format!("gone-{v}"), Duration::from_secs(10), &|| {
            b.log_tail()
        });
        // One that disconnects normally (-E: exit after SUBACK): no will.
        let polite = b.subscribe(
            v,
            &acc,
            &[
                "-E",
                "-i",
                &b.id(&format!("{v}-polite")),
                "-t",
                &b.topic("nothing"),
                "--will-topic",
                &will,
                "--will-payload",
                &format!("polite-{v}"),
            ],
        );
        let done = polite.finish(Duration::from_secs(10));
        assert!(done.success(), "{done:?}");
        // Let the broker see the DISCONNECT before the marker is published.
        std::thread::sleep(Duration::from_millis(300));
        b.publish_ok(v, &acc, &["-q", "1", "-t", &will, "-m", "marker"]);
        let done = watcher.finish(Duration::from_secs(10));
        assert_eq!(
            payloads(&done.stdout),
            vec![format!("gone-{v}"), "marker".into()],
            "{v}: {done:?}"
        );
    }
}

#[test]
fn mosquitto_bad_credentials_are_refused_with_the_right_connack() {
    let b = Broker::start("badpw");
    let good = b.scenectrl();
    let topic = b.topic("x");
    for (v, bad, human) in [("mqttv311", 4, 5), ("mqttv5", 134, 135)] {
        let cases = [
            (
                "wrong password",
                Some(Account::new(&good.user, "wrong")),
                bad,
            ),
            ("unknown user", Some(Account::new("nobody", "pw")), bad),
            // A human account's password is checked by the control plane.
            (
                "human account, wrong password",
                Some(Account::new("admin", "whatever")),
                bad,
            ),
            ("anonymous", None, human),
        ];
        for (what, acc, code) in cases {
            let cmd = b.mosquitto(
                "mosquitto_pub",
                v,
                acc.as_ref(),
                &["-d", "-q", "1", "-t", &topic, "-m", "x"],
            );
            let done = Proc::spawn(cmd, "mosquitto_pub").finish(Duration::from_secs(10));
            assert_eq!(done.code(), Some(code), "{v} {what}: {done:?}");
            assert!(
                done.stdout.contains(&format!("received CONNACK ({code})")),
                "{v} {what}: {done:?}"
            );
            assert!(!done.stdout.contains("sending PUBLISH"), "{v} {what}");
        }
        // The right password still works.
        b.publish_ok(v, &good, &["-q", "1", "-t", &topic, "-m", "ok"]);
    }
    let log = b.log();
    assert!(log.contains("wrong") || log.contains("denied"), "{log}");
}

#[test]
fn a_human_account_logs_in_with_its_password_checked_by_the_control_plane() {
    let b = Broker::start("human");
    let out = b.cli(&["user", "add", "alice", "--role", "operator"]);
    let pw = common::shown_once(&out, "password");
    let alice = Account::new("alice", &pw);
    b.acl("alice", &b.topic("alice/#"), "readwrite");
    b.wait_applied();
    let topic = b.topic("alice/x");
    for v in ["mqttv311", "mqttv5"] {
        let sub = b.subscribe(v, &alice, &["-q", "1", "-t", &topic, "-C", "1"]);
        b.publish_ok(v, &alice, &["-q", "1", "-t", &topic, "-m", v]);
        let done = sub.finish(Duration::from_secs(10));
        assert_eq!(payloads(&done.stdout), vec![v.to_string()], "{done:?}");
    }
    // The control plane audited the logins it checked, and the broker's refusals arrive in
    // the same audit log over the link.
    let wrong = Account::new("alice", "not-her-password");
    let done = b.publish("mqttv5", &wrong, &["-q", "1", "-t", &topic, "-m", "x"]);
    assert!(done.stdout.contains("received CONNACK (134)"), "{done:?}");
    let denied = b.publish(
        "mqttv5",
        &alice,
        &["-q", "1", "-t", &b.topic("other"), "-m", "x"],
    );
    assert!(denied.stdout.contains("RC:135"), "{denied:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log =
            std::fs::read_to_string(b.install.dir.path().join("var/audit.log")).unwrap_or_default();
        if log.contains("auth.dataplane") && log.contains("mqtt.publish") {
            assert!(!log.contains(&pw), "the password reached the audit log");
            break;
        }
        assert!(Instant::now() < deadline, "audit log: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn repeated_bad_passwords_are_throttled() {
    let b = Broker::start("throttle");
    let wrong = Account::new(&b.scenectrl().user, "wrong");
    // Ten failures a minute per address and core; connections spread over two cores.
    let mut codes = Vec::new();
    for i in 0..40 {
        let mut tcp = b.raw();
        tcp.write_all(&connect_packet(
            5,
            &format!("thr-{i}"),
            Some(&wrong),
            0x02,
            &[],
        ))
        .unwrap();
        let got = packets_until_closed(&mut tcp, Duration::from_secs(5), "refused CONNECT");
        let (first, body) = got.first().cloned().expect("a CONNACK");
        assert_eq!(first, 0x20);
        codes.push(body[1]);
        if body[1] == 0x9F {
            break;
        }
    }
    assert!(
        codes.iter().all(|c| *c == 0x86 || *c == 0x9F),
        "{codes:02x?}"
    );
    assert_eq!(codes.last(), Some(&0x9F), "never throttled: {codes:02x?}");
}

#[test]
fn mosquitto_acl_allows_and_denies_publish() {
    let b = Broker::start("aclpub");
    let ctrl = b.scenectrl();
    let web = b.webuser();
    // A camera that may write only under its own client id, except its `secret` subtopic, and
    // a reader of every camera.
    let cam = b.add_service("cam7");
    let reader = b.add_service("camreader");
    b.acl("cam7", "cams/%c/#", "write");
    b.acl("cam7", "cams/%c/secret", "deny");
    b.acl("camreader", "cams/#", "read");
    b.wait_applied();

    for v in VERSIONS {
        let v5 = v == "mqttv5";
        // webuser may read scenescape/# but not write it.
        let filter = b.topic(&format!("{v}/#"));
        let topic = b.topic(&format!("{v}/t"));
        let sub = b.subscribe(v, &ctrl, &["-q", "1", "-t", &filter, "-C", "2"]);
        for q in ["0", "1", "2"] {
            let done = b.publish(
                v,
                &web,
                &["-q", q, "-t", &topic, "-m", &format!("denied-{q}")],
            );
            assert!(done.status.is_some(), "{v}: {done:?}");
            match (v5, q) {
                (true, "1") => assert!(
                    done.stdout.contains("received PUBACK (Mid: 1, RC:135)"),
                    "{v} QoS 1: {done:?}"
                ),
                (true, "2") => assert!(
                    done.stderr.contains("Not authorized"),
                    "{v} QoS 2: {done:?}"
                ),
                // 3.1.1 has no negative acknowledgement: acknowledged, then dropped.
                (false, "1") => assert!(
                    done.stdout.contains("received PUBACK (Mid: 1, RC:0)"),
                    "{v} QoS 1: {done:?}"
                ),
                _ => {}
            }
        }
        b.publish_ok(v, &ctrl, &["-q", "1", "-t", &topic, "-m", "allowed"]);
        b.publish_ok(v, &ctrl, &["-q", "1", "-t", &topic, "-m", "marker"]);
        let done = sub.finish(Duration::from_secs(10));
        assert_eq!(
            payloads(&done.stdout),
            vec!["allowed", "marker"],
            "{v}: denied messages reached a subscriber: {done:?}"
        );

        // %c is the client id; deny wins over write.
        let id = b.id(&format!("{v}-cam"));
        let own = format!("cams/{id}/t");
        let cams = b.subscribe(v, &reader, &["-q", "1", "-t", "cams/#", "-C", "2"]);
        for (topic, ok) in [
            (own.clone(), true),
            ("cams/other/t".to_owned(), false),
            (format!("cams/{id}/secret"), false),
            (b.topic("cam"), false),
        ] {
            let done = b.publish(v, &cam, &["-i", &id, "-q", "1", "-t", &topic, "-m", &topic]);
            assert!(done.status.is_some(), "{done:?}");
            let rc = if ok || !v5 { 0 } else { 135 };
            assert!(
                done.stdout
                    .contains(&format!("received PUBACK (Mid: 1, RC:{rc})")),
                "{v} cam7 to {topic}: {done:?}"
            );
        }
        b.publish_ok(v, &cam, &["-i", &id, "-q", "1", "-t", &own, "-m", "marker"]);
        let done = cams.finish(Duration::from_secs(10));
        assert_eq!(
            payloads(&done.stdout),
            vec![own.as_str(), "marker"],
            "{v}: {done:?}"
        );
    }
}

#[test]
fn mosquitto_acl_allows_and_denies_subscribe() {
    let b = Broker::start("aclsub");
    let web = b.webuser();
    let cam = b.add_service("cam8");
    b.acl("cam8", "cams/%c/#", "write");
    b.wait_applied();
    for (v, refused) in [("mqttv311", 128), ("mqttv5", 135)] {
        // Within the read rule: granted; outside it, or wider than it: refused.
        let cmd = b.mosquitto(
            "mosquitto_sub",
            v,
            Some(&web),
            &[
                "-d",
                "-E",
                "-q",
                "1",
                "-t",
                &b.topic("ok/#"),
                "-t",
                "other/x",
                "-t",
                "#",
                "-t",
                "scenescape/+/x",
            ],
        );
        let done = Proc::spawn(cmd, "mosquitto_sub").finish(Duration::from_secs(10));
        assert!(
            done.stdout
                .contains(&format!("Subscribed (mid: 1): 1, {refused}, {refused}, 1")),
            "{v}: {done:?}"
        );
        // Write access is not read access.
        let id = b.id(&format!("{v}-cam"));
        let cmd = b.mosquitto(
            "mosquitto_sub",
            v,
            Some(&cam),
            &["-d", "-E", "-i", &id, "-t", &format!("cams/{id}/#")],
        );
        let done = Proc::spawn(cmd, "mosquitto_sub").finish(Duration::from_secs(10));
        assert!(
            done.stdout
                .contains(&format!("Subscribed (mid: 1): {refused}")),
            "{v}: {done:?}"
        );
    }
    // A refused subscription delivers nothing.
    let ctrl = b.scenectrl();
    let id = b.id("cam-pub");
    let sub = b.subscribe(
        "mqttv5",
        &web,
        &["-q", "1", "-t", "cams/#", "-t", &b.topic("m"), "-C", "1"],
    );
    let to_cams = format!("cams/{id}/x");
    let done = b.publish_ok(
        "mqttv5",
        &cam,
        &["-i", &id, "-q", "1", "-t", &to_cams, "-m", "cam"],
    );
    assert!(done.stdout.contains("RC:0"), "{done:?}");
    b.publish_ok(
        "mqttv5",
        &ctrl,
        &["-q", "1", "-t", &b.topic("m"), "-m", "marker"],
    );
    let done = sub.finish(Duration::from_secs(10));
    assert_eq!(payloads(&done.stdout), vec!["marker"], "{done:?}");
}

// ---------------------------------------------------------------------------------------------
// paho-mqtt

fn assert_connack_ok(v: &Value, what: &str) {
    assert_eq!(v["rc"], 0, "{what}: {v}");
}

#[test]
fn paho_persistent_session_survives_a_reconnect() {
    let b = Broker::start("session");
    for v in ["3", "5"] {
        let r = b.paho("session.py", &[v, "all"]);
        check_session(&r, v, true, true, true);
    }
}

/// Checks what session.py reported for the phases it ran.
fn check_session(r: &Value, v: &str, subscribed: bool, published: bool, received: bool) {
    if subscribed {
        assert_connack_ok(&r["first"], v);
        assert_eq!(r["first"]["session_present"], false, "v{v}: {r}");
        assert_eq!(r["suback"], serde_json::json!([1]), "v{v}: {r}");
    }
    if published {
        assert_eq!(
            r["published"],
            serde_json::json!([true, true, true]),
            "v{v}: {r}"
        );
    }
    if received {
        assert_connack_ok(&r["resumed"], v);
        assert_eq!(r["resumed"]["session_present"], true, "v{v}: {r}");
        let got: Vec<(&str, u64)> = r["received"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["payload"].as_str().unwrap(), m["qos"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![("offline-0", 1), ("offline-1", 1), ("offline-2", 1)],
            "v{v}: {r}"
        );
        assert_eq!(r["extra"], serde_json::json!([]), "v{v}: duplicates: {r}");
        assert_eq!(r["clean"]["session_present"], false, "v{v}: {r}");
    }
}

#[test]
fn paho_shared_subscription_delivers_each_message_once_across_the_group() {
    let b = Broker::start("shared");
    for v in ["5", "3"] {
        let r = b.paho("shared.py", &[v]);
        if v == "3" && r["suback"][0][0] != 1 {
            // `$share` is an MQTT 5 feature; a 3.1.1 refusal is acceptable.
            continue;
        }
        assert_eq!(r["suback"], serde_json::json!([[1], [1]]), "v{v}: {r}");
        let strs = |x: &Value| -> Vec<String> {
            x.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        let m0 = strs(&r["members"][0]);
        let m1 = strs(&r["members"][1]);
        let mut all: Vec<String> = m0.iter().chain(&m1).cloned().collect();
        all.sort();
        let mut want: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
        want.sort();
        assert_eq!(all, want, "v{v}: each message exactly once: {r}");
        assert!(
            !m0.is_empty() && !m1.is_empty(),
            "v{v}: both members get some: {r}"
        );
        let plain = strs(&r["plain"]);
        assert_eq!(
            plain.len(),
            40,
            "v{v}: a plain subscriber gets them all: {r}"
        );
        assert_eq!(
            r["after_leave"][0],
            serde_json::json!([]),
            "v{v}: the member that left: {r}"
        );
        assert_eq!(
            strs(&r["after_leave"][1]),
            (0..10).map(|i| format!("n{i}")).collect::<Vec<_>>(),
            "v{v}: the member that stayed: {r}"
        );
    }
}

#[test]
fn paho_v5_properties_round_trip() {
    let b = Broker::start("props");
    let r = b.paho("props.py", &[]);
    let m = &r["received"][0];
    assert_eq!(m["payload"], "{\"x\": 1}", "{r}");
    let p = &m["props"];
    assert_eq!(
        p["UserProperty"],
        serde_json::json!([["a", "1"], ["a", "2"], ["b", "x"]]),
        "{r}"
    );
    assert_eq!(p["ResponseTopic"], b.topic("props/reply"), "{r}");
    assert_eq!(p["CorrelationData"], "0001636f7272", "{r}");
    assert_eq!(p["ContentType"], "application/json", "{r}");
    assert_eq!(p["PayloadFormatIndicator"], 1, "{r}");
    let left = p["MessageExpiryInterval"].as_u64().expect("expiry kept");
    assert!((1..=60).contains(&left), "{r}");
    assert_eq!(p["SubscriptionIdentifier"], serde_json::json!([7]), "{r}");
    assert!(p.get("TopicAlias").is_none(), "{r}");
    // The expired retained message is gone; the other one's expiry counts down.
    assert_eq!(r["late_marker"], true, "{r}");
    let late: Vec<&str> = r["late"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["payload"].as_str().unwrap())
        .collect();
    assert_eq!(late, vec!["long", "marker"], "{r}");
    let left = r["late"][0]["props"]["MessageExpiryInterval"]
        .as_u64()
        .unwrap();
    assert!(left < 300, "{r}");
}

#[test]
fn paho_v5_retain_handling_retain_as_published_and_no_local() {
    let b = Broker::start("rh");
    let r = b.paho("retain.py", &[]);
    let pairs = |k: &str| -> Vec<(String, bool)> {
        r[k][1]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_bool().unwrap()))
            .collect()
    };
    let kept = ("kept".to_owned(), true);
    let m = |s: &str| (s.to_owned(), false);
    // 0: send at subscribe.
    assert_eq!(pairs("c1_rh0"), vec![kept.clone(), m("m1")], "{r}");
    // 1: only if the subscription is new.
    assert_eq!(pairs("c1_rh1_existing"), vec![m("m2")], "{r}");
    assert_eq!(pairs("c2_rh1_new"), vec![kept.clone(), m("m3")], "{r}");
    // 2: never.
    assert_eq!(pairs("c3_rh2"), vec![m("m4")], "{r}");
    // 0 again on an existing subscription: sent again.
    let again = pairs("c1_rh0_again");
    assert!(again.contains(&kept), "{r}");
    assert_eq!(again.last(), Some(&m("m5")), "{r}");
    // Retain as published.
    assert_eq!(r["c4_rap"], serde_json::json!([["live", true]]), "{r}");
    assert_eq!(r["c3_norap"], serde_json::json!([["m5", false]]), "{r}");
    // No local.
    assert_eq!(r["nl_got"], serde_json::json!(["theirs"]), "{r}");
    assert_eq!(r["other_got"], serde_json::json!(["own", "theirs"]), "{r}");
    assert_eq!(r["self_got"], serde_json::json!(["self"]), "{r}");
}

#[test]
fn paho_v5_topic_alias_from_the_client() {
    let b = Broker::start("alias");
    let r = b.paho("alias.py", &[]);
    assert_eq!(r["connack"]["props"]["TopicAliasMaximum"], 16, "{r}");
    let a = b.topic("alias/a");
    let bb = b.topic("alias/b");
    let got: Vec<(&str, &str)> = r["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["topic"].as_str().unwrap(), m["payload"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (a.as_str(), "a1"),
            (a.as_str(), "a2"),
            (bb.as_str(), "b3"),
            (bb.as_str(), "b4"),
            (bb.as_str(), "b5"),
            (bb.as_str(), "b6"),
        ],
        "{r}"
    );
    assert!(
        r["received"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["alias"].is_null()),
        "{r}"
    );
    assert_eq!(r["unknown_closed"], true, "{r}");
    assert_eq!(r["unknown_rc"], 0x82, "unknown alias: protocol error: {r}");
    assert_eq!(r["big_closed"], true, "{r}");
    assert_eq!(r["big_rc"], 0x94, "alias over the maximum: {r}");
    assert_eq!(r["after"], serde_json::json!([]), "{r}");
}

#[test]
fn paho_empty_client_id_gets_an_assigned_identifier() {
    let b = Broker::start("assigned");
    let r = b.paho("assigned.py", &[]);
    assert_connack_ok(&r["v5"], "v5");
    let id = r["v5"]["props"]["AssignedClientIdentifier"]
        .as_str()
        .unwrap_or_default();
    assert!(!id.is_empty(), "{r}");
    assert_eq!(r["v5_got"], serde_json::json!(["hello"]), "{r}");
    assert_connack_ok(&r["v3"], "v3");
    assert_eq!(r["v3_got"], serde_json::json!(["hello"]), "{r}");
}

#[test]
fn paho_session_takeover_closes_the_first_connection() {
    let b = Broker::start("takeover");
    for v in ["3", "5"] {
        let r = b.paho("takeover.py", &[v]);
        assert_connack_ok(&r["first"], v);
        assert_connack_ok(&r["second"], v);
        assert_eq!(r["second"]["session_present"], true, "v{v}: {r}");
        assert_eq!(r["first_closed"], true, "v{v}: {r}");
        if v == "5" {
            assert_eq!(r["first_rc"], 0x8E, "v{v}: session taken over: {r}");
        }
        assert_eq!(
            r["second_got"],
            serde_json::json!(["after-takeover"]),
            "v{v}: {r}"
        );
        assert_eq!(r["first_got"], serde_json::json!([]), "v{v}: {r}");
    }
}

#[test]
fn paho_v5_will_delay_and_disconnect_with_will() {
    let b = Broker::start("will5");
    let r = b.paho("will.py", &[]);
    assert_eq!(r["dropped"], serde_json::json!(["will-dropped"]), "{r}");
    let after = r["dropped_after"].as_f64().unwrap();
    assert!(after >= 0.9, "will delay of 1 s not kept: {r}");
    assert_eq!(r["with"], serde_json::json!(["will-with"]), "{r}");
    assert_eq!(r["normal"], serde_json::json!(["marker"]), "{r}");
}

#[test]
fn sessions_and_retained_messages_survive_a_restart() {
    let mut b = Broker::start("persist");
    let acc = b.scenectrl();
    for v in ["3", "5"] {
        let r = b.paho("session.py", &[v, "subscribe"]);
        check_session(&r, v, true, false, false);
    }
    let ret = b.topic("ret");
    b.publish_ok("mqttv5", &acc, &["-r", "-q", "1", "-t", &ret, "-m", "kept"]);
    b.restart();
    for v in ["3", "5"] {
        let r = b.paho("session.py", &[v, "publish"]);
        check_session(&r, v, false, true, false);
        let r = b.paho("session.py", &[v, "receive"]);
        check_session(&r, v, false, false, true);
    }
    let sub = b.subscribe("mqttv5", &acc, &["-t", &ret, "-C", "1"]);
    let done = sub.finish(Duration::from_secs(5));
    assert_eq!(payloads(&done.stdout), vec!["kept"], "{done:?}");
}

#[test]
fn sessions_move_with_a_new_core_count() {
    // Written by one core and restored by two (half the sessions change core), then by one
    // again (the second core's file is read by the first). This checks that sessions move
    // with the core count; the race the start-up read removed (a core's first write before
    // another core had read that file) needed cores starting 250 ms apart and is covered by
    // the unit tests of `persist::Restored`.
    let mut b = Broker::with_dataplane("cores", "cores = 1", "", "");
    let acc = b.scenectrl();
    let ids: Vec<String> = (0..4)
        .map(|i| id_on(&b.id(&format!("s{i}")), i % 2))
        .collect();
    let topic = b.topic("queued");
    let sub = |b: &Broker, id: &str, extra: &[&str]| {
        let mut args = vec!["-d", "-F", FORMAT, "-c", "-i", id, "-q", "1", "-t", &topic];
        args.extend_from_slice(extra);
        let cmd = b.mosquitto("mosquitto_sub", "mqttv311", Some(&acc), &args);
        Proc::spawn(cmd, "mosquitto_sub").finish(Duration::from_secs(10))
    };
    for id in &ids {
        let done = sub(&b, id, &["-E"]);
        assert!(done.stdout.contains("SUBACK"), "{id}: {done:?}");
    }
    for (round, cores) in [(1, 2), (2, 1)] {
        let msg = format!("m{round}");
        b.publish_ok("mqttv5", &acc, &["-q", "1", "-t", &topic, "-m", &msg]);
        let config = std::fs::read_to_string(b.install.config()).unwrap();
        let config = config.replace(
            &format!("cores = {}", 3 - cores),
            &format!("cores = {cores}"),
        );
        std::fs::write(b.install.config(), config).unwrap();
        b.restart();
        for id in &ids {
            // The queued message is what the resumed session delivers first.
            let done = sub(&b, id, &["-C", "1"]);
            assert_eq!(
                payloads(&done.stdout),
                vec![msg.as_str()],
                "{id} after a restart with {cores} cores: {done:?}\n{}",
                b.log_tail()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed input on raw TCP

/// A subscriber over TLS that must keep receiving while other connections misbehave.
fn bystander(b: &Broker) -> Proc {
    let acc = b.scenectrl();
    let sub = b.subscribe(
        "mqttv5",
        &acc,
        &["-q", "1", "-t", &b.topic("bystander"), "-C", "2"],
    );
    b.publish_ok(
        "mqttv5",
        &acc,
        &["-q", "1", "-t", &b.topic("bystander"), "-m", "before"],
    );
    sub.wait_for("MSG|", Duration::from_secs(10), &|| b.log_tail());
    sub
}

fn bystander_done(b: &Broker, mut sub: Proc) {
    assert!(
        sub.running(),
        "the bystander was disconnected: {}",
        sub.stdout()
    );
    let acc = b.scenectrl();
    b.publish_ok(
        "mqttv5",
        &acc,
        &["-q", "1", "-t", &b.topic("bystander"), "-m", "after"],
    );
    let done = sub.finish(Duration::from_secs(10));
    assert_eq!(payloads(&done.stdout), vec!["before", "after"], "{done:?}");
    let log = b.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// CONNECT flags: clean session/start.
const CLEAN: u8 = 0x02;

#[test]
fn malformed_input_before_connect_closes_only_that_connection() {
    // A short CONNECT deadline, for the silent truncated CONNECT.
    let b = Broker::with("rawpre", "", "request_read_timeout = \"connect=2\"");
    let sub = bystander(&b);
    let acc = b.scenectrl();
    let good = connect_packet(4, "rawpre-x", Some(&acc), CLEAN, &[]);

    let bad_utf8_id = connect_raw(b"MQTT", 4, b"id\xc3\x28", Some(&acc), CLEAN, &[]);
    let mut reserved_flag = good.clone();
    reserved_flag[9] |= 0x01; // connect flags: the reserved bit
    let will_qos3 = {
        let mut body = field(b"MQTT");
        body.extend([4, 0xC0 | CLEAN | 0x04 | 0x18]); // will flag, will QoS 3
        body.extend(30u16.to_be_bytes());
        body.extend(field(b"rawpre-w"));
        body.extend(field(b"will/t"));
        body.extend(field(b"x"));
        body.extend(field(acc.user.as_bytes()));
        body.extend(field(acc.password.as_bytes()));
        packet(0x10, &body)
    };
    let mut client_id_overrun = good.clone();
    // Client id length (after name 6, level 1, flags 1, keepalive 2 = body offset 10; the
    // fixed header is 2 bytes here): claim more than the packet holds.
    client_id_overrun[12] = 0x00;
    client_id_overrun[13] = 0xF0;
    let mut bad_header_flags = good.clone();
    bad_header_flags[0] = 0x11;

    // (what, bytes, half-close after sending, CONNACK return code expected if any)
    let cases: Vec<(&str, Vec<u8>, bool, Option<u8>)> = vec![
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            false,
            None,
        ),
        (
            "random bytes",
            vec![0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03],
            false,
            None,
        ),
        ("reserved packet type 0", vec![0x00, 0x00], false, None),
        (
            "PUBLISH before CONNECT",
            publish_raw(false, b"a/b", &[], b"x"),
            false,
            None,
        ),
        (
            "bad protocol name (3.1.1)",
            connect_raw(b"MQTX", 4, b"rawpre-n", Some(&acc), CLEAN, &[]),
            false,
            None,
        ),
        (
            "bad protocol name (5)",
            connect_raw(b"MQTX", 5, b"rawpre-n5", Some(&acc), CLEAN, &[]),
            false,
            None,
        ),
        (
            "unsupported protocol level 6",
            connect_raw(b"MQTT", 6, b"rawpre-l", Some(&acc), CLEAN, &[]),
            false,
            Some(0x01),
        ),
        (
            "CONNECT fixed header flags 0001",
            bad_header_flags,
            false,
            None,
        ),
        ("CONNECT reserved flag set", reserved_flag, false, None),
        ("will QoS 3", will_qos3, false, None),
        (
            "client id longer than the packet",
            client_id_overrun,
            false,
            None,
        ),
        ("invalid UTF-8 client id", bad_utf8_id, false, None),
        (
            "truncated CONNECT then EOF",
            good[..12].to_vec(),
            true,
            None,
        ),
        (
            "5-byte remaining length",
            vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x01],
            false,
            None,
        ),
        (
            "oversized remaining length",
            vec![0x10, 0xff, 0xff, 0xff, 0x7f],
            false,
            None,
        ),
        (
            "3.1.1 empty client id without clean session",
            connect_raw(b"MQTT", 4, b"", Some(&acc), 0, &[]),
            false,
            Some(0x02),
        ),
    ];
    let mut failures = Vec::new();
    for (what, bytes, half_close, code) in cases {
        let mut tcp = b.raw();
        // The peer may close while we still write: that is a close too.
        let _ = tcp.write_all(&bytes);
        if half_close {
            let _ = tcp.shutdown(Shutdown::Write);
        }
        let t0 = Instant::now();
        let got = match until_closed(&mut tcp, Duration::from_secs(5)) {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{what}: {e}"));
                continue;
            }
        };
        let took = t0.elapsed();
        let ok = match code {
            Some(c) => got == vec![(0x20, vec![0, c])],
            // Closed with nothing, or with a refusing CONNACK.
            None => got
                .iter()
                .all(|(f, b)| *f == 0x20 && b.get(1).is_some_and(|c| *c != 0)),
        };
        eprintln!("{what}: {got:02x?} after {took:?}");
        if !ok {
            failures.push(format!(
                "{what}: got {got:02x?}, want close after {code:02x?}"
            ));
        }
        if took >= Duration::from_secs(2) {
            failures.push(format!("{what}: closed only after {took:?}"));
        }
    }

    // A CONNECT that stops half way is closed by the CONNECT deadline (2 s here).
    let mut tcp = b.raw();
    tcp.write_all(&good[..12]).unwrap();
    let t0 = Instant::now();
    let got = packets_until_closed(&mut tcp, Duration::from_secs(6), "silent truncated CONNECT");
    assert!(got.is_empty(), "{got:02x?}");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());

    bystander_done(&b, sub);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn malformed_input_after_connect_gets_the_right_disconnect_reason() {
    let b = Broker::start("rawpost");
    let sub = bystander(&b);
    let t = b.topic("raw");
    let tb = t.as_bytes();
    // PUBLISH with a topic alias property (0x23) of `n`.
    let alias = |n: u16| {
        let mut p = vec![0x23];
        p.extend(n.to_be_bytes());
        p
    };
    let mut qos2 = Vec::new();
    for pid in 1..=65u16 {
        let mut body = field(tb);
        body.extend(pid.to_be_bytes());
        body.push(0); // no properties
        body.extend_from_slice(b"q2");
        qos2.extend(packet(0x34, &body));
    }
    let subscribe = |first: u8, filter: &[u8], opts: u8| {
        let mut body = 1u16.to_be_bytes().to_vec();
        body.push(0);
        body.extend(field(filter));
        body.push(opts);
        packet(first, &body)
    };
    let share = format!("$share/g/{t}");

    // (what, bytes after CONNECT, DISCONNECT reason expected)
    let cases: Vec<(&str, Vec<u8>, u8)> = vec![
        (
            "invalid UTF-8 in a topic",
            publish_raw(true, b"a/\xc3\x28", &[], b"x"),
            0x81,
        ),
        (
            "U+0000 in a topic",
            publish_raw(true, b"a/\0", &[], b"x"),
            0x81,
        ),
        (
            "topic length beyond the packet",
            packet(0x30, &[0x00, 0x64, b'a', 0x00]),
            0x81,
        ),
        ("PUBLISH QoS 3", packet(0x36, &[0, 1, b'a', 0, 1, 0]), 0x81),
        ("reserved packet type 0", vec![0x00, 0x00], 0x81),
        (
            "5-byte remaining length",
            vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            0x81,
        ),
        ("SUBSCRIBE with flags 0000", subscribe(0x80, tb, 1), 0x81),
        (
            "SUBSCRIBE options reserved bits",
            subscribe(0x82, tb, 0xC1),
            0x81,
        ),
        ("SUBSCRIBE QoS 3", subscribe(0x82, tb, 0x03), 0x81),
        // 1 MiB is the default maximum packet size.
        (
            "PUBLISH of 2 MB announced",
            vec![0x30, 0x80, 0x89, 0x7a],
            0x95,
        ),
        (
            "second CONNECT",
            connect_packet(5, "rawpost-2", Some(&b.scenectrl()), CLEAN, &[]),
            0x82,
        ),
        (
            "payload format indicator twice",
            publish_raw(true, tb, &[0x01, 0x01, 0x01, 0x01], b"x"),
            0x82,
        ),
        (
            "AUTH without an authentication method",
            packet(0xF0, &[0x18, 0x00]),
            0x82,
        ),
        (
            "no-local on a shared subscription",
            subscribe(0x82, share.as_bytes(), 0x05),
            0x82,
        ),
        (
            "unknown topic alias",
            publish_raw(true, b"", &alias(3), b"x"),
            0x82,
        ),
        (
            "topic alias over the maximum",
            publish_raw(true, tb, &alias(17), b"x"),
            0x94,
        ),
        (
            "wildcard in a topic name",
            publish_raw(true, b"a/+", &[], b"x"),
            0x90,
        ),
        ("65 QoS 2 messages without PUBREL", qos2, 0x93),
    ];
    let mut failures = Vec::new();
    for (i, (what, bytes, reason)) in cases.into_iter().enumerate() {
        let mut tcp = b.raw_connected(5, &format!("rawpost-{i}"));
        let _ = tcp.write_all(&bytes);
        let got = match until_closed(&mut tcp, Duration::from_secs(5)) {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{what}: {e}"));
                continue;
            }
        };
        eprintln!("{what}: {got:02x?}");
        // Acknowledgements (PUBREC of the QoS 2 flood) may come first; DISCONNECT ends it.
        let last = got.last().cloned();
        let ok = matches!(&last, Some((0xE0, body)) if body.first() == Some(&reason));
        if !ok {
            let tail: Vec<_> = got.iter().rev().take(2).collect();
            failures.push(format!(
                "{what}: want DISCONNECT {reason:#04x}, got (last packets) {tail:02x?}"
            ));
        }
    }

    // 3.1.1 has no DISCONNECT from the server: the connection is just closed.
    for (what, bytes) in [
        (
            "v3 invalid UTF-8 in a topic",
            publish_raw(false, b"a/\xc3\x28", &[], b"x"),
        ),
        ("v3 PUBLISH of 2 MB announced", vec![0x30, 0x80, 0x89, 0x7a]),
        (
            "v3 second CONNECT",
            connect_packet(4, "rawpost-v3b", None, CLEAN, &[]),
        ),
    ] {
        let mut tcp = b.raw_connected(4, &b.id(what.split(' ').nth(1).unwrap()));
        let _ = tcp.write_all(&bytes);
        let got = until_closed(&mut tcp, Duration::from_secs(5));
        if got != Ok(Vec::new()) {
            failures.push(format!("{what}: want a bare close, got {got:02x?}"));
        }
    }
    bystander_done(&b, sub);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn topic_alias_0_is_refused_with_0x94() {
    let b = Broker::start("alias0");
    let mut tcp = b.raw_connected(5, "alias0-c");
    tcp.write_all(&publish_raw(
        true,
        b"scenescape/alias0/t",
        &[0x23, 0, 0],
        b"x",
    ))
    .unwrap();
    let got = packets_until_closed(&mut tcp, Duration::from_secs(5), "topic alias 0");
    assert_eq!(got, vec![(0xE0, vec![0x94])]);
}

#[test]
fn paho_v5_overlaps_unsubscribe_limits_expiry_and_retained_will() {
    let b = Broker::start("extra");
    let r = b.paho("extra.py", &[]);
    // Overlapping subscriptions: one delivery, at the highest QoS, with both ids (§3.3.4).
    assert_eq!(
        r["overlap"],
        serde_json::json!([{"payload": "overlap", "qos": 1, "ids": [1, 2]}]),
        "{r}"
    );
    assert_eq!(r["unsuback"], true, "{r}");
    assert_eq!(r["after_unsubscribe"], serde_json::json!([]), "{r}");
    // The client's Maximum Packet Size is respected (§3.1.2.11.4).
    assert_eq!(r["max_packet"], serde_json::json!(["small"]), "{r}");
    let sha = &r["big_sent"];
    assert_eq!(
        r["big_got"],
        serde_json::json!([{"sha": sha, "qos": 1}, {"sha": sha, "qos": 0}]),
        "{r}"
    );
    assert_eq!(r["huge_closed"], true, "{r}");
    assert_eq!(r["huge_rc"], 0x95, "over the maximum packet size: {r}");
    assert_eq!(r["expired"]["session_present"], false, "{r}");
    assert_eq!(r["kept"]["session_present"], true, "{r}");
    assert_eq!(
        r["retained_will"],
        serde_json::json!([["rwill", true]]),
        "{r}"
    );
}

#[test]
fn paho_qos1_is_complete_and_ordered_under_load_across_cores() {
    // The publisher sends 2,000 QoS 1 messages as fast as paho goes; a subscriber in Python
    // on a busy 2-core machine can fall more than the default 1,000 queued messages behind,
    // and then the broker drops the newest by design (as Mosquitto does; the bound has tests
    // of its own, `a_slow_subscriber_*`). This test is about order and completeness, so the
    // bound is out of its way. It failed once with the default (1,884 of 2,000 at one
    // subscriber, the missing ones consecutive from 1,795), most likely this way.
    let b = Broker::with("order", "max_queued_messages = 10000", "");
    for v in ["3", "5"] {
        let r = b.paho("order.py", &[v, "2000"]);
        assert_eq!(r["acked"], 2000, "v{v}: {r}");
        for s in r["subs"].as_array().unwrap() {
            assert_eq!(s["q1_count"], 2000, "v{v}: {r}");
            assert_eq!(s["q1_in_order"], true, "v{v}: {r}");
            assert_eq!(s["q1_unique"], true, "v{v}: {r}");
            assert_eq!(s["q0_in_order"], true, "v{v}: {r}");
        }
    }
}

#[test]
fn payload_over_the_policy_limit_is_refused_with_a_valid_puback_code() {
    let b = Broker::start("biglimit");
    let acc = b.scenectrl();
    // 300 KiB: under the 1 MiB maximum packet size the CONNACK announces, over the policy's
    // default max_message_bytes (256 KiB).
    let file = b.install.dir.path().join("300k");
    std::fs::write(&file, vec![b'x'; 300 * 1024]).unwrap();
    let topic = b.topic("big");
    let sub = b.subscribe("mqttv311", &acc, &["-q", "1", "-t", &topic, "-C", "1"]);
    let done = b.publish(
        "mqttv5",
        &acc,
        &["-q", "1", "-t", &topic, "-f", file.to_str().unwrap()],
    );
    // MQTT 5 §3.4.2.1: a PUBACK's reason is one of 0x00 0x10 0x80 0x83 0x87 0x90 0x91 0x97 0x99.
    let rc = done
        .stdout
        .split("received PUBACK (Mid: 1, RC:")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse::<u8>().ok());
    assert!(
        matches!(rc, Some(0x80 | 0x83 | 0x97)),
        "PUBACK reason {rc:?}: {done:?}"
    );
    b.publish_ok("mqttv5", &acc, &["-q", "1", "-t", &topic, "-m", "marker"]);
    let done = sub.finish(Duration::from_secs(10));
    assert_eq!(payloads(&done.stdout), vec!["marker"], "{done:?}");
}

/// A QoS 1 PUBLISH to `topic` with packet id `pid`.
fn publish_qos(v5: bool, qos: u8, dup: bool, topic: &[u8], pid: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = field(topic);
    body.extend(pid.to_be_bytes());
    if v5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1) | if dup { 0x08 } else { 0 }, &body)
}

fn subscribe_packet(pid: u16, filter: &[u8], opts: u8, v5: bool) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    body.extend(field(filter));
    body.push(opts);
    packet(0x82, &body)
}

/// Reads packets until one whose type (high nibble) is `kind`.
fn read_until(tcp: &mut TcpStream, kind: u8, what: &str) -> Vec<u8> {
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    loop {
        match read_packet(tcp) {
            Ok(Some((first, body))) if first >> 4 == kind => {
                let mut p = vec![first];
                p.extend(body);
                return p;
            }
            Ok(Some(_)) => {}
            other => panic!("{what}: no packet of type {kind} ({other:02x?})"),
        }
    }
}

#[test]
fn unacknowledged_qos1_is_resent_with_dup_and_qos2_is_not_delivered_twice() {
    let b = Broker::start("resend");
    let acc = b.scenectrl();
    for (level, v) in [(4u8, "mqttv311"), (5, "mqttv5")] {
        let v5 = level == 5;
        let topic = b.topic(&format!("{v}/t"));
        let id = b.id(&format!("{v}-raw"));
        // A persistent session (3.1.1: clean session 0; 5: session expiry 60 s).
        let props: &[u8] = if v5 { &[0x11, 0, 0, 0, 60] } else { &[] };
        let open = |clean: u8| {
            let mut tcp = b.raw();
            tcp.write_all(&connect_full(
                b"MQTT",
                level,
                id.as_bytes(),
                Some(&acc),
                clean,
                30,
                props,
            ))
            .unwrap();
            let connack = read_until(&mut tcp, 2, "CONNACK");
            assert_eq!(connack[2], 0, "{v}: {connack:02x?}");
            (tcp, connack[1] & 1 == 1)
        };
        // 3.1.1: clean session 0 from the start; 5: clean start with a session expiry.
        let (mut tcp, present) = open(if v5 { CLEAN } else { 0 });
        assert!(!present);
        tcp.write_all(&subscribe_packet(1, topic.as_bytes(), 1, v5))
            .unwrap();
        read_until(&mut tcp, 9, "SUBACK");
        b.publish_ok(v, &acc, &["-q", "1", "-t", &topic, "-m", "once"]);
        let first = read_until(&mut tcp, 3, "PUBLISH");
        assert_eq!(first[0] & 0x0F, 0x02, "{v}: QoS 1, no DUP: {first:02x?}");
        // Gone without PUBACK: on resume the same message comes again with DUP (§4.4).
        drop(tcp);
        std::thread::sleep(Duration::from_millis(200));
        let (mut tcp, present) = open(0);
        assert!(present, "{v}: session present");
        let again = read_until(&mut tcp, 3, "resent PUBLISH");
        assert_eq!(again[0] & 0x0F, 0x0A, "{v}: QoS 1 with DUP: {again:02x?}");
        assert_eq!(&again[1..], &first[1..], "{v}: same packet id and payload");

        // Incoming QoS 2: a resend (DUP) of a PUBLISH already acknowledged with PUBREC is not
        // delivered again, even across a reconnect (§4.3.3).
        let watch = b.subscribe(
            v,
            &acc,
            &["-q", "2", "-t", &b.topic(&format!("{v}/q2")), "-C", "2"],
        );
        let q2 = b.topic(&format!("{v}/q2"));
        tcp.write_all(&publish_qos(
            v5,
            2,
            false,
            q2.as_bytes(),
            7,
            b"exactly-once",
        ))
        .unwrap();
        let rec = read_until(&mut tcp, 5, "PUBREC");
        assert_eq!(&rec[1..3], &7u16.to_be_bytes(), "{rec:02x?}");
        drop(tcp);
        std::thread::sleep(Duration::from_millis(200));
        let (mut tcp, _) = open(0);
        tcp.write_all(&publish_qos(v5, 2, true, q2.as_bytes(), 7, b"exactly-once"))
            .unwrap();
        read_until(&mut tcp, 5, "PUBREC again");
        tcp.write_all(&packet(0x62, &7u16.to_be_bytes())).unwrap();
        let comp = read_until(&mut tcp, 7, "PUBCOMP");
        assert_eq!(&comp[1..3], &7u16.to_be_bytes(), "{comp:02x?}");
        b.publish_ok(v, &acc, &["-q", "2", "-t", &q2, "-m", "marker"]);
        let done = watch.finish(Duration::from_secs(10));
        assert_eq!(
            payloads(&done.stdout),
            vec!["exactly-once", "marker"],
            "{v}: {done:?}"
        );
    }
}

#[test]
fn a_silent_client_is_closed_after_one_and_a_half_keep_alives() {
    let b = Broker::start("keepalive");
    let acc = b.scenectrl();
    for level in [4u8, 5] {
        let mut tcp = b.raw();
        let id = b.id(&format!("ka{level}"));
        tcp.write_all(&connect_full(
            b"MQTT",
            level,
            id.as_bytes(),
            Some(&acc),
            CLEAN,
            1,
            &[],
        ))
        .unwrap();
        let connack = read_until(&mut tcp, 2, "CONNACK");
        assert_eq!(connack[2], 0);
        let t0 = Instant::now();
        let got = packets_until_closed(&mut tcp, Duration::from_secs(6), "silent client");
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(1200) && took < Duration::from_secs(4),
            "level {level}: closed after {took:?}"
        );
        let want: Packets = if level == 5 {
            vec![(0xE0, vec![0x8D])]
        } else {
            Vec::new()
        };
        assert_eq!(got, want, "level {level}");
    }
    // Keep alive 0 from an MQTT 5 client: the CONNACK tells the server's (Server Keep Alive,
    // property 0x13, the 600 s default maximum).
    let mut tcp = b.raw();
    tcp.write_all(&connect_full(
        b"MQTT",
        5,
        b"keepalive-0",
        Some(&acc),
        CLEAN,
        0,
        &[],
    ))
    .unwrap();
    let connack = read_until(&mut tcp, 2, "CONNACK");
    assert_eq!(connack[2], 0);
    let props = &connack[4..];
    assert!(
        props.windows(3).any(|w| w == [0x13, 0x02, 0x58]),
        "no Server Keep Alive 600 in {connack:02x?}"
    );
}

#[test]
fn policy_changes_reach_live_connections() {
    let b = Broker::start("revoke");
    let reader = b.add_service("reader9");
    b.acl("reader9", "feeds/#", "read");
    let writer = b.add_service("writer9");
    b.acl("writer9", "feeds/#", "write");
    b.wait_applied();
    let sub = b.subscribe("mqttv5", &reader, &["-q", "1", "-t", "feeds/#"]);
    b.publish_ok(
        "mqttv5",
        &writer,
        &["-q", "1", "-t", "feeds/a", "-m", "before"],
    );
    sub.wait_for("MSG|feeds/a|1|0|before", Duration::from_secs(10), &|| {
        b.log_tail()
    });
    // Taking the read rule away drops the live subscription.
    b.acl_delete("feeds/#", "read");
    b.wait_applied();
    // The data plane re-checks subscriptions on its next tick.
    std::thread::sleep(Duration::from_millis(600));
    b.publish_ok(
        "mqttv5",
        &writer,
        &["-q", "1", "-t", "feeds/a", "-m", "after"],
    );
    // Disabling the account closes its connection (v5: DISCONNECT 0x98).
    b.cli(&["user", "disable", "reader9"]);
    b.wait_applied();
    // Within a second of the data plane applying the change (one 250 ms tick, plus slack for
    // a loaded CI machine).
    let done = sub.finish(Duration::from_secs(2));
    assert!(
        done.status.is_some(),
        "still connected after disable: {done:?}"
    );
    assert_eq!(payloads(&done.stdout), vec!["before"], "{done:?}");
    let done = b.publish("mqttv5", &reader, &["-q", "1", "-t", "feeds/a", "-m", "x"]);
    assert_eq!(done.code(), Some(134), "disabled account: {done:?}");
}

#[test]
fn a_live_publisher_loses_a_topic_when_its_rule_goes() {
    // The broker remembers the last topic a connection may publish to, per policy installation:
    // a rule taken away must still refuse the next PUBLISH to that very topic.
    let b = Broker::start("pubrevoke");
    let writer = b.add_service("writer8");
    b.acl("writer8", "cams/#", "write");
    b.wait_applied();
    let mut tcp = b.raw();
    tcp.write_all(&connect_packet(5, "writer8-live", Some(&writer), 0x02, &[]))
        .unwrap();
    let (first, body) = read_packet(&mut tcp).unwrap().expect("CONNACK");
    assert_eq!((first, body[1]), (0x20, 0), "{body:?}");
    // PUBACK (v5): packet id, then the reason code (absent means success).
    let mut puback = |pid: u16| {
        tcp.write_all(&publish_qos(true, 1, false, b"cams/1/scene", pid, b"x"))
            .unwrap();
        let (first, body) = read_packet(&mut tcp).unwrap().expect("PUBACK");
        assert_eq!(first, 0x40, "{body:?}");
        assert_eq!(body[..2], pid.to_be_bytes());
        body.get(2).copied().unwrap_or(0)
    };
    assert_eq!(puback(1), 0x00);
    assert_eq!(puback(2), 0x00, "the same topic again");
    b.acl_delete("cams/#", "write");
    b.wait_applied();
    assert_eq!(puback(3), 0x87, "NOT_AUTHORIZED once the rule is gone");
}

#[test]
fn wildcards_at_the_start_do_not_match_sys_topics() {
    // $SYS every second; an account that may read everything.
    let b = Broker::with("sys", "sys_interval_secs = 1", "");
    let all = b.add_service("all9");
    b.acl("all9", "#", "readwrite");
    // As in Mosquitto, `#` in an ACL does not reach `$SYS`: it is granted on its own.
    b.acl("all9", "$SYS/#", "read");
    b.wait_applied();
    // MQTT 5 §4.7.2 (3.1.1 §4.7.2): `#` and `+/...` do not match topics starting with `$`.
    let sub = b.subscribe("mqttv5", &all, &["-t", "#", "-t", "+/broker/#"]);
    std::thread::sleep(Duration::from_millis(2500));
    b.publish_ok(
        "mqttv5",
        &all,
        &["-q", "1", "-t", "plain/marker", "-m", "marker"],
    );
    sub.wait_for("MSG|plain/marker", Duration::from_secs(10), &|| {
        b.log_tail()
    });
    let done = sub.kill();
    let sys: Vec<Msg> = messages(&done.stdout)
        .into_iter()
        .filter(|m| m.topic.starts_with('$'))
        .collect();
    assert!(sys.is_empty(), "{sys:?}");
    // `$SYS/#` itself does.
    let sub = b.subscribe("mqttv5", &all, &["-t", "$SYS/#", "-C", "1"]);
    let done = sub.finish(Duration::from_secs(5));
    let got = messages(&done.stdout);
    assert!(
        got.first()
            .is_some_and(|m| m.topic.starts_with("$SYS/broker/")),
        "{done:?}"
    );
}

#[test]
fn the_broker_sets_topic_aliases_for_a_v5_client_that_accepts_them() {
    let b = Broker::start("aliasout");
    let topic = b.topic("a");
    // A v5 subscriber that accepts 1 alias (Topic Alias Maximum 0x22 = 1).
    let mut sub = b.raw();
    sub.write_all(&connect_packet(
        5,
        &b.id("sub"),
        Some(&b.scenectrl()),
        0x02,
        &[0x22, 0, 1],
    ))
    .unwrap();
    let (first, body) = read_packet(&mut sub).unwrap().unwrap();
    assert_eq!((first, body[1]), (0x20, 0), "{body:?}");
    sub.write_all(&subscribe_packet(
        1,
        format!("{}/#", b.prefix()).as_bytes(),
        0,
        true,
    ))
    .unwrap();
    let (first, _) = read_packet(&mut sub).unwrap().unwrap();
    assert_eq!(first, 0x90, "SUBACK");
    let mut publisher = b.raw_connected(5, &b.id("pub"));
    let other = b.topic("b");
    for (t, payload) in [(&topic, "1"), (&topic, "2"), (&other, "3"), (&topic, "4")] {
        publisher
            .write_all(&publish_raw(true, t.as_bytes(), &[], payload.as_bytes()))
            .unwrap();
    }
    // (topic on the wire, alias property, payload) of each PUBLISH received.
    let mut got = Vec::new();
    for _ in 0..4 {
        let (first, body) = read_packet(&mut sub).unwrap().expect("a PUBLISH");
        assert_eq!(first & 0xf0, 0x30, "{body:?}");
        let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let wire_topic = String::from_utf8(body[2..2 + tlen].to_vec()).unwrap();
        let plen = usize::from(body[2 + tlen]);
        let props = &body[3 + tlen..3 + tlen + plen];
        let alias = props
            .windows(3)
            .find(|w| w[0] == 0x23)
            .map(|w| u16::from_be_bytes([w[1], w[2]]));
        let payload = String::from_utf8(body[3 + tlen + plen..].to_vec()).unwrap();
        got.push((wire_topic, alias, payload));
    }
    assert_eq!(
        got,
        vec![
            (topic.clone(), Some(1), "1".to_string()),
            (String::new(), Some(1), "2".to_string()),
            // The one alias is taken: other topics go out in full.
            (other.clone(), None, "3".to_string()),
            (String::new(), Some(1), "4".to_string()),
        ]
    );
}

/// The data plane process under `up`.
fn dataplane_pid(up: &Running) -> u32 {
    let out = Command::new("pgrep")
        .args(["-P", &up.child.id().to_string(), "-f", "dataplane"])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no data plane under {}", up.child.id()))
}

#[test]
fn sessions_and_retained_messages_survive_a_crash_of_the_data_plane() {
    // `persist_interval_ms` (default 1000) is the window of loss: what is older survives
    // `kill -9`, which gives the data plane no chance to write anything.
    let mut b = Broker::start("crash");
    let acc = b.scenectrl();
    for v in ["3", "5"] {
        let r = b.paho("session.py", &[v, "subscribe"]);
        check_session(&r, v, true, false, false);
        let r = b.paho("session.py", &[v, "publish"]);
        check_session(&r, v, false, true, false);
    }
    let ret = b.topic("ret");
    b.publish_ok("mqttv5", &acc, &["-r", "-q", "1", "-t", &ret, "-m", "kept"]);
    std::thread::sleep(Duration::from_millis(2500));

    let mut up = b.up.take().expect("running");
    let pid = dataplane_pid(&up);
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The supervisor sees its data plane die, stops the control plane and exits non-zero.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = up.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "up did not exit:\n{}",
            up.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    drop(up);
    b.up = Some(b.install.start("up"));
    b.wait_ready();

    for v in ["3", "5"] {
        let r = b.paho("session.py", &[v, "receive"]);
        check_session(&r, v, false, false, true);
    }
    let sub = b.subscribe("mqttv5", &acc, &["-t", &ret, "-C", "1"]);
    let done = sub.finish(Duration::from_secs(5));
    assert_eq!(payloads(&done.stdout), vec!["kept"], "{done:?}");
}

#[test]
fn large_payloads_reach_subscribers_on_both_cores_intact() {
    // SceneScape sends camera images in 1 MiB chunks: raise both limits, as its guide would.
    let b = Broker::with(
        "large",
        "max_packet_size = 8388608\n[controlplane.limits]\nmax_message_bytes = 8388608\n",
        "",
    );
    let acc = b.scenectrl();
    let topic = b.topic("image/camera/1");
    // 3 MiB of printable bytes, different in every 1 KiB (so a reordered or repeated chunk
    // would show).
    let payload: String = (0..3 * 1024 * 1024)
        .map(|i: usize| char::from(b'a' + ((i / 1024 + i) % 26) as u8))
        .collect();
    let file = b.install.dir.path().join("image");
    std::fs::write(&file, &payload).unwrap();
    let subs: Vec<Proc> = (0..CORES)
        .flat_map(|core| {
            let v3 = id_on(&b.id("big3"), core);
            let v5 = id_on(&b.id("big5"), core);
            [
                b.subscribe(
                    "mqttv311",
                    &acc,
                    &["-i", &v3, "-q", "1", "-t", &topic, "-C", "1"],
                ),
                b.subscribe(
                    "mqttv5",
                    &acc,
                    &["-i", &v5, "-q", "1", "-t", &topic, "-C", "1"],
                ),
            ]
        })
        .collect();
    b.publish_ok(
        "mqttv5",
        &acc,
        &["-q", "1", "-t", &topic, "-f", file.to_str().unwrap()],
    );
    for sub in subs {
        let done = sub.finish(Duration::from_secs(20));
        let got = messages(&done.stdout);
        assert_eq!(got.len(), 1, "{}", &done.stderr);
        assert!(
            got[0].payload == payload,
            "payload of {} bytes differs",
            got[0].payload.len()
        );
    }
}

#[test]
fn a_subscribe_only_rule_lets_the_subscription_in_but_not_the_messages() {
    let b = Broker::start("subonly");
    let reader = b.add_service("subonly-reader");
    b.acl("subonly-reader", &format!("{}/#", b.prefix()), "subscribe");
    b.acl("subonly-reader", &b.topic("public/#"), "read");
    b.wait_applied();
    let filter = format!("{}/#", b.prefix());
    let sub = b.subscribe("mqttv5", &reader, &["-q", "1", "-t", &filter, "-C", "1"]);
    let acc = b.scenectrl();
    // Retained before and live after: neither may leak outside the `read` rule.
    b.publish_ok(
        "mqttv5",
        &acc,
        &["-q", "1", "-t", &b.topic("secret/x"), "-m", "no"],
    );
    b.publish_ok(
        "mqttv5",
        &acc,
        &["-q", "1", "-t", &b.topic("public/x"), "-m", "yes"],
    );
    let done = sub.finish(Duration::from_secs(10));
    assert_eq!(payloads(&done.stdout), vec!["yes"], "{done:?}");
}

#[test]
fn another_account_never_resumes_a_persistent_session() {
    let b = Broker::start("owner");
    let id = b.id("shared-id");
    let filter = format!("{}/#", b.prefix());
    // scenectrl makes a persistent session (MQTT 3.1.1, clean session 0) with a subscription.
    let mut tcp = b.raw();
    tcp.write_all(&connect_packet(4, &id, Some(&b.scenectrl()), 0x00, &[]))
        .unwrap();
    let (first, _) = read_packet(&mut tcp).unwrap().unwrap();
    assert_eq!(first, 0x20);
    tcp.write_all(&subscribe_packet(1, filter.as_bytes(), 1, false))
        .unwrap();
    let (first, _) = read_packet(&mut tcp).unwrap().unwrap();
    assert_eq!(first, 0x90);
    drop(tcp);
    std::thread::sleep(Duration::from_millis(300));
    b.publish_ok(
        "mqttv311",
        &b.scenectrl(),
        &["-q", "1", "-t", &b.topic("queued"), "-m", "for-scenectrl"],
    );
    // webuser (who may read these topics too) takes the same client id: it must get a fresh
    // session, not scenectrl's subscription and queue.
    let mut tcp = b.raw();
    tcp.write_all(&connect_packet(4, &id, Some(&b.webuser()), 0x00, &[]))
        .unwrap();
    let (first, body) = read_packet(&mut tcp).unwrap().unwrap();
    assert_eq!(
        (first, body[0], body[1]),
        (0x20, 0, 0),
        "session present: {body:?}"
    );
    tcp.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    match read_packet(&mut tcp) {
        Err(_) => {}
        Ok(p) => panic!("webuser got {p:02x?}"),
    }
}

#[test]
fn an_account_holds_at_most_its_connection_limit() {
    let b = Broker::with(
        "acclimit",
        "[controlplane.limits]\nmax_connections_per_account = 2\n",
        "",
    );
    let acc = b.scenectrl();
    // The limit is counted per core: all three client ids live on core 0.
    let mut held = Vec::new();
    for i in 0..2 {
        let id = id_on(&b.id(&format!("c{i}")), 0);
        let mut tcp = b.raw();
        tcp.write_all(&connect_packet(5, &id, Some(&acc), 0x02, &[]))
            .unwrap();
        let (first, body) = read_packet(&mut tcp).unwrap().unwrap();
        assert_eq!((first, body[1]), (0x20, 0), "{body:?}");
        held.push(tcp);
    }
    let third = id_on(&b.id("c2"), 0);
    let mut tcp = b.raw();
    tcp.write_all(&connect_packet(5, &third, Some(&acc), 0x02, &[]))
        .unwrap();
    let (first, body) = read_packet(&mut tcp).unwrap().unwrap();
    assert_eq!((first, body[1]), (0x20, 0x97), "quota exceeded: {body:?}");
    // Taking over one of the two held connections is not a third one.
    let first_id = id_on(&b.id("c0"), 0);
    let mut again = b.raw();
    again
        .write_all(&connect_packet(5, &first_id, Some(&acc), 0x02, &[]))
        .unwrap();
    let (first, body) = read_packet(&mut again).unwrap().unwrap();
    assert_eq!((first, body[1]), (0x20, 0), "{body:?}");
    // When one goes, a new one fits.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(300));
    let mut tcp = b.raw();
    tcp.write_all(&connect_packet(5, &third, Some(&acc), 0x02, &[]))
        .unwrap();
    let (first, body) = read_packet(&mut tcp).unwrap().unwrap();
    assert_eq!((first, body[1]), (0x20, 0), "{body:?}");
}

#[test]
fn packets_split_across_reads_on_the_plain_listener_arrive_whole() {
    let b = Broker::start("split");
    let topic = b.topic("split");
    let sub = b.subscribe(
        "mqttv5",
        &b.scenectrl(),
        &["-q", "1", "-t", &topic, "-C", "3"],
    );
    let mut publisher = b.raw_connected(5, &b.id("splitpub"));
    // Three QoS 1 PUBLISHes written in pieces that cut the fixed header, the topic and the
    // payload, each piece read by the broker on its own.
    let mut stream = Vec::new();
    for (pid, payload) in [(1u16, "first"), (2, "second"), (3, "third")] {
        stream.extend(publish_qos(
            true,
            1,
            false,
            topic.as_bytes(),
            pid,
            payload.as_bytes(),
        ));
    }
    for piece in stream.chunks(7) {
        publisher.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    for pid in 1u16..=3 {
        let (first, body) = read_packet(&mut publisher).unwrap().expect("PUBACK");
        assert_eq!(
            (first, &body[..2]),
            (0x40, &pid.to_be_bytes()[..]),
            "{body:?}"
        );
    }
    let done = sub.finish(Duration::from_secs(10));
    assert_eq!(
        payloads(&done.stdout),
        vec!["first", "second", "third"],
        "{done:?}"
    );
}

/// `GET /metrics` on the loopback metrics port.
fn scrape(port: u16) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .stdin(Stdio::null())
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_count_traffic_and_queues_drain_to_zero_when_clients_leave() {
    let port = free_port();
    let b = Broker::with_dataplane(
        "metrics",
        &format!("metrics_listen = \"127.0.0.1:{port}\""),
        "",
        "",
    );
    let acc = b.scenectrl();
    let topic = b.topic("m");
    // A subscriber that is killed while messages are on their way to it, one that is taken
    // over, and one that reads everything.
    let doomed = b.subscribe(
        "mqttv5",
        &acc,
        &["-i", &b.id("doomed"), "-q", "1", "-t", &topic],
    );
    let taken = b.subscribe("mqttv311", &acc, &["-i", &b.id("taken"), "-t", &topic]);
    let reader = b.subscribe("mqttv5", &acc, &["-q", "1", "-t", &topic, "-C", "200"]);
    let mut publisher = b.raw_connected(5, &b.id("metrics-pub"));
    let mut stream = Vec::new();
    for i in 0..200u16 {
        let payload = format!("m{i}");
        stream.extend(publish_qos(
            true,
            1,
            false,
            topic.as_bytes(),
            i + 1,
            payload.as_bytes(),
        ));
    }
    publisher.write_all(&stream).unwrap();
    for _ in 0..200 {
        let (first, _) = read_packet(&mut publisher).unwrap().expect("PUBACK");
        assert_eq!(first, 0x40);
    }
    drop(publisher);
    let _ = Command::new("kill")
        .args(["-KILL", &doomed.pid().to_string()])
        .status();
    // Taking over `taken` closes its first connection.
    let again = b.subscribe("mqttv311", &acc, &["-i", &b.id("taken"), "-t", &topic]);
    let got = reader.finish(Duration::from_secs(20));
    assert_eq!(payloads(&got.stdout).len(), 200, "{got:?}");
    drop(again.finish(Duration::from_millis(100)));
    drop(taken.finish(Duration::from_millis(100)));
    drop(doomed.finish(Duration::from_millis(100)));

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(port);
        let clients = metric(&text, "rampart_mqtt_clients");
        let queued = metric(&text, "rampart_mqtt_queued_bytes");
        let outbox = metric(&text, "rampart_mqtt_outbox_messages");
        if clients == 0.0 && queued == 0.0 && outbox == 0.0 {
            assert!(
                metric(&text, "rampart_mqtt_messages_in_total") >= 200.0,
                "{text}"
            );
            assert!(
                metric(&text, "rampart_mqtt_messages_out_total") >= 400.0,
                "{text}"
            );
            assert!(
                metric(&text, "rampart_mqtt_takeovers_total") >= 1.0,
                "{text}"
            );
            assert!(
                metric(&text, "rampart_mqtt_delivery_wait_seconds_count") > 0.0,
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queues did not drain: clients {clients} queued bytes {queued} outbox {outbox}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A subscriber that stops reading fills its outbox: with `drop_qos0` its QoS 0 deliveries are
/// dropped and counted, while the publisher keeps publishing at its own pace and another
/// subscriber of the same topic gets every message; with `disconnect` it is told to go with
/// reason 0x97 (quota exceeded). `docs/config.md` promises both.
fn slow_subscriber_run(policy: &str) -> (usize, Vec<(u8, Vec<u8>)>, String) {
    let port = free_port();
    let b = Broker::with_dataplane(
        if policy == "disconnect" {
            "slowdisc"
        } else {
            "slowdrop"
        },
        &format!("metrics_listen = \"127.0.0.1:{port}\""),
        &format!(
            "max_queued_messages = 64\nmax_queued_bytes = 262144\nslow_subscriber = \"{policy}\""
        ),
        "",
    );
    let topic = b.topic("slow");
    // The slow one: a small receive buffer, subscribed, then never read until the end.
    let mut slow = {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{}", b.plain).parse().unwrap();
        sock.connect(&addr.into()).unwrap();
        let mut tcp: TcpStream = sock.into();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tcp.write_all(&connect_packet(
            5,
            &b.id("slow"),
            Some(&b.scenectrl()),
            0x02,
            &[],
        ))
        .unwrap();
        let (first, _) = read_packet(&mut tcp).unwrap().expect("CONNACK");
        assert_eq!(first, 0x20);
        tcp
    };
    slow.write_all(&subscribe_packet(1, topic.as_bytes(), 0, true))
        .unwrap();
    read_until(&mut slow, 9, "SUBACK of the slow subscriber");
    // The fast one reads everything on its own thread.
    let mut fast = b.raw_connected(5, &b.id("fast"));
    fast.write_all(&subscribe_packet(1, topic.as_bytes(), 0, true))
        .unwrap();
    read_until(&mut fast, 9, "SUBACK of the fast subscriber");
    const N: usize = 2000;
    let reader = std::thread::spawn(move || {
        let mut r = std::io::BufReader::with_capacity(1 << 20, fast);
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while got < N && Instant::now() < deadline {
            let mut head = [0u8; 1];
            if r.read_exact(&mut head).is_err() {
                break;
            }
            let mut len = 0usize;
            for i in 0..4 {
                let mut b = [0u8; 1];
                if r.read_exact(&mut b).is_err() {
                    return got;
                }
                len |= usize::from(b[0] & 0x7f) << (7 * i);
                if b[0] & 0x80 == 0 {
                    break;
                }
            }
            let mut body = vec![0u8; len];
            if r.read_exact(&mut body).is_err() {
                break;
            }
            if head[0] >> 4 == 3 {
                got += 1;
            }
        }
        got
    });
    // 2000 × 8 KiB (16 MB) at up to ~64 MB/s: far more than the slow one's 64 messages and
    // 256 KiB of outbox plus its socket buffers.
    let mut publisher = b.raw_connected(5, &b.id("slowpub"));
    // A publisher stalled behind the slow subscriber fails here instead of hanging the test.
    publisher
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let payload = vec![b'x'; 8192];
    for i in 0..N {
        publisher
            .write_all(&publish_raw(true, topic.as_bytes(), &[], &payload))
            .unwrap();
        if i % 64 == 63 {
            std::thread::sleep(Duration::from_millis(8));
        }
    }
    // The publisher was never stalled: its connection still answers a PINGREQ.
    publisher.write_all(&[0xC0, 0]).unwrap();
    let pong = read_until(&mut publisher, 0xD, "PINGRESP after publishing");
    assert_eq!(pong, [0xD0]);
    let fast_got = reader.join().unwrap();
    assert_eq!(
        fast_got,
        N,
        "the fast subscriber lost messages ({policy}):\n{}",
        b.log_tail()
    );
    // Now read what the slow one was sent before it was dropped or cut off.
    let got = until_closed_or_quiet(&mut slow, Duration::from_secs(2));
    (
        got.iter().filter(|p| p.0 >> 4 == 3).count(),
        got,
        scrape(port),
    )
}

/// Reads packets until the server closes or nothing comes for `quiet`.
fn until_closed_or_quiet(tcp: &mut TcpStream, quiet: Duration) -> Packets {
    tcp.set_read_timeout(Some(quiet)).unwrap();
    let mut got = Vec::new();
    while let Ok(Some(p)) = read_packet(tcp) {
        got.push(p);
    }
    got
}

#[test]
fn a_slow_subscriber_loses_qos0_without_stalling_the_publisher_or_the_others() {
    let (slow_got, _, text) = slow_subscriber_run("drop_qos0");
    assert!(
        slow_got < 2000,
        "the slow subscriber got everything ({slow_got})"
    );
    let dropped = metric(&text, "rampart_mqtt_dropped_qos0_slow");
    assert!(
        dropped >= (2000 - slow_got) as f64,
        "dropped {dropped}, slow got {slow_got}:\n{text}"
    );
    assert_eq!(
        metric(&text, "rampart_mqtt_disconnected_slow"),
        0.0,
        "{text}"
    );
}

#[test]
fn a_slow_subscriber_is_disconnected_with_quota_exceeded_under_that_policy() {
    let (slow_got, packets, text) = slow_subscriber_run("disconnect");
    assert!(
        slow_got < 2000,
        "the slow subscriber got everything ({slow_got})"
    );
    let last = packets.last().expect("a DISCONNECT at the end");
    assert_eq!(last.0, 0xE0, "last packet {last:02x?}");
    assert_eq!(last.1.first(), Some(&0x97), "reason {:02x?}", last.1);
    assert!(
        metric(&text, "rampart_mqtt_disconnected_slow") >= 1.0,
        "{text}"
    );
}
