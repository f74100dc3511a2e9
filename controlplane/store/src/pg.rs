//! The PostgreSQL backend.
//!
//! - **Client:** the synchronous `postgres` crate (it runs a private current-thread tokio
//!   runtime per connection), so the store stays blocking like the trait. Control-plane threads
//!   only.
//! - **Pool:** `r2d2` + `r2d2_postgres`, sized by [`OpenOptions::pool_size`] (default 8),
//!   opening one connection eagerly and the rest on demand; connections are checked on
//!   checkout so a restarted server is survived.
//! - **TLS:** rustls (ring provider) through `tokio-postgres-rustls`, when the URL says
//!   `sslmode=require` (`verify-ca` and `verify-full` are accepted as synonyms: rustls always
//!   verifies the chain *and* the host name). Trust anchors are the PEM in
//!   [`OpenOptions::tls_ca`] or, without one, the Mozilla roots of `webpki-roots`. `disable`
//!   or no `sslmode` means plain TCP; `prefer`/`allow` are refused because they downgrade
//!   silently.
//! - **Transactions:** writes run at READ COMMITTED; every write that changes policy bumps the
//!   single `meta` row (`UPDATE ... RETURNING`), which serialises policy writers, and calls
//!   `pg_notify('rampart_policy', generation)` in the same transaction, so the notification
//!   leaves exactly when the change commits. Reads that must be consistent
//!   ([`Store::policy_data`](crate::Store::policy_data), device paging) run READ ONLY at
//!   REPEATABLE READ.
//! - **Change events:** a dedicated connection on a background thread `LISTEN`s on
//!   `rampart_policy` and forwards generations to every [`Store::changes`] receiver, whichever
//!   process made the change. If the connection drops it reconnects with exponential backoff
//!   (100 ms to 5 s) and then re-reads and announces the generation, since a change may have
//!   been missed meanwhile. The thread stops when the store is dropped.
//! - **Migrations:** the shared migrator ([`crate::migrate`]), each step under
//!   `pg_advisory_xact_lock`, so several control planes starting at once apply each migration
//!   once.
//! - **Secrets:** the URL and password never appear in errors or logs: messages come from the
//!   driver (which does not echo them) and are scrubbed of the password anyway.
//!
//! [`Store::changes`]: crate::Store::changes

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::tls::NoTls;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, Config, IsolationLevel};
use r2d2_postgres::PostgresConnectionManager;
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::events::Events;
use crate::migrate::{self, Migration};
use crate::row::{Cell, Param, Row};
use crate::sql::{Backend, Conn};
use crate::{OpenOptions, Result, StoreError};

/// The schema, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "init",
    sql: include_str!("../migrations/postgres/V1__init.sql"),
}];

/// The NOTIFY channel for policy generations.
const CHANNEL: &str = "rampart_policy";
/// Key of the advisory lock migrations hold ("rampart" + 0x01).
const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(8243124417016362753)";
/// Default pool size.
const DEFAULT_POOL: u32 = 8;
/// How long a caller waits for a pooled connection, and a new connection for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the listener wakes to check for shutdown.
const LISTEN_POLL: Duration = Duration::from_millis(200);
/// How often the listener checks an idle connection is alive.
const LISTEN_HEALTH: Duration = Duration::from_secs(30);
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

// === opening ===

/// How to connect (plain or TLS).
#[derive(Clone)]
enum Connector {
    Plain,
    Tls(MakeRustlsConnect),
}

impl Connector {
    fn connect(&self, config: &Config) -> std::result::Result<Client, postgres::Error> {
        match self {
            Connector::Plain => config.connect(NoTls),
            Connector::Tls(t) => config.connect(t.clone()),
        }
    }
}

enum Pool {
    Plain(r2d2::Pool<PostgresConnectionManager<NoTls>>),
    Tls(r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>),
}

/// The PostgreSQL backend.
pub(crate) struct Pg {
    pool: Pool,
    events: Events,
    shutdown: Arc<AtomicBool>,
    tls: bool,
    pool_size: u32,
    secrets: Secrets,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No config: it holds the password.
        f.debug_struct("Pg")
            .field("tls", &self.tls)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }
}

/// Opens the database `url` names, migrates it, and starts the change listener.
pub(crate) fn open(url: &str, options: &OpenOptions) -> Result<Pg> {
    let secrets = Secrets::new(url, options);
    let (config, tls) = parse_url(url, options, &secrets)?;
    let connector = match tls {
        false => Connector::Plain,
        true => Connector::Tls(MakeRustlsConnect::new(tls_config(options)?)),
    };

    // One direct connection first: it fails fast and clearly if the server is unreachable,
    // runs the migrations, and then becomes the listener.
    let mut client = connector
        .connect(&config)
        .map_err(|e| backend_err("connecting to PostgreSQL", &e, &secrets))?;
    migrate(&mut client, &secrets)?;

    let pool_size = if options.pool_size == 0 {
        DEFAULT_POOL
    } else {
        options.pool_size
    };
    let pool = match &connector {
        Connector::Plain => build_pool(pool_size, &config, NoTls).map(Pool::Plain),
        Connector::Tls(t) => build_pool(pool_size, &config, t.clone()).map(Pool::Tls),
    }
    .map_err(|e| backend_err("opening the connection pool", &e, &secrets))?;

    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(|e| backend_err("listening for changes", &e, &secrets))?;
    let events = Events::start()?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let listener = Listener {
        config,
        connector,
        events: events.clone(),
        shutdown: shutdown.clone(),
        secrets: secrets.clone(),
    };
    thread::Builder::new()
        .name("rampart-store-listen".into())
        .spawn(move || listener.run(client))
        .map_err(|e| StoreError::Backend(format!("starting the change listener: {e}")))?;

    Ok(Pg {
        pool,
        events,
        shutdown,
        tls,
        pool_size,
        secrets,
    })
}

fn build_pool<T>(
    size: u32,
    config: &Config,
    tls: T,
) -> std::result::Result<r2d2::Pool<PostgresConnectionManager<T>>, r2d2::Error>
where
    T: postgres::tls::MakeTlsConnect<postgres::Socket> + Clone + Send + Sync + 'static,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as postgres::tls::TlsConnect<postgres::Socket>>::Future: Send,
{
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(CONNECT_TIMEOUT)
        .build(PostgresConnectionManager::new(config.clone(), tls))
}

fn migrate(client: &mut Client, secrets: &Secrets) -> Result<()> {
    let latest = migrate::latest(MIGRATIONS);
    for m in MIGRATIONS {
        run_tx(client, true, secrets, |c| {
            c.batch(MIGRATION_LOCK)?;
            migrate::step(c, m, latest)
        })?;
    }
    Ok(())
}

/// The value of `name` in the URL's query string, if present.
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// Parses the URL into a driver config; `true` if TLS is required.
fn parse_url(url: &str, options: &OpenOptions, secrets: &Secrets) -> Result<(Config, bool)> {
    let mut url = Cow::Borrowed(url);
    let tls = match query_param(&url, "sslmode") {
        None | Some("disable") => false,
        Some("require") => true,
        Some(mode @ ("verify-ca" | "verify-full")) => {
            // The driver knows only `require`; with rustls it verifies as much as these do.
            let from = format!("sslmode={mode}");
            url = Cow::Owned(url.replacen(&from, "sslmode=require", 1));
            true
        }
        Some("prefer" | "allow") => {
            return Err(StoreError::Url(
                "sslmode=prefer/allow would silently fall back to plain text: use \
                 sslmode=require (verified TLS) or sslmode=disable"
                    .into(),
            ));
        }
        Some(_) => {
            return Err(StoreError::Url(
                "unknown sslmode: use require, verify-full, verify-ca or disable".into(),
            ));
        }
    };
    let mut config: Config = url
        .parse()
        .map_err(|e: postgres::Error| StoreError::Url(secrets.scrub(&error_chain(&e))))?;
    config.ssl_mode(if tls {
        postgres::config::SslMode::Require
    } else {
        postgres::config::SslMode::Disable
    });
    if config.get_password().is_none()
        && let Some(p) = &options.password
    {
        config.password(p);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("rampart-controlplane");
    }
    Ok((config, tls))
}

/// The rustls client config: TLS 1.2+/ring, trusting `tls_ca` or the webpki roots.
fn tls_config(options: &OpenOptions) -> Result<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match &options.tls_ca {
        Some(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| StoreError::Backend(format!("reading TLS CA file {shown}: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    StoreError::Backend(format!("reading TLS CA file {shown}: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    StoreError::Backend(format!("TLS CA file {shown} has a bad certificate: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(StoreError::Backend(format!(
                    "TLS CA file {shown} holds no certificate"
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

// === secrets and errors ===

/// The password forms to scrub from any message.
#[derive(Clone, Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn new(url: &str, options: &OpenOptions) -> Secrets {
        let mut s = Vec::new();
        if let Some(raw) = url_password(url) {
            s.push(percent_decode(raw));
            s.push(raw.to_owned());
        }
        if let Some(p) = &options.password {
            s.push(p.clone());
        }
        s.retain(|p| !p.is_empty());
        Secrets(s)
    }

    fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_owned();
        for p in &self.0 {
            if out.contains(p.as_str()) {
                out = out.replace(p.as_str(), "***");
            }
        }
        out
    }
}

/// The password in `scheme://user:password@host/...`, still percent-encoded.
fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let userinfo = authority.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, p)| p)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An error with its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        source = s.source();
    }
    msg
}

fn backend_err(context: &str, e: &dyn std::error::Error, secrets: &Secrets) -> StoreError {
    StoreError::Backend(secrets.scrub(&format!("{context}: {}", error_chain(e))))
}

/// Maps a driver error: unique violation → `Conflict`, foreign key → `NotFound`.
fn map_err(e: &postgres::Error, secrets: &Secrets) -> StoreError {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict,
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => StoreError::NotFound,
        _ => backend_err("PostgreSQL", e, secrets),
    }
}

// === transactions ===

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(v) => match *ty {
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Param::Bool(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql` (the driver's own impls reject a wrong type there).
        true
    }

    to_sql_checked!();
}

fn cells(row: &postgres::Row) -> std::result::Result<Row, postgres::Error> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_();
        let cell = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Cell::Int(v.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?
                .map(|v| Cell::Int(v.into()))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(Cell::Bool)
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Blob)
        } else {
            // TEXT, VARCHAR, NAME...; anything else fails here as a driver error.
            row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
        };
        out.push(cell.unwrap_or(Cell::Null));
    }
    Ok(out)
}

struct PgTx<'a, 's> {
    tx: postgres::Transaction<'a>,
    secrets: &'s Secrets,
}

impl Conn for PgTx<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.tx
            .execute(sql, &refs)
            .map_err(|e| map_err(&e, self.secrets))
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let rows = self
            .tx
            .query(sql, &refs)
            .map_err(|e| map_err(&e, self.secrets))?;
        rows.iter()
            .map(|r| cells(r).map_err(|e| map_err(&e, self.secrets)))
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        self.tx
            .batch_execute(sql)
            .map_err(|e| map_err(&e, self.secrets))
    }

    fn announce(&mut self, generation: u64) -> Result<()> {
        // Delivered by the server when (and only if) this transaction commits.
        let payload = generation.to_string();
        self.tx
            .execute(
                "SELECT pg_notify('rampart_policy', $1)",
                &[&payload.as_str()],
            )
            .map(drop)
            .map_err(|e| map_err(&e, self.secrets))
    }
}

fn run_tx<R>(
    client: &mut Client,
    write: bool,
    secrets: &Secrets,
    f: impl FnOnce(&mut dyn Conn) -> Result<R>,
) -> Result<R> {
    let tx = if write {
        client.transaction()
    } else {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
    }
    .map_err(|e| map_err(&e, secrets))?;
    let mut conn = PgTx { tx, secrets };
    // On error `conn` drops and the transaction rolls back.
    let r = f(&mut conn)?;
    conn.tx.commit().map_err(|e| map_err(&e, secrets))?;
    Ok(r)
}

impl Pg {
    fn with_client<R>(&self, f: impl FnOnce(&mut Client) -> Result<R>) -> Result<R> {
        let pool_err = |e: r2d2::Error| {
            StoreError::Backend(
                self.secrets
                    .scrub(&format!("no PostgreSQL connection available: {e}")),
            )
        };
        match &self.pool {
            Pool::Plain(p) => f(&mut *p.get().map_err(pool_err)?),
            Pool::Tls(p) => f(&mut *p.get().map_err(pool_err)?),
        }
    }
}

impl Backend for Pg {
    const NAME: &'static str = "postgres";

    fn read<R>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<R>) -> Result<R> {
        self.with_client(|c| run_tx(c, false, &self.secrets, f))
    }

    fn write<R>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<R>) -> Result<R> {
        self.with_client(|c| run_tx(c, true, &self.secrets, f))
    }

    fn ping(&self) -> Result<()> {
        self.with_client(|c| {
            c.simple_query("SELECT 1")
                .map(drop)
                .map_err(|e| map_err(&e, &self.secrets))
        })
    }

    fn changes(&self) -> Receiver<u64> {
        self.events.subscribe()
    }
}

// === listener ===

struct Listener {
    config: Config,
    connector: Connector,
    events: Events,
    shutdown: Arc<AtomicBool>,
    secrets: Secrets,
}

impl Listener {
    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    fn run(self, client: Client) {
        let mut client = Some(client);
        let mut checked = Instant::now();
        while !self.stopping() {
            let Some(c) = client.as_mut() else {
                client = self.reconnect();
                checked = Instant::now();
                continue;
            };
            let next = c.notifications().timeout_iter(LISTEN_POLL).next();
            match next {
                Ok(Some(n)) => {
                    if n.channel() != CHANNEL {
                        continue;
                    }
                    match n.payload().parse::<u64>() {
                        Ok(generation) => {
                            if !self.events.publish(generation) {
                                return;
                            }
                        }
                        Err(_) => tracing::debug!(message = "Ignored a malformed notification."),
                    }
                }
                Ok(None) => {
                    if c.is_closed() {
                        tracing::warn!(message = "PostgreSQL change listener disconnected.");
                        client = None;
                    } else if checked.elapsed() >= LISTEN_HEALTH {
                        checked = Instant::now();
                        if let Err(e) = c.is_valid(CONNECT_TIMEOUT) {
                            let error = self.secrets.scrub(&error_chain(&e));
                            tracing::warn!(message = "PostgreSQL change listener lost.", %error);
                            client = None;
                        }
                    }
                }
                Err(e) => {
                    if self.stopping() {
                        return;
                    }
                    let error = self.secrets.scrub(&error_chain(&e));
                    tracing::warn!(message = "PostgreSQL change listener lost.", %error);
                    client = None;
                }
            }
        }
    }

    /// Reconnects with backoff; `None` once the store is dropped.
    fn reconnect(&self) -> Option<Client> {
        let mut delay = BACKOFF_MIN;
        loop {
            if self.stopping() {
                return None;
            }
            match self.try_connect() {
                Ok((client, generation)) => {
                    tracing::info!(
                        message = "PostgreSQL change listener reconnected.",
                        generation
                    );
                    // A change may have happened while we were away.
                    if !self.events.publish(generation) {
                        return None;
                    }
                    return Some(client);
                }
                Err(error) => {
                    tracing::warn!(
                        message = "PostgreSQL change listener cannot reconnect.",
                        %error,
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
                    );
                }
            }
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.stopping() {
                    return None;
                }
                thread::sleep(Duration::from_millis(50));
            }
            delay = (delay * 2).min(BACKOFF_MAX);
        }
    }

    fn try_connect(&self) -> std::result::Result<(Client, u64), String> {
        let err = |e: postgres::Error| self.secrets.scrub(&error_chain(&e));
        let mut client = self.connector.connect(&self.config).map_err(err)?;
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .map_err(err)?;
        let row = client
            .query_one("SELECT generation FROM meta WHERE id = 1", &[])
            .map_err(err)?;
        let generation: i64 = row.try_get(0).map_err(err)?;
        let generation = u64::try_from(generation).map_err(|_| "negative generation".to_owned())?;
        Ok((client, generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_password() {
        assert_eq!(url_password("postgres://u:p%40ss@h/db"), Some("p%40ss"));
        assert_eq!(url_password("postgres://u@h/db"), None);
        assert_eq!(url_password("postgres://h/db?x=a:b@c"), None);
        assert_eq!(percent_decode("p%40ss%zz%4"), "p@ss%zz%4");
        let s = Secrets::new("postgres://u:p%40ss@h/db", &OpenOptions::default());
        assert_eq!(s.scrub("a p@ss b p%40ss"), "a *** b ***");
    }

    #[test]
    fn sslmode_handling() {
        let o = OpenOptions::default();
        let s = Secrets::default();
        let (c, tls) = parse_url("postgres://u@h/db", &o, &s).unwrap();
        assert!(!tls);
        assert_eq!(c.get_application_name(), Some("rampart-controlplane"));
        assert!(
            parse_url("postgres://u@h/db?sslmode=require", &o, &s)
                .unwrap()
                .1
        );
        assert!(
            parse_url("postgres://u@h/db?sslmode=verify-full", &o, &s)
                .unwrap()
                .1
        );
        assert!(
            !parse_url("postgres://u@h/db?sslmode=disable", &o, &s)
                .unwrap()
                .1
        );
        assert!(matches!(
            parse_url("postgres://u@h/db?sslmode=prefer", &o, &s),
            Err(StoreError::Url(_))
        ));
        assert!(matches!(
            parse_url("postgres://u@h/db?sslmode=bogus", &o, &s),
            Err(StoreError::Url(_))
        ));
    }

    #[test]
    fn password_from_options_only_when_url_has_none() {
        let o = OpenOptions {
            password: Some("fromfile".into()),
            ..OpenOptions::default()
        };
        let s = Secrets::default();
        let (c, _) = parse_url("postgres://u@h/db", &o, &s).unwrap();
        assert_eq!(c.get_password(), Some(&b"fromfile"[..]));
        let (c, _) = parse_url("postgres://u:inurl@h/db", &o, &s).unwrap();
        assert_eq!(c.get_password(), Some(&b"inurl"[..]));
    }

    #[test]
    fn bad_url_error_has_no_password() {
        let url = "postgres://u:hunter2@h/db?bogus_option=1";
        let s = Secrets::new(url, &OpenOptions::default());
        let e = parse_url(url, &OpenOptions::default(), &s).unwrap_err();
        assert!(matches!(e, StoreError::Url(_)));
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
