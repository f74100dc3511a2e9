//! The SQLite backend (bundled SQLite through `rusqlite`): the zero-setup default.
//!
//! - **Files:** the parent directory is created `0700` if missing and the database file
//!   `0600`; SQLite creates its `-wal`/`-shm` files with the database file's mode.
//! - **Pool:** a fixed set of connections passed around in a bounded crossbeam channel (take one,
//!   give it back on drop). The workspace bans `std::sync::Mutex`, and the channel is all the
//!   locking a handful of blocking connections needs.
//! - **Locking:** WAL journal, so readers never block the writer nor each other; every read runs
//!   in a deferred transaction (one consistent snapshot), every write in `BEGIN IMMEDIATE` so
//!   writers queue on SQLite's lock under `busy_timeout` instead of failing on a lock upgrade.
//!   `foreign_keys=ON` on every connection for the cascades, `synchronous=FULL` because these
//!   writes are rare and security-relevant.
//! - **Change events:** in-process only. A transaction that bumped the generation publishes it
//!   after it commits. Another process writing the same file is not heard (use PostgreSQL for
//!   several control planes).
//! - **Migrations:** the shared migrator ([`crate::migrate`]), each step in a `BEGIN IMMEDIATE`
//!   transaction, which also serialises two processes starting on one file.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior, ffi};

use crate::events::Events;
use crate::migrate::{self, Migration};
use crate::row::{Cell, Param, Row};
use crate::sql::{Backend, Conn};
use crate::{Result, StoreError};

/// The schema, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "init",
    sql: include_str!("../migrations/sqlite/V1__init.sql"),
}];

/// Connections in the pool.
const POOL_SIZE: usize = 4;
/// How long SQLite waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite backend.
pub(crate) struct Sqlite {
    give: Sender<Connection>,
    take: Receiver<Connection>,
    events: Events,
    path: PathBuf,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn io_err(what: &str, path: &Path, e: &io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

/// Maps a driver error: unique/primary key → `Conflict`, foreign key → `NotFound`.
fn map_err(e: &rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = e {
        match f.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return StoreError::Conflict;
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return StoreError::NotFound,
            _ => {}
        }
    }
    StoreError::Backend(format!("SQLite: {e}"))
}

/// Opens (creating if needed) the database at `path`, migrates it, and fills the pool.
pub(crate) fn open(path: &str) -> Result<Sqlite> {
    let path = PathBuf::from(path);
    prepare_files(&path)?;

    let mut first = connect(&path)?;
    let mode: String = first
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| map_err(&e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "SQLite refused WAL mode (journal_mode is {mode})"
        )));
    }
    let latest = migrate::latest(MIGRATIONS);
    for m in MIGRATIONS {
        run_tx(&mut first, TransactionBehavior::Immediate, None, |c| {
            migrate::step(c, m, latest)
        })?;
    }

    let (give, take) = crossbeam_channel::bounded(POOL_SIZE);
    let add = |c: Connection| {
        give.try_send(c)
            .map_err(|_| StoreError::Backend("SQLite pool overfilled".into()))
    };
    add(first)?;
    for _ in 1..POOL_SIZE {
        add(connect(&path)?)?;
    }
    Ok(Sqlite {
        give,
        take,
        events: Events::start()?,
        path,
    })
}

/// Creates the parent directory (0700) and the database file (0600) if missing.
fn prepare_files(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| io_err("creating directory", parent, &e))?;
    }
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::metadata(path).map_err(|e| io_err("reading", path, &e))?;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    message = "Database file is readable by other users.",
                    path = %path.display(),
                    mode = format_args!("{:o}", meta.permissions().mode() & 0o777)
                );
            }
        }
        Err(e) => return Err(io_err("creating", path, &e)),
    }
    Ok(())
}

fn connect(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let c = Connection::open_with_flags(path, flags).map_err(|e| map_err(&e))?;
    c.busy_timeout(BUSY_TIMEOUT).map_err(|e| map_err(&e))?;
    c.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| map_err(&e))?;
    c.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| map_err(&e))?;
    let fk: i64 = c
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(|e| map_err(&e))?;
    if fk != 1 {
        return Err(StoreError::Backend(
            "SQLite was built without foreign key support".into(),
        ));
    }
    Ok(c)
}

// === transactions ===

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Param::Null => ToSqlOutput::Owned(Value::Null),
            Param::Int(v) => ToSqlOutput::Owned(Value::Integer(v)),
            Param::Bool(v) => ToSqlOutput::Owned(Value::Integer(i64::from(v))),
            Param::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Param::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

/// Rewrites `$n` placeholders as SQLite's `?n` (our SQL has no `$` anywhere else).
fn placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn cell(v: ValueRef<'_>) -> Result<Cell> {
    Ok(match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(_) => {
            return Err(StoreError::Backend(
                "corrupt row: unexpected floating-point value".into(),
            ));
        }
        ValueRef::Text(t) => Cell::Text(
            String::from_utf8(t.to_vec())
                .map_err(|_| StoreError::Backend("corrupt row: text is not UTF-8".into()))?,
        ),
        ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
    })
}

struct SqliteTx<'a> {
    tx: rusqlite::Transaction<'a>,
    announced: Option<u64>,
}

impl Conn for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let mut stmt = self
            .tx
            .prepare_cached(&placeholders(sql))
            .map_err(|e| map_err(&e))?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params))
            .map_err(|e| map_err(&e))?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let mut stmt = self
            .tx
            .prepare_cached(&placeholders(sql))
            .map_err(|e| map_err(&e))?;
        let width = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(|e| map_err(&e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| map_err(&e))? {
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                cells.push(cell(row.get_ref(i).map_err(|e| map_err(&e))?)?);
            }
            out.push(cells);
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        self.tx.execute_batch(sql).map_err(|e| map_err(&e))
    }

    fn announce(&mut self, generation: u64) -> Result<()> {
        self.announced = Some(generation);
        Ok(())
    }
}

fn run_tx<R>(
    conn: &mut Connection,
    behavior: TransactionBehavior,
    events: Option<&Events>,
    f: impl FnOnce(&mut dyn Conn) -> Result<R>,
) -> Result<R> {
    let tx = conn
        .transaction_with_behavior(behavior)
        .map_err(|e| map_err(&e))?;
    let mut c = SqliteTx {
        tx,
        announced: None,
    };
    // On error `c` drops and the transaction rolls back.
    let r = f(&mut c)?;
    let announced = c.announced;
    c.tx.commit().map_err(|e| map_err(&e))?;
    if let (Some(events), Some(generation)) = (events, announced) {
        events.publish(generation);
    }
    Ok(r)
}

/// A connection checked out of the pool; goes back on drop.
struct Checkout<'a> {
    conn: Option<Connection>,
    give: &'a Sender<Connection>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = self.give.try_send(c);
        }
    }
}

impl Sqlite {
    fn with_conn<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R>) -> Result<R> {
        let conn = self
            .take
            .recv_timeout(CHECKOUT_TIMEOUT)
            .map_err(|_| StoreError::Backend("timed out waiting for a SQLite connection".into()))?;
        let mut out = Checkout {
            conn: Some(conn),
            give: &self.give,
        };
        match out.conn.as_mut() {
            Some(c) => f(c),
            None => Err(StoreError::Backend("SQLite pool lost a connection".into())),
        }
    }
}

impl Backend for Sqlite {
    const NAME: &'static str = "sqlite";

    fn read<R>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<R>) -> Result<R> {
        self.with_conn(|c| run_tx(c, TransactionBehavior::Deferred, None, f))
    }

    fn write<R>(&self, f: impl FnOnce(&mut dyn Conn) -> Result<R>) -> Result<R> {
        self.with_conn(|c| run_tx(c, TransactionBehavior::Immediate, Some(&self.events), f))
    }

    fn ping(&self) -> Result<()> {
        self.with_conn(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|e| map_err(&e))
        })
    }

    fn changes(&self) -> Receiver<u64> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_placeholders() {
        assert_eq!(placeholders("a = $1 AND b = $12"), "a = ?1 AND b = ?12");
        assert_eq!(placeholders("no params"), "no params");
        assert_eq!(placeholders("x$y"), "x$y");
    }
}
