//! The control plane's store: one [`Store`] trait, two backends chosen by the database URL.
//!
//! - `postgres://` / `postgresql://`: PostgreSQL (production), pooled, TLS by rustls, change
//!   events by `LISTEN/NOTIFY` so every control plane on the database hears every change.
//! - `sqlite://<path>` or `sqlite:<path>`: bundled SQLite, the zero-setup default of
//!   `rampart up`; change events are in-process.
//!
//! Every write that changes what the data plane enforces (accounts, ACLs, API keys, devices)
//! bumps the **policy generation** in the same transaction and announces it on
//! [`Store::changes`]. Writes that do not (sessions, audit, key last-use, device connection
//! state) leave it alone.
//!
//! The store validates nothing beyond its schema's constraints (uniqueness, foreign keys):
//! names, GUIDs and topic filters are checked by the API layer before they get here. It never
//! sees a plaintext secret: credentials arrive as Argon2 PHC strings or keyed digests, AMT
//! passwords sealed.
//!
//! # Design
//!
//! Both backends share one implementation of the trait (`sql.rs`): each query is written once
//! in SQL that PostgreSQL and SQLite both accept, with every value bound as a parameter. A
//! backend supplies only transactions, error mapping (unique violation → [`StoreError::Conflict`],
//! foreign-key violation → [`StoreError::NotFound`]) and change events. Rows are decoded
//! defensively: a value the model cannot represent (an unknown enum spelling, a digest of the
//! wrong length) is a [`StoreError::Backend`] naming the table and column, never a panic.
//!
//! Migrations are hand-written rather than `refinery`: the runner is ~60 lines, the two
//! backends need different locks around it (`pg_advisory_xact_lock`, `BEGIN IMMEDIATE`) and
//! a "schema newer than this build" refusal, and refinery's `rusqlite` feature pins rusqlite
//! versions apart from ours. The SQL lives in `migrations/{postgres,sqlite}/V<n>__<name>.sql`.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod model;

mod events;
mod migrate;
mod pg;
mod row;
mod sql;
mod sqlite;

pub use model::*;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key is taken (account name, API key id, device GUID).
    #[error("already exists")]
    Conflict,
    /// The database URL is malformed or names an unknown scheme.
    #[error("bad database URL: {0}")]
    Url(String),
    /// A migration failed or the database's schema is newer than this build.
    #[error("migration: {0}")]
    Migration(String),
    /// The database failed or is unreachable. The message never contains credentials.
    #[error("database: {0}")]
    Backend(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The store. Blocking: call it from control-plane threads, never from data-plane cores.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Which backend: `"postgres"` or `"sqlite"`.
    fn backend(&self) -> &'static str;

    /// Checks the database answers (for `/health`).
    fn ping(&self) -> Result<()>;

    /// The current policy generation.
    fn generation(&self) -> Result<u64>;

    /// A receiver of policy generations, one message per committed change (from this process
    /// or, on PostgreSQL, from any process on the same database). Messages may coalesce;
    /// receivers should re-read [`Store::policy_data`], not count messages.
    fn changes(&self) -> crossbeam_channel::Receiver<u64>;

    /// Everything the snapshot needs, in one consistent read. `now` decides which API keys
    /// have expired.
    fn policy_data(&self, now: Millis) -> Result<PolicyData>;

    // Accounts.

    /// Creates an account. `Conflict` if the name is taken.
    fn create_account(&self, new: &NewAccount, now: Millis) -> Result<Account>;
    /// One account by name.
    fn account(&self, name: &str) -> Result<Account>;
    /// All accounts, by name.
    fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Changes an account.
    fn update_account(&self, name: &str, update: &AccountUpdate, now: Millis) -> Result<Account>;
    /// Deletes an account with its ACL rules and sessions (API keys it created stay, attributed).
    fn delete_account(&self, name: &str) -> Result<()>;

    // ACLs.

    /// Adds a rule. A `User` subject must name an existing account (`NotFound` otherwise).
    fn add_acl(&self, new: &NewAclRule, now: Millis) -> Result<AclRule>;
    /// All rules, by id.
    fn list_acls(&self) -> Result<Vec<AclRule>>;
    /// Deletes a rule.
    fn delete_acl(&self, id: i64) -> Result<()>;

    // API keys.

    /// Records a new key. `Conflict` if the key id is taken.
    fn create_api_key(&self, new: &NewApiKey, now: Millis) -> Result<ApiKey>;
    /// One key by its public id (revoked and expired keys included: the caller decides).
    fn api_key(&self, key_id: &str) -> Result<ApiKey>;
    /// All keys, by id.
    fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes a key by store id. Revoking a revoked key is `Ok` and keeps the first time.
    fn revoke_api_key(&self, id: i64, now: Millis) -> Result<ApiKey>;
    /// Records use of a key (does not bump the generation).
    fn touch_api_key(&self, key_id: &str, now: Millis) -> Result<()>;

    // Devices.

    /// Creates a device. `Conflict` if the GUID is on the list already.
    fn create_device(&self, new: &NewDevice, now: Millis) -> Result<Device>;
    /// One device by GUID.
    fn device(&self, guid: &str) -> Result<Device>;
    /// Devices matching `query`, by GUID, and the number matching before paging.
    fn list_devices(&self, query: &DeviceQuery) -> Result<(Vec<Device>, u64)>;
    /// Distinct tags of all devices, sorted.
    fn device_tags(&self) -> Result<Vec<String>>;
    /// Changes a device.
    fn update_device(&self, guid: &str, update: &DeviceUpdate, now: Millis) -> Result<Device>;
    /// Removes a device from the allowlist.
    fn delete_device(&self, guid: &str) -> Result<()>;
    /// Records connection state (does not bump the generation).
    fn set_device_connection(&self, guid: &str, connection: &DeviceConnection) -> Result<()>;
    /// Applies one data plane's connection report in one transaction (does not bump the
    /// generation). A connect records the node, the connect time and the last-seen time; a
    /// disconnect records its time, but only where the device is still recorded on that node
    /// (a late disconnect from a node the device left must not undo its newer connection
    /// elsewhere). A full report also disconnects, at `now`, every device recorded as
    /// connected to the node that it does not list as connected. Last-seen times never move
    /// backwards. Unknown GUIDs are ignored.
    fn record_connections(
        &self,
        report: &ConnectionReport,
        now: Millis,
    ) -> Result<ConnectionsRecorded>;
    /// Records every device connected to `node` (or, with `None`, every connected device) as
    /// disconnected at `now`: its data plane went away, or the control plane just started.
    /// Returns how many.
    fn disconnect_devices(&self, node: Option<&str>, now: Millis) -> Result<u64>;

    // Sessions.

    /// Stores a session.
    fn create_session(&self, session: &Session) -> Result<()>;
    /// One session by token digest (expired ones included: the caller decides).
    fn session(&self, token_digest: &[u8; 32]) -> Result<Session>;
    /// Deletes one session.
    fn delete_session(&self, token_digest: &[u8; 32]) -> Result<()>;
    /// Deletes sessions that expired before `now`; returns how many.
    fn purge_sessions(&self, now: Millis) -> Result<u64>;

    // Audit.

    /// Appends a record; returns it with its id.
    fn append_audit(&self, event: &AuditEvent) -> Result<AuditEvent>;
    /// Records matching `query`, newest first.
    fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>>;
}

/// Opens the store a URL names, runs its migrations, and returns it.
///
/// `postgres://` and `postgresql://` select PostgreSQL; `sqlite://PATH` or `sqlite:PATH`
/// select SQLite (a relative PATH is relative to the working directory). PostgreSQL uses TLS
/// when the URL says `sslmode=require` (verified against `tls_ca`, or without one the Mozilla
/// roots bundled by `webpki-roots`).
///
/// SQLite creates the file (mode 0600) and its parent directory (0700) if they are missing.
/// Errors never contain the URL's password.
pub fn open(url: &str, options: &OpenOptions) -> Result<std::sync::Arc<dyn Store>> {
    match scheme(url) {
        Some(Scheme::Postgres) => Ok(std::sync::Arc::new(sql::SqlStore::new(pg::open(
            url, options,
        )?))),
        Some(Scheme::Sqlite(path)) => {
            if path.is_empty() {
                return Err(StoreError::Url(
                    "sqlite URL has no path: use sqlite://PATH or sqlite:PATH".into(),
                ));
            }
            if path == ":memory:" || path.contains('?') {
                // Each pooled connection would get its own in-memory database; and SQLite
                // options are not taken from the URL (the store sets them itself).
                return Err(StoreError::Url(
                    "sqlite URL must name a file, without ?options (in-memory databases are \
                     not supported)"
                        .into(),
                ));
            }
            Ok(std::sync::Arc::new(sql::SqlStore::new(sqlite::open(path)?)))
        }
        None => {
            // Only the scheme is shown: the rest may hold a password.
            let shown = url.split_once(':').map_or("(none)", |(s, _)| s);
            let shown: String = shown.chars().take(20).collect();
            Err(StoreError::Url(format!(
                "unknown database URL scheme {shown:?}: use postgres://, postgresql://, \
                 sqlite://PATH or sqlite:PATH"
            )))
        }
    }
}

enum Scheme<'a> {
    Postgres,
    Sqlite(&'a str),
}

fn scheme(url: &str) -> Option<Scheme<'_>> {
    let (scheme, rest) = url.split_once(':')?;
    if scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql") {
        return rest.starts_with("//").then_some(Scheme::Postgres);
    }
    if scheme.eq_ignore_ascii_case("sqlite") {
        return Some(Scheme::Sqlite(rest.strip_prefix("//").unwrap_or(rest)));
    }
    None
}

/// Options for [`open`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// PEM file of the CA that signs the PostgreSQL server's certificate (for `sslmode=require`).
    pub tls_ca: Option<std::path::PathBuf>,
    /// Password to use when the URL has none (read from the secrets directory's `dbpass`).
    pub password: Option<String>,
    /// Pool size (PostgreSQL).
    pub pool_size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_are_refused_without_echoing_secrets() {
        for url in [
            "mysql://root:hunter2@db/x",
            "hunter2",
            "/var/lib/rampart/db.sqlite3",
            "postgres:hunter2",
        ] {
            let e = open(url, &OpenOptions::default()).unwrap_err();
            assert!(matches!(e, StoreError::Url(_)), "{url}: {e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        for url in [
            "sqlite://",
            "sqlite::memory:",
            "sqlite://db.sqlite3?mode=rwc",
        ] {
            assert!(
                matches!(open(url, &OpenOptions::default()), Err(StoreError::Url(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn sqlite_paths() {
        assert!(matches!(
            scheme("sqlite:///abs/db"),
            Some(Scheme::Sqlite("/abs/db"))
        ));
        assert!(matches!(
            scheme("sqlite://rel/db"),
            Some(Scheme::Sqlite("rel/db"))
        ));
        assert!(matches!(
            scheme("sqlite:rel/db"),
            Some(Scheme::Sqlite("rel/db"))
        ));
        assert!(matches!(
            scheme("SQLite:/abs"),
            Some(Scheme::Sqlite("/abs"))
        ));
        assert!(matches!(
            scheme("postgresql://h/db"),
            Some(Scheme::Postgres)
        ));
    }
}
