//! A small versioned migrator, shared by both backends.
//!
//! Migrations are SQL files embedded at build time (`migrations/<backend>/V<n>__<name>.sql`).
//! Each one runs in its own transaction together with its row in `schema_migrations`, after
//! the backend has taken a database-wide lock for that transaction (PostgreSQL:
//! `pg_advisory_xact_lock`; SQLite: `BEGIN IMMEDIATE`), so concurrent starts apply each
//! migration exactly once. A database whose schema is newer than this build is refused.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::row::{Param, Reader};
use crate::sql::Conn;
use crate::{Result, StoreError};

/// One schema migration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Version, from 1, increasing by one.
    pub(crate) version: i64,
    /// Short name (the file name's part after `__`).
    pub(crate) name: &'static str,
    /// The SQL, possibly several statements.
    pub(crate) sql: &'static str,
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY, \
     name TEXT NOT NULL, \
     applied_at BIGINT NOT NULL)";

/// Applies `migration` unless it is there already. Runs inside a transaction that already holds
/// the backend's migration lock. Fails if the database knows a version newer than `latest`.
pub(crate) fn step(c: &mut dyn Conn, migration: &Migration, latest: i64) -> Result<bool> {
    c.batch(CREATE_TABLE)?;
    let row = c.query_one("SELECT MAX(version) FROM schema_migrations", &[])?;
    let current = Reader::new(row, "schema_migrations")
        .opt_int("version")?
        .unwrap_or(0);
    if current > latest {
        return Err(StoreError::Migration(format!(
            "the database schema is at version {current}, newer than this build knows \
             (up to {latest}); run a newer build or restore a matching backup"
        )));
    }
    let applied = c
        .query_opt(
            "SELECT version FROM schema_migrations WHERE version = $1",
            &[Param::Int(migration.version)],
        )?
        .is_some();
    if applied {
        return Ok(false);
    }
    c.batch(migration.sql).map_err(|e| {
        StoreError::Migration(format!(
            "V{}__{} failed: {e}",
            migration.version, migration.name
        ))
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    c.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        &[
            Param::Int(migration.version),
            Param::Text(migration.name),
            Param::Int(now),
        ],
    )?;
    tracing::info!(
        message = "Applied database migration.",
        version = migration.version,
        name = migration.name
    );
    Ok(true)
}

/// The highest version in `migrations`.
pub(crate) fn latest(migrations: &[Migration]) -> i64 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous() {
        for set in [crate::pg::MIGRATIONS, crate::sqlite::MIGRATIONS] {
            for (i, m) in set.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            }
        }
        assert_eq!(
            latest(crate::pg::MIGRATIONS),
            latest(crate::sqlite::MIGRATIONS)
        );
    }
}
