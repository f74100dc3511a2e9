//! The Rampart control plane.
//!
//! It owns everything stateful and secret: the secrets directory made by `rampart init` (it
//! refuses to start if the directory is readable by others or was never initialised), the store
//! (accounts, ACLs, API keys, the device allowlist, sessions, the audit log; PostgreSQL or
//! SQLite, see `rampart-store`), and the policy snapshot it compiles from the store and pushes
//! to every data plane over the control link.
//!
//! Where things are:
//! - [`service`]: start-up order, the publisher thread (store → snapshot → [`feed`]) and the API
//!   runtime;
//! - [`compile`]: store records → snapshot; [`feed`] and [`link`]: the snapshot's way to the data
//!   planes and their acknowledgements;
//! - [`api`]: the admin REST API (`/api/v1`) on the API socket (for the HTTPS front) and the
//!   admin socket (for the local CLI);
//! - [`bootstrap`]: the first start's accounts; [`audit`]: the audit log; [`throttle`]: login
//!   throttling.
//!
//! What this crate deliberately does not do: listen on any network port. The control plane is
//! reached only through its Unix sockets (mode 0600 in a 0700 directory); the outside reaches its
//! API through the data plane's HTTPS front.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod amt;
pub mod api;
pub mod audit;
pub mod bootstrap;
pub mod compile;
pub mod feed;
pub mod link;
pub mod relay;
pub mod service;
pub mod throttle;
mod time_fmt;

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tracing::info;

pub use audit::AuditSink;

/// What the control plane needs.
#[derive(Debug, Clone)]
pub struct ControlplaneConfig {
    /// The secrets directory made by `rampart init`.
    pub secrets_dir: PathBuf,
    /// The control link's Unix socket (data planes connect to it).
    pub socket: PathBuf,
    /// The API socket (the HTTPS front proxies `/api/` to it).
    pub api_socket: PathBuf,
    /// The admin socket (the local CLI).
    pub admin_socket: PathBuf,
    /// The data plane's CIRA channel service, through which WS-MAN reaches devices.
    pub channel_socket: PathBuf,
    /// The relay socket (the data plane asks it about redirection sessions).
    pub relay_socket: PathBuf,
    /// `postgres://...` or `sqlite://PATH`.
    pub database_url: String,
    /// PEM CA of the PostgreSQL server.
    pub database_tls_ca: Option<PathBuf>,
    /// PostgreSQL pool size.
    pub database_pool_size: u32,
    /// Where audit lines go besides the database.
    pub audit: AuditSink,
    /// Web session lifetime.
    pub session_ttl: Duration,
    /// Vault for AMT passwords, instead of sealing them in the database.
    pub vault: Option<VaultSettings>,
    /// Limits every data plane enforces (sent in the policy snapshot).
    pub limits: rampart_policy::snapshot::Limits,
}

/// `[controlplane.vault]`.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// Base URL.
    pub address: String,
    /// KV v2 path prefix.
    pub secrets_path: String,
    /// Token file (0600).
    pub token_file: PathBuf,
    /// PEM CA of the Vault server.
    pub ca_file: Option<PathBuf>,
    /// Enterprise namespace.
    pub namespace: Option<String>,
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
    /// The store could not be opened or failed at start.
    #[error("database: {0}")]
    Store(rampart_store::StoreError),
    /// The Vault client could not be built.
    #[error("vault: {0}")]
    Vault(#[from] rampart_credentials::vault::VaultError),
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

/// Checks the secrets, opens the store, starts the publisher, the control link and the API,
/// and serves until SIGTERM or SIGINT.
pub fn run(config: ControlplaneConfig) -> Result<(), Error> {
    if !config.secrets_dir.exists() {
        return Err(Error::NotInitialised(config.secrets_dir));
    }
    rampart_secrets::check_private(&config.secrets_dir)?;
    let layout = rampart_secrets::Layout::new(&config.secrets_dir);
    if !layout.admin_hash().exists() {
        return Err(Error::NotInitialised(layout.admin_hash()));
    }
    // Installations made before these keys existed get them now (never replaced).
    for created in rampart_secrets::ensure_keys(&layout)? {
        info!(message = "Created a missing key file.", path = %created.display());
    }
    let credential_key = rampart_secrets::read_key32(&layout.credential_key())?;
    let master_key = rampart_secrets::read_key32(&layout.master_key())?;
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(io_err("installing signal handlers"))?;

    let password = match fs::read_to_string(layout.db_password()) {
        Ok(p) => Some(p.trim().to_owned()),
        Err(_) => None,
    };
    let store = rampart_store::open(
        &config.database_url,
        &rampart_store::OpenOptions {
            tls_ca: config.database_tls_ca.clone(),
            password,
            pool_size: config.database_pool_size,
        },
    )
    .map_err(Error::Store)?;
    let created = bootstrap::bootstrap(&*store, &layout, &credential_key, api::now_ms())?;
    if !created.is_empty() {
        info!(message = "First start: accounts created.", accounts = %created.join(","));
    }
    // No data plane is linked yet: any device still recorded as connected is left over from a
    // crash or an unclean stop. The data planes' full lists reconnect the live ones.
    let stale = store
        .disconnect_devices(None, api::now_ms())
        .map_err(Error::Store)?;
    if stale > 0 {
        info!(
            message = "Devices recorded as connected at start marked disconnected.",
            devices = stale
        );
    }
    let amt = match &config.vault {
        None => rampart_credentials::AmtSecretStore::Local(
            rampart_credentials::envelope::Kek::from_bytes(&master_key),
        ),
        Some(v) => {
            let mut vc = rampart_credentials::vault::VaultConfig::new(
                v.address.clone(),
                rampart_credentials::vault::VaultTokenSource::File(v.token_file.clone()),
            );
            vc.secrets_path = v.secrets_path.clone();
            vc.ca_file = v.ca_file.clone();
            vc.namespace = v.namespace.clone();
            rampart_credentials::AmtSecretStore::Vault(
                rampart_credentials::vault::VaultClient::new(&vc)?,
            )
        }
    };
    let audit = audit::Audit::open(&config.audit).map_err(io_err("opening the audit log"))?;

    let feed = Arc::new(feed::Feed::new());
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let publisher = service::spawn_publisher(
        store.clone(),
        feed.clone(),
        credential_key.clone(),
        config.limits,
        stop_rx.clone(),
    )?;
    let listener = bind_socket(&config.socket)?;
    let api = service::build_api(
        service::ApiSettings {
            api_socket: config.api_socket.clone(),
            admin_socket: config.admin_socket.clone(),
            session_ttl: config.session_ttl,
            cira_ca: Some(layout.ca_cert()),
            channel_socket: config.channel_socket.clone(),
            relay_socket: config.relay_socket.clone(),
        },
        store.clone(),
        credential_key,
        amt,
        audit,
        feed.clone(),
    )?;
    // The link shares the API's store, audit log, login throttle and Argon2 pool.
    link::serve_with(listener, feed.clone(), api.link_services());
    let api = api.spawn(stop_rx)?;
    info!(
        message = "Control plane started.",
        socket = %config.socket.display(),
        api_socket = %config.api_socket.display(),
        admin_socket = %config.admin_socket.display(),
        database = store.backend(),
        secrets = %config.secrets_dir.display()
    );
    for sig in signals.forever() {
        if sig == SIGHUP {
            info!(message = "SIGHUP: nothing to reload in the control plane.");
            continue;
        }
        info!(message = "Control plane stopping.", signal = sig);
        break;
    }
    // Closing the channel stops the publisher and the API (graceful: requests in flight finish).
    drop(stop_tx);
    feed.close();
    let _ = publisher.join();
    let _ = api.join();
    for path in [&config.socket, &config.api_socket, &config.admin_socket] {
        let _ = fs::remove_file(path);
    }
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
