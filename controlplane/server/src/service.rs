//! The control plane's moving parts, started by [`crate::run`]:
//!
//! 1. the store, opened from the database URL and migrated; the first-start accounts;
//! 2. the **publisher** thread: compiles the store into a policy snapshot and publishes it to the
//!    [`Feed`] at start and on every change event (NOTIFY on PostgreSQL, in-process on SQLite),
//!    with a periodic re-read as a safety net;
//! 3. the control link ([`crate::link`]), pushing each new snapshot to every data plane and
//!    answering its password checks and audit records with the API's state and runtime;
//! 4. the REST API on the API and admin sockets ([`crate::api`]), on a small tokio runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, select};
use rampart_credentials::AmtSecretStore;
use rampart_store::Store;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::Error;
use crate::api::{self, AppState, Inner, Keys, now_ms};
use crate::audit::Audit;
use crate::compile::compile;
use crate::feed::Feed;
use crate::throttle::{Throttle, ThrottlePolicy};

/// How often the publisher re-reads the store even without a change event.
pub const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// Starts the publisher thread. It stops when `stop` is closed or sent to.
pub fn spawn_publisher(
    store: Arc<dyn Store>,
    feed: Arc<Feed>,
    credential_key: Zeroizing<[u8; 32]>,
    limits: rampart_policy::snapshot::Limits,
    stop: Receiver<()>,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let changes = store.changes();
    std::thread::Builder::new()
        .name("rampart-cp-publish".into())
        .spawn(move || {
            let mut last: Option<u64> = None;
            loop {
                publish_once(&*store, &feed, &credential_key, &limits, &mut last);
                select! {
                    recv(changes) -> msg => {
                        if msg.is_err() {
                            warn!(message = "Store change events ended; re-reading on a timer only.");
                            if stop.recv_timeout(RESYNC_EVERY).is_ok() { return; }
                        }
                    }
                    recv(stop) -> _ => return,
                    default(RESYNC_EVERY) => {}
                }
            }
        })
        .map_err(|source| Error::Io {
            context: "starting the publisher thread".into(),
            source,
        })
}

/// Reads the store and publishes a snapshot if the generation moved.
pub fn publish_once(
    store: &dyn Store,
    feed: &Feed,
    key: &[u8; 32],
    limits: &rampart_policy::snapshot::Limits,
    last: &mut Option<u64>,
) {
    let now = now_ms();
    let data = match store.policy_data(now) {
        Ok(d) => d,
        Err(error) => {
            warn!(message = "Cannot read the policy; data planes keep the last snapshot.", %error);
            return;
        }
    };
    if *last == Some(data.generation) {
        return;
    }
    let compiled = compile(&data, key, *limits, now);
    for warning in &compiled.warnings {
        warn!(message = "Record left out of the policy snapshot.", reason = %warning);
    }
    let bytes = match rampart_policy::snapshot::encode(&compiled.snapshot) {
        Ok(b) => b,
        Err(error) => {
            warn!(message = "Cannot encode the policy snapshot; data planes keep the last one.", %error);
            return;
        }
    };
    info!(
        message = "Policy snapshot compiled.",
        generation = data.generation,
        accounts = compiled.snapshot.accounts.len(),
        acls = compiled.snapshot.acls.len(),
        api_keys = compiled.snapshot.api_keys.len(),
        devices = compiled.snapshot.devices.len(),
        bytes = bytes.len()
    );
    feed.publish(data.generation, bytes);
    *last = Some(data.generation);
}

/// What the API needs besides the store.
#[derive(Debug)]
pub struct ApiSettings {
    /// The API socket (the HTTPS front's way in).
    pub api_socket: PathBuf,
    /// The admin socket (the local CLI's way in).
    pub admin_socket: PathBuf,
    /// Web session lifetime.
    pub session_ttl: Duration,
    /// The CA certificate served at `/ciracert` (what AMT devices are provisioned to trust for
    /// CIRA); none: 404.
    pub cira_ca: Option<PathBuf>,
    /// The data plane's CIRA channel service (WS-MAN to devices goes through it).
    pub channel_socket: PathBuf,
    /// The relay socket the data plane asks about redirection sessions on.
    pub relay_socket: PathBuf,
}

/// Runs both API sockets on a tokio runtime in a background thread until `stop` is dropped
/// or sent to.
pub fn spawn_api(
    settings: ApiSettings,
    store: Arc<dyn Store>,
    credential_key: Zeroizing<[u8; 32]>,
    amt: AmtSecretStore,
    audit: Audit,
    feed: Arc<Feed>,
    stop: Receiver<()>,
) -> Result<std::thread::JoinHandle<()>, Error> {
    build_api(settings, store, credential_key, amt, audit, feed)?.spawn(stop)
}

/// The API, built and bound but not yet serving: its state and runtime are what the control
/// link needs to answer password checks and store audit records ([`Api::link_services`]).
#[derive(Debug)]
pub struct Api {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    api_std: std::os::unix::net::UnixListener,
    admin_std: std::os::unix::net::UnixListener,
    relay_std: std::os::unix::net::UnixListener,
}

/// Binds both API sockets and builds the API's state (with the login throttle and the Argon2
/// pool) and its tokio runtime.
pub fn build_api(
    settings: ApiSettings,
    store: Arc<dyn Store>,
    credential_key: Zeroizing<[u8; 32]>,
    amt: AmtSecretStore,
    audit: Audit,
    feed: Arc<Feed>,
) -> Result<Api, Error> {
    let api_std = crate::bind_socket(&settings.api_socket)?;
    let admin_std = crate::bind_socket(&settings.admin_socket)?;
    let relay_std = crate::bind_socket(&settings.relay_socket)?;
    for l in [&api_std, &admin_std, &relay_std] {
        l.set_nonblocking(true).map_err(|source| Error::Io {
            context: "setting the API socket non-blocking".into(),
            source,
        })?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .thread_name("rampart-cp-api")
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting the API runtime".into(),
            source,
        })?;
    let state = AppState::new(Inner {
        store,
        keys: Keys {
            credential: credential_key,
        },
        amt: Arc::new(amt),
        audit,
        throttle: Throttle::new(ThrottlePolicy::default()),
        feed,
        session_ttl: settings.session_ttl,
        cira_ca: settings.cira_ca,
        amt_client: Arc::new(crate::amt::AmtClient::new(settings.channel_socket)),
        relay: Arc::new(crate::relay::Relay::default()),
        argon2_slots: tokio::sync::Semaphore::new(api::ARGON2_SLOTS),
    });
    Ok(Api {
        runtime,
        state,
        api_std,
        admin_std,
        relay_std,
    })
}

impl Api {
    /// What the control link needs from the API: the same state (store, audit log, login
    /// throttle, Argon2 pool) and runtime. Valid until the API thread ends.
    pub fn link_services(&self) -> crate::link::Services {
        crate::link::Services::new(self.state.clone(), self.runtime.handle().clone())
    }

    /// Serves both sockets on a background thread until `stop` is dropped or sent to.
    pub fn spawn(self, stop: Receiver<()>) -> Result<std::thread::JoinHandle<()>, Error> {
        let Api {
            runtime,
            state,
            api_std,
            admin_std,
            relay_std,
        } = self;
        std::thread::Builder::new()
            .name("rampart-cp-api-main".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let (tx, rx) = tokio::sync::watch::channel(false);
                    std::thread::spawn(move || {
                        let _ = stop.recv();
                        let _ = tx.send(true);
                    });
                    let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                        let _ = rx.wait_for(|v| *v).await;
                    };
                    let api = match tokio::net::UnixListener::from_std(api_std) {
                        Ok(l) => l,
                        Err(error) => {
                            warn!(message = "Cannot serve the API socket.", %error);
                            return;
                        }
                    };
                    let admin = match tokio::net::UnixListener::from_std(admin_std) {
                        Ok(l) => l,
                        Err(error) => {
                            warn!(message = "Cannot serve the admin socket.", %error);
                            return;
                        }
                    };
                    match tokio::net::UnixListener::from_std(relay_std) {
                        Ok(l) => {
                            tokio::spawn(crate::relay::serve(l, state.clone()));
                        }
                        Err(error) => {
                            warn!(message = "Cannot serve the relay socket.", %error);
                            return;
                        }
                    }
                    let (a, b) = tokio::join!(
                        api::serve_api(api, state.clone(), shutdown(rx.clone())),
                        api::serve_admin(admin, state, shutdown(rx)),
                    );
                    for r in [a, b] {
                        if let Err(error) = r {
                            warn!(message = "API server stopped with an error.", %error);
                        }
                    }
                });
            })
            .map_err(|source| Error::Io {
                context: "starting the API thread".into(),
                source,
            })
    }
}
