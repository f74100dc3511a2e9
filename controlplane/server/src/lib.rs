//! The Rampart control plane.
//!
//! It owns everything stateful and secret. Today that is the secrets directory made by
//! `rampart init` (it refuses to start if the directory is readable by others or was never
//! initialised) and the internal Unix socket that joins it to the data plane ([`link`]). The
//! store, accounts, ACLs, API keys, device allowlist, audit log and policy snapshot are built on
//! this in the control-plane milestone.
//!
//! What this crate deliberately does not do: listen on any network port. The control plane is
//! reached only through its Unix socket (mode 0600 in a 0700 directory); the outside reaches its
//! API through the data plane's HTTPS front.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod link;

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tracing::info;

/// What the control plane needs.
#[derive(Debug, Clone)]
pub struct ControlplaneConfig {
    /// The secrets directory made by `rampart init`.
    pub secrets_dir: PathBuf,
    /// The internal Unix socket the data plane connects to.
    pub socket: PathBuf,
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The secrets directory is missing, unsafe, or incomplete.
    #[error("{0}")]
    Secrets(#[from] rampart_secrets::SecretsError),
    /// `rampart init` has not been run for this secrets directory.
    #[error("{0} is missing: run `rampart init` first")]
    NotInitialised(PathBuf),
    /// The socket directory is readable by others.
    #[error(
        "{path} has mode {mode:o}; the socket directory must not be accessible to group or others (chmod 700)"
    )]
    SocketDirMode {
        /// The directory.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// Another control plane answers on the socket.
    #[error("{0}: another control plane is already running")]
    AlreadyRunning(PathBuf),
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The error.
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Checks the secrets, opens the socket and serves until SIGTERM or SIGINT.
pub fn run(config: ControlplaneConfig) -> Result<(), Error> {
    if !config.secrets_dir.exists() {
        return Err(Error::NotInitialised(config.secrets_dir));
    }
    rampart_secrets::check_private(&config.secrets_dir)?;
    let layout = rampart_secrets::Layout::new(&config.secrets_dir);
    if !layout.admin_hash().exists() {
        return Err(Error::NotInitialised(layout.admin_hash()));
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(io_err("installing signal handlers"))?;
    let listener = bind_socket(&config.socket)?;
    info!(
        message = "Control plane started.",
        socket = %config.socket.display(),
        secrets = %config.secrets_dir.display()
    );
    link::serve(listener);
    for sig in signals.forever() {
        if sig == SIGHUP {
            info!(message = "SIGHUP: nothing to reload in the control plane yet.");
            continue;
        }
        info!(message = "Control plane stopping.", signal = sig);
        break;
    }
    let _ = fs::remove_file(&config.socket);
    info!(message = "Control plane stopped.");
    Ok(())
}

/// Creates the socket's directory (0700), refuses a loose one, clears a stale socket, binds,
/// and makes the socket 0600.
pub fn bind_socket(path: &Path) -> Result<std::os::unix::net::UnixListener, Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(format!("creating {}", dir.display())))?;
        let mode = fs::metadata(dir)
            .map_err(io_err(format!("reading {}", dir.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::SocketDirMode {
                path: dir.to_owned(),
                mode: mode & 0o7777,
            });
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::AlreadyRunning(path.to_owned()));
        }
        fs::remove_file(path).map_err(io_err(format!("removing stale {}", path.display())))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(io_err(format!("binding {}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("chmod {}", path.display())))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_is_private_and_single_instance() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("run/control.sock");
        let l = bind_socket(&sock).unwrap();
        let mode = fs::metadata(&sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = fs::metadata(sock.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        assert!(matches!(bind_socket(&sock), Err(Error::AlreadyRunning(_))));
        drop(l);
        // A stale socket file (nobody listening) is replaced.
        bind_socket(&sock).unwrap();
    }

    #[test]
    fn loose_socket_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        fs::create_dir(&run).unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
        let err = bind_socket(&run.join("control.sock")).unwrap_err();
        assert!(err.to_string().contains("mode 755"), "{err}");
    }
}
