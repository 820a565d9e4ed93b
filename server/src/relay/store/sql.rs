//! The little SQL both databases share: values, rows, a transaction to run
//! statements in, and the database that runs transactions. The relay's storage
//! logic ([`super::SqlStore`]) is written once over these, in SQL both SQLite and
//! PostgreSQL accept (`?N` placeholders, rewritten to `$N` for PostgreSQL).

use super::{StoreError, StoreResult};

/// One value passed to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (SQLite INTEGER, PostgreSQL BIGINT).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA).
    Bytes(Vec<u8>),
    /// A boolean (SQLite stores it as an integer).
    Bool(bool),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Statement arguments: `args![a, b, c]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { &[$($crate::relay::store::sql::Value::from($v)),*] };
}
pub(crate) use args;

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub(super) Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> StoreResult<&Value> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::failed(format!("a row has no column {i}")))
    }

    fn wrong(i: usize, want: &str, got: &Value) -> StoreError {
        StoreError::failed(format!("column {i}: expected {want}, found {got:?}"))
    }

    /// An integer, or NULL.
    pub fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            Value::Bool(b) => Ok(Some(i64::from(*b))),
            other => Err(Self::wrong(i, "an integer", other)),
        }
    }

    /// An integer.
    pub fn int(&self, i: usize) -> StoreResult<i64> {
        self.opt_int(i)?
            .ok_or_else(|| Self::wrong(i, "an integer", &Value::Null))
    }

    /// A count or position: an integer, negatives read as 0.
    pub fn count(&self, i: usize) -> StoreResult<u64> {
        Ok(self.int(i)?.max(0) as u64)
    }

    /// A boolean (SQLite answers integers).
    pub fn bool(&self, i: usize) -> StoreResult<bool> {
        Ok(self.int(i)? != 0)
    }

    /// Text, or NULL.
    pub fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            other => Err(Self::wrong(i, "text", other)),
        }
    }

    /// Text.
    pub fn text(&self, i: usize) -> StoreResult<String> {
        self.opt_text(i)?
            .ok_or_else(|| Self::wrong(i, "text", &Value::Null))
    }

    /// Text parsed as an id.
    pub fn parse<T: std::str::FromStr>(&self, i: usize) -> StoreResult<T> {
        let s = self.text(i)?;
        s.parse()
            .map_err(|_| StoreError::failed(format!("column {i}: a malformed id")))
    }

    /// Bytes.
    pub fn bytes(&self, i: usize) -> StoreResult<Vec<u8>> {
        match self.at(i)? {
            Value::Bytes(b) => Ok(b.clone()),
            other => Err(Self::wrong(i, "bytes", other)),
        }
    }
}

/// A transaction: statements run in it see each other's effects and commit
/// together.
pub trait Tx {
    /// Run a statement; the number of rows it changed.
    fn exec(&mut self, sql: &str, args: &[Value]) -> StoreResult<u64>;
    /// Run a query; every row it answers.
    fn rows(&mut self, sql: &str, args: &[Value]) -> StoreResult<Vec<Row>>;
    /// The first row a query answers, if any.
    fn row(&mut self, sql: &str, args: &[Value]) -> StoreResult<Option<Row>> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }
    /// Wait for, then hold to the commit, the lock of photo `hash` across every
    /// node of a shared database (PostgreSQL's READ COMMITTED: the statements
    /// after it see what committed before it was granted). Nothing where one
    /// writer runs at a time (SQLite).
    fn lock_photo(&mut self, _hash: &str) -> StoreResult<()> {
        Ok(())
    }
    /// The first row a query answers, which it must.
    fn one(&mut self, sql: &str, args: &[Value]) -> StoreResult<Row> {
        self.row(sql, args)?
            .ok_or_else(|| StoreError::failed("a query answered no row"))
    }
}

/// What a transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads only, each one statement: on PostgreSQL they run without BEGIN and
    /// COMMIT, so two statements would see two snapshots (use `Write` for reads
    /// that must agree).
    Read,
    /// Writes.
    Write,
    /// Appends to the change log: such transactions run one at a time, so the
    /// sequence numbers they take become visible in order and a pull never moves a
    /// cursor past a change still being committed.
    Append,
}

/// Something held until dropped (a lock).
pub trait Held {}
impl<T> Held for T {}

/// A database the relay's store runs on.
pub trait Database: Send + Sync + 'static {
    /// Run `f` in one transaction, committed if it answers `Ok`, rolled back
    /// otherwise.
    fn transaction<T>(
        &self,
        mode: Mode,
        f: impl FnOnce(&mut dyn Tx) -> StoreResult<T>,
    ) -> StoreResult<T>;
    /// Take the lock every push holds while it checks changes against the replica
    /// and logs them, across every node on this database.
    fn lock_pushes(&self) -> StoreResult<Box<dyn Held + '_>>;
    /// Whether several nodes may share this database.
    fn shared(&self) -> bool;
    /// How many of its connections can work at once (threads beyond them wait).
    fn connections(&self) -> usize;
    /// After an erasure: make deleted rows unreadable on disk (SQLite: empty the
    /// WAL; PostgreSQL: rewrite the log and scope tables).
    fn scrub(&self) -> StoreResult<()>;
}
