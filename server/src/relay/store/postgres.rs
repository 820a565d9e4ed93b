//! PostgreSQL, for several stateless nodes on one database: a pool of connections,
//! each keeping its prepared statements; appends and pushes serialised across the
//! nodes by advisory locks; migrations run once, by whichever node takes the
//! migration lock first.

use std::collections::HashMap;

use postgres::types::{IsNull, ToSql, Type};
use postgres::{Client, GenericClient, NoTls, Statement};

use super::sql::{Database, Held, Mode, Row, Tx, Value};
use super::{StoreError, StoreResult};

/// Advisory lock keys ("grid" and a number), one per purpose.
const MIGRATE_LOCK: i64 = 0x6772_6964_0001;
const LOG_LOCK: i64 = 0x6772_6964_0002;
const PUSH_LOCK: i64 = 0x6772_6964_0003;

/// Connections per node.
const POOL_SIZE: u32 = 16;

/// The same schema as SQLite's: its first four steps in one (there were no
/// PostgreSQL relays before it), then one step for each of SQLite's later ones.
/// Grids compare bytewise (`COLLATE "C"`), as in SQLite, for the region-prefix
/// ranges.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE enrollments (
        code_hash  BYTEA PRIMARY KEY,
        user_id    TEXT NOT NULL,
        expires_ms BIGINT NOT NULL,
        used_ms    BIGINT,
        device_id  TEXT,
        relay      BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE devices (
        device_id    TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL,
        token_hash   BYTEA NOT NULL UNIQUE,
        app_version  TEXT NOT NULL,
        enrolled_ms  BIGINT NOT NULL,
        expires_ms   BIGINT NOT NULL,
        revoked_ms   BIGINT,
        last_seen_ms BIGINT,
        last_cursor  BIGINT NOT NULL DEFAULT 0,
        last_page    BIGINT NOT NULL DEFAULT 0,
        relay        BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE log (
        seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        hash        BYTEA NOT NULL UNIQUE,
        doc_id      TEXT NOT NULL,
        device_id   TEXT NOT NULL,
        bytes       BYTEA NOT NULL,
        received_ms BIGINT NOT NULL
    );
    CREATE INDEX log_doc ON log (doc_id, seq);
    CREATE TABLE doc_scope (
        doc_id TEXT PRIMARY KEY,
        grid   TEXT COLLATE "C" NOT NULL,
        dept   TEXT
    );
    CREATE INDEX doc_scope_grid ON doc_scope (grid);
    CREATE INDEX doc_scope_dept ON doc_scope (dept);
    CREATE TABLE device_docs (
        device_id TEXT NOT NULL,
        doc_id    TEXT NOT NULL,
        sent_page BIGINT NOT NULL,
        PRIMARY KEY (device_id, doc_id)
    );
    CREATE TABLE blobs (
        pos       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        hash      TEXT PRIMARY KEY,
        size      BIGINT NOT NULL,
        stored_ms BIGINT NOT NULL
    );
    CREATE TABLE doc_photos (
        doc_id   TEXT NOT NULL,
        hash     TEXT NOT NULL,
        added_by TEXT NOT NULL,
        PRIMARY KEY (doc_id, hash)
    );
    CREATE INDEX doc_photos_hash ON doc_photos (hash);
    CREATE TABLE console_accounts (
        user_id       TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        device_id     TEXT NOT NULL UNIQUE
    );
    CREATE TABLE console_sessions (
        token_hash BYTEA PRIMARY KEY,
        user_id    TEXT NOT NULL,
        csrf       TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX console_sessions_user ON console_sessions (user_id);
"#,
    r#"
    -- Token rotation, as SQLite's fifth step.
    ALTER TABLE devices ADD COLUMN next_token_hash BYTEA UNIQUE;
    ALTER TABLE devices ADD COLUMN token_issued_ms BIGINT NOT NULL DEFAULT 0;
    UPDATE devices SET token_issued_ms = enrolled_ms;
    CREATE TABLE retired_tokens (
        token_hash BYTEA PRIMARY KEY,
        device_id  TEXT NOT NULL,
        retired_ms BIGINT NOT NULL
    );
    CREATE INDEX retired_tokens_device ON retired_tokens (device_id, retired_ms);
"#,
    r#"
    -- Erasures, as SQLite's sixth step.
    CREATE TABLE erased (
        doc_id    TEXT PRIMARY KEY,
        erased_ms BIGINT NOT NULL,
        reason    TEXT NOT NULL
    );
    CREATE INDEX erased_time ON erased (erased_ms);
"#,
    r#"
    -- Outbound notifications, as SQLite's seventh step.
    CREATE TABLE notifications (
        id         BIGSERIAL PRIMARY KEY,
        doc_id     TEXT NOT NULL,
        rule       TEXT NOT NULL,
        recipient  TEXT NOT NULL,
        occurrence TEXT NOT NULL,
        payload    TEXT NOT NULL,
        state      TEXT NOT NULL,
        attempts   BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        next_ms    BIGINT NOT NULL,
        done_ms    BIGINT,
        detail     TEXT,
        UNIQUE (doc_id, rule, recipient, occurrence)
    );
    CREATE INDEX notifications_due ON notifications (state, next_ms);
    CREATE INDEX notifications_sent ON notifications (recipient, done_ms);
"#,
    r#"
    -- Enrollment at scale, as SQLite's eighth step.
    ALTER TABLE enrollments ADD COLUMN issued_ms BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE enrollments ADD COLUMN issued_by TEXT;
    ALTER TABLE enrollments ADD COLUMN revoked_ms BIGINT;
    CREATE INDEX enrollments_issued ON enrollments (issued_ms);
"#,
    r#"
    -- Users who left, as SQLite's ninth step.
    CREATE TABLE disabled_users (
        user_id     TEXT PRIMARY KEY,
        disabled_ms BIGINT NOT NULL,
        disabled_by TEXT
    );
"#,
    r#"
    -- The directory's revisions, as SQLite's tenth step.
    CREATE TABLE directory_versions (
        revision   BIGINT PRIMARY KEY,
        json       TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        created_by TEXT,
        note       TEXT NOT NULL
    );
    INSERT INTO directory_versions (revision, json, created_ms, created_by, note)
        SELECT 1, value, 0, NULL, 'kept from before revisions' FROM meta WHERE key = 'directory';
    DELETE FROM meta WHERE key = 'directory';
    CREATE TABLE former_placements (
        user_id   TEXT NOT NULL,
        user_json TEXT NOT NULL,
        until_ms  BIGINT NOT NULL,
        revision  BIGINT NOT NULL
    );
    CREATE INDEX former_placements_until ON former_placements (until_ms);
    ALTER TABLE devices ADD COLUMN directory_revision BIGINT NOT NULL DEFAULT 0;
"#,
    r#"
    -- Tiers: refused upward changes and missed photos, as SQLite's eleventh step.
    CREATE TABLE upstream_refusals (
        hash     BYTEA PRIMARY KEY,
        doc_id   TEXT NOT NULL,
        status   TEXT NOT NULL,
        reason   TEXT NOT NULL,
        first_ms BIGINT NOT NULL,
        last_ms  BIGINT NOT NULL,
        attempts BIGINT NOT NULL
    );
    CREATE INDEX upstream_refusals_doc ON upstream_refusals (doc_id);
    CREATE TABLE upstream_photo_misses (
        hash     TEXT PRIMARY KEY,
        attempts BIGINT NOT NULL,
        next_ms  BIGINT NOT NULL
    );
"#,
    r#"
    -- When the relay received each case timeline entry (the first time), by its
    -- own clock (docs/reliability.md, clocks).
    CREATE TABLE entry_receipts (
        doc_id      TEXT NOT NULL,
        entry_id    TEXT NOT NULL,
        received_ms BIGINT NOT NULL,
        PRIMARY KEY (doc_id, entry_id)
    );
"#,
];

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // The driver's messages never hold the password; a constraint's DETAIL may
        // name a key (an id or hash), which only reaches the server's log.
        use postgres::error::SqlState;
        let transient = e.is_closed()
            || e.code().is_some_and(|c| {
                [
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::LOCK_NOT_AVAILABLE,
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::QUERY_CANCELED,
                ]
                .contains(c)
            });
        if transient {
            StoreError::transient(e.to_string())
        } else {
            StoreError::failed(e.to_string())
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::transient(format!("no database connection: {e}"))
    }
}

/// One connection and the statements prepared on it.
pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// Set when a lock could not be released: the connection is closed rather
    /// than returned to the pool holding it.
    poisoned: bool,
}

struct Manager(postgres::Config);

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        let mut client = self.0.connect(NoTls)?;
        // No request waits on a lock for long (the push lock of a node that froze
        // while holding it, a row lock): the request fails and the device retries.
        client.batch_execute("SET lock_timeout = '60s'")?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
            poisoned: false,
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.poisoned || conn.client.is_closed()
    }
}

/// A PostgreSQL database shared by every node.
pub struct PgDb {
    pool: r2d2::Pool<Manager>,
    /// This node's pushes queue here, not on pooled connections: only one of
    /// them waits for the lock across nodes, and the rest of the pool stays free
    /// for the one holding it.
    pushes: std::sync::Mutex<()>,
}

impl PgDb {
    /// Connect to `url` (`postgres://user:password@host:port/database`) and bring
    /// the schema up to date, once across nodes starting together.
    pub fn open(url: &str) -> StoreResult<Self> {
        let mut config: postgres::Config = url.parse().map_err(|e| {
            StoreError::failed(format!("database_url is not a PostgreSQL URL: {e}"))
        })?;
        // A node that vanishes (and the push lock its session holds) is noticed in
        // about a minute, not TCP's default two hours.
        config
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(30))
            .keepalives_interval(std::time::Duration::from_secs(10))
            .keepalives_retries(3);
        let mut client = config.connect(NoTls)?;
        migrate(&mut client)?;
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            // A broken connection is noticed when it is returned (`has_broken`)
            // or used; testing each one on checkout would cost a round trip per
            // transaction.
            .test_on_check_out(false)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(Manager(config))?;
        Ok(PgDb {
            pool,
            pushes: std::sync::Mutex::new(()),
        })
    }
}

/// Apply the migrations this database lacks, holding the migration lock: a node
/// that starts while another migrates waits, then finds the schema current.
fn migrate(client: &mut Client) -> StoreResult<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])?;
    let result = (|| -> StoreResult<()> {
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_ms BIGINT NOT NULL
             )",
        )?;
        let version: i64 = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                &[],
            )?
            .try_get(0)?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::failed(format!(
                "the database has schema version {version}, newer than this server"
            )));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let mut tx = client.transaction()?;
            tx.batch_execute(step)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                &[&(i as i64 + 1), &chrono::Utc::now().timestamp_millis()],
            )?;
            tx.commit()?;
            tracing::info!(version = i + 1, "database migrated");
        }
        Ok(())
    })();
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK])?;
    result
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Bytes(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// `?N` placeholders (as SQLite writes them) in PostgreSQL's `$N`.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// Statements on a connection or in a transaction, prepared once per connection.
struct PgTx<'a, C> {
    conn: &'a mut C,
    statements: &'a mut HashMap<String, Statement>,
}

impl<C: GenericClient> PgTx<'_, C> {
    fn statement(&mut self, sql: &str) -> StoreResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.conn.prepare(&dollar_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

fn params(args: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn value(row: &postgres::Row, i: usize) -> StoreResult<Value> {
    let ty = row.columns()[i].type_().clone();
    let v = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Value::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Value::Int(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(Value::Bool),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            row.try_get::<_, Option<String>>(i)?.map(Value::Text)
        }
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes),
        other => {
            return Err(StoreError::failed(format!(
                "column {i}: unexpected type {other}"
            )))
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

impl<C: GenericClient> Tx for PgTx<'_, C> {
    fn lock_photo(&mut self, hash: &str) -> StoreResult<()> {
        // A key of its own per photo: the first 15 hex digits of its hash
        // (ids unlike the log's and the pushes' locks but by chance).
        let key = hash
            .get(..15)
            .and_then(|h| i64::from_str_radix(h, 16).ok())
            .ok_or_else(|| StoreError::failed("not a photo hash"))?;
        self.exec("SELECT pg_advisory_xact_lock(?1)", &[Value::Int(key)])?;
        Ok(())
    }

    fn exec(&mut self, sql: &str, args: &[Value]) -> StoreResult<u64> {
        let stmt = self.statement(sql)?;
        Ok(self.conn.execute(&stmt, &params(args))?)
    }

    fn rows(&mut self, sql: &str, args: &[Value]) -> StoreResult<Vec<Row>> {
        let stmt = self.statement(sql)?;
        self.conn
            .query(&stmt, &params(args))?
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| value(r, i))
                    .collect::<StoreResult<_>>()
            })
            .map(|values| values.map(Row))
            .collect()
    }
}

/// The push lock, released when dropped: the database's, then this node's.
struct PushGuard<'a> {
    conn: r2d2::PooledConnection<Manager>,
    _node: std::sync::MutexGuard<'a, ()>,
}

impl Drop for PushGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self
            .conn
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&PUSH_LOCK])
        {
            tracing::error!(error = %e, "could not release the push lock; closing its connection");
            self.conn.poisoned = true;
        }
    }
}

impl Database for PgDb {
    fn transaction<T>(
        &self,
        mode: Mode,
        f: impl FnOnce(&mut dyn Tx) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.pool.get()?;
        let PgConn {
            client, statements, ..
        } = &mut *conn;
        if mode == Mode::Read {
            // One statement, one snapshot: no BEGIN and COMMIT round trips.
            return f(&mut PgTx {
                conn: client,
                statements,
            });
        }
        let mut tx = client.transaction()?;
        let out = {
            let mut t = PgTx {
                conn: &mut tx,
                statements,
            };
            if mode == Mode::Append {
                // Held to the commit: the sequence numbers this transaction takes
                // are visible before the next append takes any.
                t.exec("SELECT pg_advisory_xact_lock(?1)", &[Value::Int(LOG_LOCK)])?;
            }
            f(&mut t)?
        };
        tx.commit()?;
        Ok(out)
    }

    fn lock_pushes(&self) -> StoreResult<Box<dyn Held + '_>> {
        let node = self.pushes.lock().unwrap_or_else(|e| e.into_inner());
        let mut conn = self.pool.get()?;
        conn.client
            .execute("SELECT pg_advisory_lock($1)", &[&PUSH_LOCK])?;
        Ok(Box::new(PushGuard { conn, _node: node }))
    }

    fn shared(&self) -> bool {
        true
    }

    fn connections(&self) -> usize {
        POOL_SIZE as usize
    }

    fn scrub(&self) -> StoreResult<()> {
        // Deleted rows stay in the table files as dead tuples until the table is
        // rewritten; VACUUM cannot run inside a transaction.
        let mut conn = self.pool.get()?;
        conn.client.batch_execute(
            "VACUUM (FULL) log, doc_scope, doc_photos, blobs, entry_receipts, notifications, \
                 upstream_photo_misses, upstream_refusals, meta",
        )?;
        Ok(())
    }
}
