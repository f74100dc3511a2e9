//! `rampart up`: the control plane and the data plane as two processes, started, signalled and
//! stopped together.
//!
//! The control plane starts first and binds its Unix socket; the data plane starts once the
//! socket exists. SIGHUP is passed to both (certificate reload). SIGTERM or SIGINT drains the
//! data plane first, then stops the control plane. If either process dies, the other is stopped
//! and `up` fails, so a supervisor above (systemd) sees one unit fail and restarts it whole.

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use tracing::{error, info, warn};

use crate::config::Config;

const SOCKET_WAIT: Duration = Duration::from_secs(15);

/// Set by `rampart up` in its children: the supervisor's pid.
const SUPERVISOR_ENV: &str = "RAMPART_SUPERVISOR_PID";

/// In a plane started by `rampart up`: die with the supervisor. Without this, a supervisor
/// killed by SIGKILL (or the OOM killer) would leave a data plane holding the ports, and a new
/// `rampart up` would share them with it through SO_REUSEPORT.
pub(crate) fn follow_parent() -> anyhow::Result<()> {
    let Ok(pid) = std::env::var(SUPERVISOR_ENV) else {
        return Ok(());
    };
    rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
        .context("setting the parent-death signal")?;
    // The supervisor may have died before the call above.
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get().to_string());
    if parent.as_deref() != Some(pid.as_str()) {
        bail!("the supervisor (pid {pid}) is gone");
    }
    Ok(())
}

pub(crate) fn up(config_path: Option<&Path>, config: &Config) -> anyhow::Result<()> {
    let secrets = config.secrets_dir();
    if !secrets.exists() {
        bail!(
            "refusing to start: the secrets directory {} does not exist; run `rampart init` first",
            secrets.display()
        );
    }
    rampart_secrets::check_private(&secrets).with_context(|| {
        format!(
            "refusing to start: the secrets directory {} is not safe",
            secrets.display()
        )
    })?;
    let admin = rampart_secrets::Layout::new(&secrets).admin_hash();
    if !admin.exists() {
        bail!(
            "refusing to start: {} is missing; run `rampart init` first",
            admin.display()
        );
    }
    let socket = config.control_socket();
    if socket.exists() {
        if UnixStream::connect(&socket).is_ok() {
            bail!("{}: a control plane is already running", socket.display());
        }
        std::fs::remove_file(&socket)
            .with_context(|| format!("removing stale socket {}", socket.display()))?;
    }

    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGCHLD])
        .context("installing signal handlers")?;
    let exe = std::env::current_exe().context("locating the rampart binary")?;
    let args = crate::config_args(config_path);
    let me = std::process::id().to_string();
    let mut control = Command::new(&exe)
        .arg("controlplane")
        .args(&args)
        .env(SUPERVISOR_ENV, &me)
        // Own process group: a terminal's Ctrl-C reaches only us, and we stop the planes in order.
        .process_group(0)
        .spawn()
        .context("starting the control plane")?;
    let deadline = Instant::now() + SOCKET_WAIT;
    while !socket.exists() {
        if let Some(status) = control.try_wait()? {
            bail!("the control plane exited during start ({status})");
        }
        if Instant::now() > deadline {
            stop(&mut control, "control plane", Duration::from_secs(5));
            bail!(
                "the control plane did not open {} within {SOCKET_WAIT:?}",
                socket.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut data = match Command::new(&exe)
        .arg("dataplane")
        .args(&args)
        .env(SUPERVISOR_ENV, &me)
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            stop(&mut control, "control plane", Duration::from_secs(5));
            return Err(e).context("starting the data plane");
        }
    };
    info!(
        message = "Rampart is up.",
        controlplane_pid = control.id(),
        dataplane_pid = data.id()
    );

    let drain =
        Duration::from_secs(config.dataplane.drain_timeout_secs.get()) + Duration::from_secs(5);
    for sig in signals.forever() {
        match sig {
            SIGHUP => {
                info!(message = "Passing SIGHUP on.");
                signal(&data, Signal::HUP);
                signal(&control, Signal::HUP);
            }
            SIGCHLD => {
                let data_exit = data.try_wait()?;
                let control_exit = control.try_wait()?;
                if data_exit.is_none() && control_exit.is_none() {
                    continue;
                }
                error!(message = "A plane exited; stopping the other.", dataplane = ?data_exit, controlplane = ?control_exit);
                stop(&mut data, "data plane", drain);
                stop(&mut control, "control plane", Duration::from_secs(5));
                bail!("a plane exited unexpectedly");
            }
            _ => {
                info!(message = "Stopping.", signal = sig);
                let data_clean = stop(&mut data, "data plane", drain);
                let control_clean = stop(&mut control, "control plane", Duration::from_secs(5));
                if !(data_clean && control_clean) {
                    bail!("a plane did not stop cleanly");
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

fn signal(child: &Child, sig: Signal) {
    if let Some(pid) = Pid::from_raw(child.id() as i32) {
        let _ = kill_process(pid, sig);
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL. True when it exited by itself with status 0.
fn stop(child: &mut Child, name: &str, grace: Duration) -> bool {
    if let Ok(Some(status)) = child.try_wait() {
        return status.success();
    }
    signal(child, Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            info!(message = "Stopped.", plane = name, %status);
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    warn!(message = "Did not stop in time; killing.", plane = name);
    let _ = child.kill();
    let _ = child.wait();
    false
}
