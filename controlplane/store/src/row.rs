//! The small value layer both backends speak: bound parameters, result cells, and a reader
//! that turns a row into typed fields without ever panicking on what the database returned.

use std::fmt;

use crate::{Result, StoreError};

/// A bound query parameter. Borrowed, so binding copies nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Param<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (all integer columns are `BIGINT` / `INTEGER`).
    Int(i64),
    /// A boolean (`BOOLEAN` on PostgreSQL, `INTEGER` 0/1 on SQLite).
    Bool(bool),
    /// Text.
    Text(&'a str),
    /// Bytes (`BYTEA` / `BLOB`).
    Blob(&'a [u8]),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Blob(v)
    }
}

impl<'a> From<&'a [u8; 32]> for Param<'a> {
    fn from(v: &'a [u8; 32]) -> Self {
        Param::Blob(v)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    /// SQL NULL.
    Null,
    /// Any integer column.
    Int(i64),
    /// A PostgreSQL boolean.
    Bool(bool),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A result row.
pub(crate) type Row = Vec<Cell>;

/// The error for a row the store cannot make sense of. Names the table and column, never the
/// value (it could be a credential in the wrong place).
pub(crate) fn corrupt(table: &str, column: &str, what: impl fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt row in {table}: column {column}: {what}"))
}

/// Reads a row's columns in order, checking each one's type.
#[derive(Debug)]
pub(crate) struct Reader {
    cells: std::vec::IntoIter<Cell>,
    table: &'static str,
}

impl Reader {
    /// A reader over `row`, which came from `table` (for error messages).
    pub(crate) fn new(row: Row, table: &'static str) -> Reader {
        Reader {
            cells: row.into_iter(),
            table,
        }
    }

    /// The error for a bad value in `column`.
    pub(crate) fn bad(&self, column: &str, what: impl fmt::Display) -> StoreError {
        corrupt(self.table, column, what)
    }

    fn next(&mut self, column: &str) -> Result<Cell> {
        self.cells
            .next()
            .ok_or_else(|| corrupt(self.table, column, "missing"))
    }

    /// A nullable integer.
    pub(crate) fn opt_int(&mut self, column: &str) -> Result<Option<i64>> {
        match self.next(column)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(v)),
            _ => Err(self.bad(column, "not an integer")),
        }
    }

    /// An integer.
    pub(crate) fn int(&mut self, column: &str) -> Result<i64> {
        self.opt_int(column)?
            .ok_or_else(|| self.bad(column, "unexpected NULL"))
    }

    /// A non-negative integer as `u64`.
    pub(crate) fn uint(&mut self, column: &str) -> Result<u64> {
        let v = self.int(column)?;
        u64::try_from(v).map_err(|_| self.bad(column, "negative"))
    }

    /// A boolean (PostgreSQL `BOOLEAN` or SQLite 0/1).
    pub(crate) fn bool(&mut self, column: &str) -> Result<bool> {
        match self.next(column)? {
            Cell::Bool(v) => Ok(v),
            Cell::Int(0) => Ok(false),
            Cell::Int(1) => Ok(true),
            _ => Err(self.bad(column, "not a boolean")),
        }
    }

    /// Nullable text.
    pub(crate) fn opt_text(&mut self, column: &str) -> Result<Option<String>> {
        match self.next(column)? {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v)),
            _ => Err(self.bad(column, "not text")),
        }
    }

    /// Text.
    pub(crate) fn text(&mut self, column: &str) -> Result<String> {
        self.opt_text(column)?
            .ok_or_else(|| self.bad(column, "unexpected NULL"))
    }

    /// Nullable bytes.
    pub(crate) fn opt_blob(&mut self, column: &str) -> Result<Option<Vec<u8>>> {
        match self.next(column)? {
            Cell::Null => Ok(None),
            Cell::Blob(v) => Ok(Some(v)),
            _ => Err(self.bad(column, "not bytes")),
        }
    }

    /// A nullable 32-byte digest.
    pub(crate) fn opt_digest(&mut self, column: &str) -> Result<Option<[u8; 32]>> {
        match self.opt_blob(column)? {
            None => Ok(None),
            Some(v) => <[u8; 32]>::try_from(v.as_slice())
                .map(Some)
                .map_err(|_| self.bad(column, format_args!("{} bytes, not 32", v.len()))),
        }
    }

    /// A 32-byte digest.
    pub(crate) fn digest(&mut self, column: &str) -> Result<[u8; 32]> {
        self.opt_digest(column)?
            .ok_or_else(|| self.bad(column, "unexpected NULL"))
    }

    /// Text parsed by `parse` (the model's enum parsers).
    pub(crate) fn parsed<T>(&mut self, column: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
        let s = self.text(column)?;
        parse(&s).ok_or_else(|| self.bad(column, "unknown value"))
    }

    /// Nullable text parsed by `parse`.
    pub(crate) fn opt_parsed<T>(
        &mut self,
        column: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(s) => parse(&s)
                .map(Some)
                .ok_or_else(|| self.bad(column, "unknown value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_wrong_types_without_panicking() {
        let row = vec![
            Cell::Text("x".into()),
            Cell::Int(2),
            Cell::Blob(vec![1, 2, 3]),
            Cell::Int(-1),
            Cell::Text("nope".into()),
        ];
        let mut r = Reader::new(row, "t");
        assert!(
            matches!(r.int("a"), Err(StoreError::Backend(m)) if m.contains("corrupt row in t"))
        );
        assert!(r.bool("b").is_err());
        let e = r.digest("c").unwrap_err().to_string();
        assert!(e.contains("3 bytes, not 32"), "{e}");
        assert!(r.uint("d").is_err());
        assert!(r.parsed("e", crate::Role::parse).is_err());
        assert!(r.text("f").is_err(), "missing column");
    }

    #[test]
    fn params_from_options() {
        assert_eq!(Param::from(None::<&str>), Param::Null);
        assert_eq!(Param::from(Some(5i64)), Param::Int(5));
        let d = [7u8; 32];
        assert_eq!(Param::from(Some(&d)), Param::Blob(&d));
    }
}
