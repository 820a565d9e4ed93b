//! The audit log (留痕) of who saw residents' personal numbers in full: every
//! time the console shows a person's full ID or phone number, who, when and which
//! document — never the values. An append-only SQLite file, `audit.db`, in the
//! relay's data folder (each node's own folder when several nodes share a
//! PostgreSQL database), written before the page is shown: if the record cannot
//! be written, the page shows the numbers masked.

use std::path::Path;

use chrono::{DateTime, Utc};
use gridsync_core::{DocId, RegionCode, UserId};
use rusqlite::{params, Connection};

/// The file's name in the data folder.
pub const FILE: &str = "audit.db";

/// One recorded view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub user: String,
    /// What was done (`identity_view`).
    pub action: String,
    /// Which document.
    pub doc: String,
}

fn open(data: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(data.join(FILE))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(
        None,
        "journal_size_limit",
        gridsync_core::db::WAL_SIZE_LIMIT,
    )?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY,
            at_ms INTEGER NOT NULL,
            user TEXT NOT NULL,
            action TEXT NOT NULL,
            doc_id TEXT NOT NULL
         );
         CREATE TRIGGER IF NOT EXISTS audit_append_only_u BEFORE UPDATE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
         CREATE TRIGGER IF NOT EXISTS audit_append_only_d BEFORE DELETE ON audit
         BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    )?;
    Ok(conn)
}

/// Record that `user` saw the full personal numbers of `doc`; durable when this
/// returns.
pub fn record(data: &Path, user: &UserId, action: &str, doc: &DocId) -> rusqlite::Result<()> {
    open(data)?.execute(
        "INSERT INTO audit (at_ms, user, action, doc_id) VALUES (?1, ?2, ?3, ?4)",
        params![
            Utc::now().timestamp_millis(),
            user.as_str(),
            action,
            doc.as_str()
        ],
    )?;
    Ok(())
}

/// Record that `user` exported the registry of `region` (masked, but names,
/// addresses and groups of a whole region); durable when this returns.
pub fn record_export(data: &Path, user: &UserId, region: &RegionCode) -> rusqlite::Result<()> {
    open(data)?.execute(
        "INSERT INTO audit (at_ms, user, action, doc_id) VALUES (?1, ?2, 'export', ?3)",
        params![
            Utc::now().timestamp_millis(),
            user.as_str(),
            region.as_str()
        ],
    )?;
    Ok(())
}

/// The last `limit` entries, newest first (for `gridsync admin audit` and tests).
pub fn recent(data: &Path, limit: u32) -> rusqlite::Result<Vec<AuditEntry>> {
    let conn = open(data)?;
    let mut stmt =
        conn.prepare("SELECT at_ms, user, action, doc_id FROM audit ORDER BY seq DESC LIMIT ?1")?;
    let rows = stmt
        .query_map([limit], |r| {
            Ok(AuditEntry {
                at: DateTime::from_timestamp_millis(r.get(0)?).unwrap_or_default(),
                user: r.get(1)?,
                action: r.get(2)?,
                doc: r.get(3)?,
            })
        })?
        .collect();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_recorded_newest_first_and_cannot_be_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let user: UserId = "cd-339901001001".parse().unwrap();
        let (a, b) = (
            DocId::new(gridsync_core::DocKind::Person),
            DocId::new(gridsync_core::DocKind::Person),
        );
        record(dir.path(), &user, "identity_view", &a).unwrap();
        record(dir.path(), &user, "identity_view", &b).unwrap();
        let seen = recent(dir.path(), 10).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].doc, b.to_string());
        assert_eq!(seen[1].user, "cd-339901001001");
        let conn = open(dir.path()).unwrap();
        assert!(conn.execute("DELETE FROM audit", []).is_err());
        assert!(conn.execute("UPDATE audit SET user = 'x'", []).is_err());
        assert_eq!(recent(dir.path(), 10).unwrap().len(), 2);
    }
}
