//! The harness shared by the binary's integration tests: an installation in a temp dir made by
//! the real `rampart init`, and a running `rampart` process that is killed on drop.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub(crate) mod cira;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_rampart");

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One installation in a temp dir.
pub(crate) struct Install {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ports: [u16; 3],
    pub(crate) enabled: [bool; 3],
    /// What `rampart init` printed (it holds the admin password, shown once).
    pub(crate) init_output: String,
}

impl Install {
    /// `rampart init --ip-san 127.0.0.1` with the embedded defaults on free loopback ports.
    pub(crate) fn new() -> Self {
        Self::with("", ["", "", ""])
    }

    /// Like [`Install::new`], with extra `[dataplane]` lines and extra lines per listener
    /// (https, mqtt, cira); a listener whose extra text is `off` is disabled.
    pub(crate) fn with(dataplane: &str, listeners: [&str; 3]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports = [free_port(), free_port(), free_port()];
        // Two cores unless the test sets its own.
        let cores = if dataplane.contains("cores =") {
            ""
        } else {
            "cores = 2\n"
        };
        let mut config = format!(
            "data_dir = \"{}\"\n[log]\nlevel = \"debug\"\n\
             [dataplane]\n{cores}drain_timeout_secs = 5\n{dataplane}\n",
            dir.path().join("var").display(),
        );
        for ((name, port), extra) in ["https", "mqtt", "cira"].iter().zip(ports).zip(listeners) {
            if extra == "off" {
                config.push_str(&format!("[dataplane.{name}]\nlisten = []\n"));
            } else {
                config.push_str(&format!(
                    "[dataplane.{name}]\nlisten = [\"127.0.0.1:{port}\"]\n{extra}\n"
                ));
            }
        }
        std::fs::write(dir.path().join("rampart.toml"), config).unwrap();
        let enabled = listeners.map(|l| l != "off");
        let mut install = Self {
            dir,
            ports,
            enabled,
            init_output: String::new(),
        };
        let out = install.run(&["init", "--ip-san", "127.0.0.1"]);
        assert!(out.status.success(), "init failed: {}", text(&out));
        install.init_output = text(&out);
        install
    }

    /// The ports of the enabled listeners.
    pub(crate) fn open_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .zip(self.enabled)
            .filter(|(_, on)| *on)
            .map(|(p, _)| *p)
            .collect()
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.path().join("rampart.toml")
    }

    pub(crate) fn secrets(&self) -> PathBuf {
        self.dir.path().join("var/secrets")
    }

    pub(crate) fn ca(&self) -> PathBuf {
        self.secrets().join("ca/ca.pem")
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--config")
            .arg(self.config())
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Starts `rampart <what>` and waits until every port accepts TCP.
    pub(crate) fn start(&self, what: &str) -> Running {
        let log = self.dir.path().join(format!("{what}.log"));
        let child = self
            .cmd(&[what])
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut running = Running { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in self.open_ports() {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = running.child.try_wait().unwrap() {
                    panic!(
                        "rampart {what} exited with {status}:\n{}",
                        running.log_text()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "port {port} never opened:\n{}",
                    running.log_text()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        running
    }

    pub(crate) fn rustls_client(&self) -> Arc<rustls::ClientConfig> {
        let pem = std::fs::read(self.ca()).unwrap();
        let (_, ca) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.contents.into()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl Running {
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// SIGTERM and wait for a clean exit.
    pub(crate) fn stop(mut self) -> String {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log_text();
                assert!(status.success(), "exit {status}:\n{log}");
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "did not stop:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value after `<label> (shown once): ` in a command's output (a generated password or
/// key), trimmed.
pub(crate) fn shown_once(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label} (shown once): ")))
        .unwrap_or_else(|| panic!("no {label} in {out}"))
        .trim()
        .to_owned()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The Python that has paho-mqtt: Debian's python3-paho-mqtt installs into /usr/bin/python3,
/// which need not be the first python3 on PATH.
pub(crate) fn python() -> &'static str {
    static PY: OnceLock<&'static str> = OnceLock::new();
    PY.get_or_init(|| {
        for p in ["python3", "/usr/bin/python3"] {
            let ok = Command::new(p)
                .args(["-c", "import paho.mqtt.client"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return p;
            }
        }
        panic!("no python3 with paho-mqtt: apt-get install python3-paho-mqtt (.ci/test does)");
    })
}

/// Waits until the data plane has applied the control plane's current policy generation.
pub(crate) fn wait_applied(install: &Install) {
    let sock = install.dir.path().join("var/run/admin.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "2", "--unix-socket"])
            .arg(&sock)
            .arg("http://rampart/api/v1/status")
            .stdin(Stdio::null())
            .output()
            .expect("curl is installed");
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            let g = v["generation"].as_u64();
            let applied = v["dataplanes"][0]["applied_generation"].as_u64();
            if let (Some(g), Some(a)) = (g, applied)
                && a >= g
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the data plane never applied the policy: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `rampart-loadgen` binary, built if needed.
pub(crate) fn loadgen() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // <target>/<profile>/deps/<test binary>-<hash>
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap();
        let bin = profile_dir.join("rampart-loadgen");
        // `cargo test --workspace` builds it; `cargo test -p rampart-cli` may leave an older
        // one behind: use it only if it is newer than every loadgen source file.
        if bin.is_file() && newer_than_sources(&bin) {
            return bin;
        }
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let target = profile_dir.parent().unwrap().join("loadgen-for-tests");
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--quiet", "-p", "rampart-loadgen"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            build.arg("--release");
        }
        let status = build.status().unwrap();
        assert!(status.success(), "cargo build -p rampart-loadgen failed");
        target
            .join(if release { "release" } else { "debug" })
            .join("rampart-loadgen")
    })
}

/// Whether `bin` was modified after every file under `loadgen/src` and the codec crate.
fn newer_than_sources(bin: &Path) -> bool {
    fn newest(dir: &Path, acc: &mut std::time::SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                newest(&path, acc);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                *acc = (*acc).max(m);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut sources = std::time::SystemTime::UNIX_EPOCH;
    newest(&root.join("loadgen/src"), &mut sources);
    newest(&root.join("dataplane/proto/mqtt/src"), &mut sources);
    newest(&root.join("dataplane/proto/apf/src"), &mut sources);
    std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built > sources)
}
