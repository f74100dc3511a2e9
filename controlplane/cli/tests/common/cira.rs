//! A `rampart up` with the CIRA port for the CIRA tests, and what they ask of it: devices on
//! the allowlist, simulated devices connected over real TLS, metrics, the audit log and the
//! admin API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rampart_loadgen::amt::{Device, DeviceSpec};
use serde_json::Value;

use super::{Install, Running, free_port, text, wait_applied};

/// The tests' patience for one step.
pub(crate) const T: Duration = Duration::from_secs(5);

pub(crate) struct Cira {
    pub(crate) install: Install,
    pub(crate) up: Option<Running>,
    pub(crate) metrics: u16,
}

impl Cira {
    /// `rampart up` with the CIRA port; `amt`: `[dataplane.amt]` lines; `cira`: the CIRA
    /// listener's lines. An MQTT plain listener carries the device events.
    pub(crate) fn start(amt: &str, cira: &str, plain: u16) -> Self {
        Self::start_with(amt, "off", cira, plain)
    }

    /// Like [`Cira::start`], with the HTTPS front too (`https`: its listener's lines), for the
    /// redirection relay.
    pub(crate) fn start_with(amt: &str, https: &str, cira: &str, plain: u16) -> Self {
        let metrics = free_port();
        let install = Install::with(
            &format!(
                "metrics_listen = \"127.0.0.1:{metrics}\"\n[dataplane.amt]\n{amt}\n\
                 [dataplane.broker]\nplain_listen = [\"127.0.0.1:{plain}\"]\n"
            ),
            [https, "off", cira],
        );
        let up = install.start("up");
        Self {
            install,
            up: Some(up),
            metrics,
        }
    }

    pub(crate) fn target(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.install.ports[2]))
    }

    pub(crate) fn log(&self) -> String {
        self.up.as_ref().map(Running::log_text).unwrap_or_default()
    }

    pub(crate) fn stop(&mut self) -> String {
        self.up.take().map(Running::stop).unwrap_or_default()
    }

    /// Allowlists `guid` with user `admin`; returns the generated MPS password.
    pub(crate) fn add_device(&self, guid: &str) -> String {
        let out = self
            .install
            .run(&["device", "add", "--guid", guid, "--mps-username", "admin"]);
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let pw = super::shown_once(&stdout, "MPS password");
        wait_applied(&self.install);
        pw
    }

    pub(crate) fn device(&self, guid: &str, password: &str, ports: &[u32]) -> Device {
        let spec = DeviceSpec {
            guid: guid.parse().unwrap(),
            username: "admin".into(),
            password: password.into(),
            ports: ports.to_vec(),
        };
        Device::connect(
            self.target(),
            self.install.rustls_client(),
            "localhost",
            spec,
            T,
        )
        .unwrap()
    }

    pub(crate) fn metric(&self, name: &str) -> Option<u64> {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{}/metrics", self.metrics))
            .stdin(Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
            .and_then(|v| v.trim().parse().ok())
    }

    pub(crate) fn audit(&self) -> Vec<Value> {
        let out = self.install.run(&["audit", "--json", "--limit", "200"]);
        assert!(out.status.success(), "{}", text(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array().unwrap().clone()
    }

    /// One request on the admin socket: status and JSON body (Null if empty).
    pub(crate) fn admin(&self, method: &str, path: &str) -> (u16, Value) {
        admin_at(&self.admin_socket(), method, path, None)
    }

    /// The admin socket (the local superuser's API).
    pub(crate) fn admin_socket(&self) -> PathBuf {
        self.install.dir.path().join("var/run/admin.sock")
    }

    /// Waits until the device registry's row of `guid` satisfies `pred`; returns it.
    pub(crate) fn wait_device(
        &self,
        guid: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, row) = self.admin("GET", &format!("/api/v1/devices/{guid}"));
            if code == 200 && pred(&row) {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "device {guid} never {what}: {code} {row}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for an audit row (records travel over the control link in batches).
    pub(crate) fn wait_audit(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(row) = self.audit().into_iter().find(|r| pred(r)) {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "no such audit record:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One request on the admin socket at `socket` with an optional JSON body: status and JSON
/// body (Null if empty or not JSON).
pub(crate) fn admin_at(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "40",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ])
    .arg("--unix-socket")
    .arg(socket)
    .arg(format!("http://rampart{path}"))
    .stdin(Stdio::null());
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = cmd.output().expect("curl is installed");
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = raw.rsplit_once('\n').unwrap_or(("", &raw));
    let code = code.trim().parse().unwrap_or(0);
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}
