//! The SQLite schema, as versioned migrations. Each step runs once, in one
//! IMMEDIATE transaction, and bumps `PRAGMA user_version`. Never edit a step that
//! has shipped: add a new one.

use rusqlite::Connection;

/// `PRAGMA application_id` of every gridsync database ("GRDS"), so a foreign SQLite
/// file is recognised and left alone.
pub const APPLICATION_ID: i32 = 0x4752_4453;

/// Migration steps; step `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: documents, changes, outbox, directory, and the case/patrol index.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    CREATE TABLE directory (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        json      TEXT NOT NULL,
        loaded_ms INTEGER NOT NULL
    ) STRICT;

    -- One row per Automerge document: the compacted snapshot; the changes made
    -- since it are in doc_changes.
    CREATE TABLE docs (
        doc_id     TEXT PRIMARY KEY,
        kind       TEXT NOT NULL CHECK (kind IN ('case', 'patrol')),
        snapshot   BLOB,
        updated_ms INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE doc_changes (
        id     INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL REFERENCES docs (doc_id) ON DELETE CASCADE,
        hash   BLOB NOT NULL UNIQUE,
        bytes  BLOB NOT NULL
    ) STRICT;
    CREATE INDEX doc_changes_doc ON doc_changes (doc_id);

    -- Every local change, in order, until the server acknowledges it.
    CREATE TABLE outbox (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id     TEXT NOT NULL REFERENCES docs (doc_id),
        hash       BLOB NOT NULL UNIQUE,
        bytes      BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        acked_ms   INTEGER
    ) STRICT;
    CREATE INDEX outbox_doc ON outbox (doc_id);
    CREATE INDEX outbox_pending ON outbox (seq) WHERE acked_ms IS NULL;

    -- GPS points waiting to be written into their patrol document as one chunk.
    CREATE TABLE track_pending (
        id     INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL REFERENCES docs (doc_id) ON DELETE CASCADE,
        at_ms  INTEGER NOT NULL,
        lat    REAL NOT NULL,
        lon    REAL NOT NULL
    ) STRICT;
    CREATE INDEX track_pending_doc ON track_pending (doc_id);

    -- Materialised cases: every list, filter and count is answered here.
    CREATE TABLE cases (
        doc_id        TEXT PRIMARY KEY REFERENCES docs (doc_id) ON DELETE CASCADE,
        grid          TEXT NOT NULL,
        category      TEXT NOT NULL,
        subcategory   TEXT,
        severity      TEXT NOT NULL,
        status        TEXT NOT NULL,
        level         TEXT NOT NULL,
        reporter      TEXT NOT NULL,
        assigned_dept TEXT,
        deadline_ms   INTEGER,
        supervision   INTEGER,
        self_handled  INTEGER NOT NULL,
        satisfaction  INTEGER,
        has_conflict  INTEGER NOT NULL,
        title         TEXT NOT NULL,
        photo_count   INTEGER NOT NULL,
        created_ms    INTEGER NOT NULL,
        updated_ms    INTEGER NOT NULL,
        accepted_ms   INTEGER,
        handled_ms    INTEGER,
        closed_ms     INTEGER
    ) STRICT;
    CREATE INDEX cases_status ON cases (status, created_ms);
    CREATE INDEX cases_grid ON cases (grid, status);
    CREATE INDEX cases_category ON cases (category, status);
    CREATE INDEX cases_dept ON cases (assigned_dept, status);
    CREATE INDEX cases_reporter ON cases (reporter);
    CREATE INDEX cases_deadline ON cases (status, deadline_ms);
    CREATE INDEX cases_created ON cases (created_ms);

    -- Search columns for cases (see search.rs); rowid = cases.rowid.
    CREATE VIRTUAL TABLE case_search USING fts5 (uni, bi, content = '', contentless_delete = 1, tokenize = 'unicode61');

    CREATE TABLE patrols (
        doc_id         TEXT PRIMARY KEY REFERENCES docs (doc_id) ON DELETE CASCADE,
        worker         TEXT NOT NULL,
        grid           TEXT NOT NULL,
        day            TEXT NOT NULL,
        started_ms     INTEGER NOT NULL,
        ended_ms       INTEGER,
        track_points   INTEGER NOT NULL,
        distance_m     REAL NOT NULL,
        checkins       INTEGER NOT NULL,
        observations   INTEGER NOT NULL,
        cases_reported INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX patrols_worker_day ON patrols (worker, day);
    CREATE INDEX patrols_day ON patrols (day);
    "#,
    // 2: sync state — changes the server refused move out of the outbox into
    // `rejections`, kept with their bytes and reason even after their document is
    // removed; documents the server no longer shows this device wait in
    // `purge_pending` until none of their changes is still unsent.
    r#"
    CREATE TABLE rejections (
        hash        BLOB PRIMARY KEY,
        doc_id      TEXT NOT NULL,
        bytes       BLOB NOT NULL,
        reason      TEXT NOT NULL,
        rejected_ms INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE purge_pending (
        doc_id TEXT PRIMARY KEY REFERENCES docs (doc_id) ON DELETE CASCADE
    ) STRICT;
    "#,
    // 3: photos — content-addressed JPEG files in the folder next to the database
    // (`<db>.photos/`), one row per file, written after the file is durable.
    r#"
    CREATE TABLE photos (
        hash       TEXT PRIMARY KEY,
        role       TEXT NOT NULL CHECK (role IN ('display', 'thumb')),
        thumb      TEXT,
        width      INTEGER NOT NULL,
        height     INTEGER NOT NULL,
        size       INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
    ) STRICT;
    "#,
    // 4: photo sync — which photos the server has, and which documents refer to
    // which photos (the upload queue is the photos of documents, thumbnails first).
    // `case_photos` holds the photos of any document: a case's, and since the
    // base data, a household's visits' and a place's inspections'.
    r#"
    ALTER TABLE photos ADD COLUMN uploaded_ms INTEGER;
    CREATE TABLE case_photos (
        doc_id TEXT NOT NULL REFERENCES docs (doc_id) ON DELETE CASCADE,
        hash   TEXT NOT NULL,
        role   TEXT NOT NULL CHECK (role IN ('display', 'thumb')),
        PRIMARY KEY (doc_id, hash)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX case_photos_hash ON case_photos (hash);
    "#,
    // 5: the grid's base data — persons and households are documents too, and each
    // has its index row; a household's visits have theirs. `docs.kind` takes the new kinds: the CHECK is rewritten in
    // place (SQLite's documented way for a change that leaves every stored row
    // valid; `migrate` bumps the schema version after each step). Only masked and
    // searchable forms of ID and phone numbers are indexed (`id_suffix`: the last
    // six characters, reversed): the full ones stay in the documents.
    r#"
    PRAGMA writable_schema = ON;
    UPDATE sqlite_schema
       SET sql = replace(sql, 'CHECK (kind IN (''case'', ''patrol''))',
                         'CHECK (kind IN (''case'', ''patrol'', ''person'', ''household''))')
     WHERE type = 'table' AND name = 'docs';
    PRAGMA writable_schema = OFF;

    CREATE TABLE persons (
        doc_id       TEXT PRIMARY KEY REFERENCES docs (doc_id) ON DELETE CASCADE,
        grid         TEXT NOT NULL,
        name         TEXT NOT NULL,
        sex          TEXT,
        born_year    INTEGER,
        id_masked    TEXT,
        id_suffix    TEXT,
        phone_masked TEXT,
        household    TEXT,
        relation     TEXT,
        tags         TEXT NOT NULL,
        updated_ms   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX persons_grid ON persons (grid, name);
    CREATE INDEX persons_household ON persons (household);
    CREATE INDEX persons_id_suffix ON persons (id_suffix);

    CREATE TABLE households (
        doc_id     TEXT PRIMARY KEY REFERENCES docs (doc_id) ON DELETE CASCADE,
        grid       TEXT NOT NULL,
        address    TEXT NOT NULL,
        head       TEXT,
        left_ms    INTEGER,
        updated_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX households_grid ON households (grid, address);

    -- Visits (走访), from the households' documents: doc_id is the household.
    CREATE TABLE visits (
        doc_id TEXT NOT NULL REFERENCES docs (doc_id) ON DELETE CASCADE,
        n      INTEGER NOT NULL,
        worker TEXT NOT NULL,
        grid   TEXT NOT NULL,
        at_ms  INTEGER NOT NULL,
        PRIMARY KEY (doc_id, n)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX visits_grid ON visits (grid, at_ms);
    "#,
    // 6: places (buildings, dwellings, shops, enterprises; an organisation is its
    // place's facts) with their safety inspections; the dwelling a household lives
    // in; the place and persons a case is about. The new indexes are partial where
    // most rows have nothing to index, so a case without links writes no page of
    // them.
    r#"
    PRAGMA writable_schema = ON;
    UPDATE sqlite_schema
       SET sql = replace(sql, '''household''))', '''household'', ''place''))')
     WHERE type = 'table' AND name = 'docs';
    PRAGMA writable_schema = OFF;

    CREATE TABLE places (
        doc_id      TEXT PRIMARY KEY REFERENCES docs (doc_id) ON DELETE CASCADE,
        grid        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        address     TEXT NOT NULL,
        within      TEXT,
        occupancy   TEXT,
        org_type    TEXT,
        credit_code TEXT,
        contact     TEXT,
        lat         REAL,
        lon         REAL,
        updated_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX places_grid ON places (grid, kind, name);
    CREATE INDEX places_within ON places (within) WHERE within IS NOT NULL;

    CREATE TABLE inspections (
        doc_id TEXT NOT NULL REFERENCES docs (doc_id) ON DELETE CASCADE,
        n      INTEGER NOT NULL,
        worker TEXT NOT NULL,
        grid   TEXT NOT NULL,
        at_ms  INTEGER NOT NULL,
        passed INTEGER NOT NULL,
        PRIMARY KEY (doc_id, n)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX inspections_grid ON inspections (grid, at_ms);

    ALTER TABLE households ADD COLUMN place TEXT;
    CREATE INDEX households_place ON households (place) WHERE place IS NOT NULL;

    ALTER TABLE cases ADD COLUMN place TEXT;
    CREATE INDEX cases_place ON cases (place) WHERE place IS NOT NULL;
    CREATE TABLE case_persons (
        doc_id TEXT NOT NULL REFERENCES docs (doc_id) ON DELETE CASCADE,
        person TEXT NOT NULL,
        PRIMARY KEY (doc_id, person)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX case_persons_person ON case_persons (person);
    "#,
    // 7: how many times a case was sent up (上报), for the figures of where cases
    // are closed. Existing rows are filled in by the index rebuild that opening
    // runs once after this step (see `Engine::rebuild_index`).
    r#"
    ALTER TABLE cases ADD COLUMN escalations INTEGER NOT NULL DEFAULT 0;
    "#,
    // 8: where a case is (WGS-84), for the console's map; filled in for existing
    // rows by the index rebuild, like step 7.
    r#"
    ALTER TABLE cases ADD COLUMN lat REAL;
    ALTER TABLE cases ADD COLUMN lon REAL;
    "#,
    // 9: points adjustments (积分调整) are documents too, one row each; and the
    // channel a case came in by, for the board's filter and the figures per
    // channel (filled in for existing rows by the index rebuild, like step 7).
    r#"
    PRAGMA writable_schema = ON;
    UPDATE sqlite_schema
       SET sql = replace(sql, '''place''))', '''place'', ''adjustment''))')
     WHERE type = 'table' AND name = 'docs';
    PRAGMA writable_schema = OFF;

    CREATE TABLE adjustments (
        doc_id TEXT PRIMARY KEY REFERENCES docs (doc_id) ON DELETE CASCADE,
        grid   TEXT NOT NULL,
        worker TEXT NOT NULL,
        month  TEXT NOT NULL,
        points INTEGER NOT NULL,
        reason TEXT NOT NULL,
        by     TEXT NOT NULL,
        at_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX adjustments_grid ON adjustments (grid, month);

    ALTER TABLE cases ADD COLUMN channel TEXT NOT NULL DEFAULT 'phone';
    "#,
    // 10: a document to purge because it was erased (a person, or a case past its
    // retention), not only out of sight: its refused changes go with it.
    r#"
    ALTER TABLE purge_pending ADD COLUMN erased INTEGER NOT NULL DEFAULT 0;
    "#,
    // 11: the outbox holds no change bytes. A change waiting to go up is read from
    // `doc_changes`, where compaction keeps it, marked `folded` (the snapshot
    // holds it too, so loading skips it), until the server has settled it
    // (`store::persist`); acknowledged rows keep only their hash. Each local
    // change had been stored twice for ever, and a report wrote both copies'
    // pages. The unsent changes a snapshot had taken in go back to `doc_changes`,
    // folded. The new table also drops AUTOINCREMENT: nothing remembers a
    // position of the outbox, and a plain rowid does not write `sqlite_sequence`
    // on every local change.
    r#"
    ALTER TABLE doc_changes ADD COLUMN folded INTEGER;
    INSERT OR IGNORE INTO doc_changes (doc_id, hash, bytes, folded)
        SELECT doc_id, hash, bytes, 1 FROM outbox WHERE acked_ms IS NULL ORDER BY seq;
    CREATE TABLE outbox_v11 (
        seq        INTEGER PRIMARY KEY,
        doc_id     TEXT NOT NULL REFERENCES docs (doc_id),
        hash       BLOB NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        acked_ms   INTEGER
    ) STRICT;
    INSERT INTO outbox_v11 (seq, doc_id, hash, created_ms, acked_ms)
        SELECT seq, doc_id, hash, created_ms, acked_ms FROM outbox ORDER BY seq;
    DROP TABLE outbox;
    ALTER TABLE outbox_v11 RENAME TO outbox;
    CREATE INDEX outbox_doc ON outbox (doc_id);
    CREATE INDEX outbox_pending ON outbox (seq) WHERE acked_ms IS NULL;
    "#,
    // 12: a case enters the department and deadline indexes once it is dispatched.
    // A new report has neither, and every page a write touches is written (and on
    // an encrypted device encrypted and authenticated) again; the filters that use
    // these indexes name a department or a deadline, which implies the condition.
    // And an outbox row keeps its change's size, in the index of unsent rows: the
    // outbox's size (a sync's progress after every page, the app's count) is read
    // from that index alone, not from every unsent change's row (`acked_ms`, always
    // NULL there, makes the index cover the query's condition).
    r#"
    ALTER TABLE outbox ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
    UPDATE outbox SET size = coalesce(
        (SELECT length(c.bytes) FROM doc_changes c WHERE c.hash = outbox.hash), 0)
        WHERE acked_ms IS NULL;
    DROP INDEX outbox_pending;
    CREATE INDEX outbox_pending ON outbox (seq, size, acked_ms) WHERE acked_ms IS NULL;
    DROP INDEX cases_dept;
    CREATE INDEX cases_dept ON cases (assigned_dept, status) WHERE assigned_dept IS NOT NULL;
    DROP INDEX cases_deadline;
    CREATE INDEX cases_deadline ON cases (status, deadline_ms) WHERE deadline_ms IS NOT NULL;
    "#,
];

/// The schema version this code writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Run every migration step above `from`, each in its own IMMEDIATE transaction.
pub fn migrate(conn: &mut Connection, from: i64) -> rusqlite::Result<()> {
    for (i, step) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(step)?;
        // Other connections re-read the schema, a step that rewrote it in place too.
        let schema: i64 = tx.pragma_query_value(None, "schema_version", |r| r.get(0))?;
        tx.pragma_update(None, "schema_version", schema + 1)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(conn: &Connection) -> Vec<(String, String)> {
        let mut stmt = conn
            .prepare("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A database as the first `version` steps left it, as an older build wrote it.
    fn at_version(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for step in &MIGRATIONS[..version] {
            conn.execute_batch(step).unwrap();
        }
        conn
    }

    /// Every step, applied one at a time from every older version, must end at the
    /// same schema as a fresh database.
    #[test]
    fn each_migration_step_reaches_the_fresh_schema() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh, 0).unwrap();
        let want = schema_of(&fresh);
        for start in 0..MIGRATIONS.len() {
            let mut conn = Connection::open_in_memory().unwrap();
            for (i, step) in MIGRATIONS.iter().enumerate().take(start) {
                conn.execute_batch(step).unwrap();
                conn.pragma_update(None, "user_version", i as i64 + 1)
                    .unwrap();
            }
            migrate(&mut conn, start as i64).unwrap();
            assert_eq!(schema_of(&conn), want, "from version {start}");
            let v: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, current_version());
        }
    }

    /// A database made before the base data takes a person's document after the
    /// step that rewrites `docs.kind`'s check, on the same connection, and stays
    /// whole.
    #[test]
    fn the_kind_check_is_widened_in_place() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 0).unwrap();
        let mut old = at_version(4);
        let insert = "INSERT INTO docs (doc_id, kind, updated_ms) VALUES ('person-1', 'person', 0)";
        assert!(old.execute(insert, []).is_err(), "the old check refuses it");
        old.execute(
            "INSERT INTO docs (doc_id, kind, updated_ms) VALUES ('case-1', 'case', 0)",
            [],
        )
        .unwrap();
        migrate(&mut old, 4).unwrap();
        old.execute(insert, []).unwrap();
        old.execute(
            "INSERT INTO docs (doc_id, kind, updated_ms) VALUES ('place-1', 'place', 0)",
            [],
        )
        .unwrap();
        old.execute(
            "INSERT INTO docs (doc_id, kind, updated_ms) VALUES ('adjustment-1', 'adjustment', 0)",
            [],
        )
        .unwrap();
        assert!(old
            .execute(
                "INSERT INTO docs (doc_id, kind, updated_ms) VALUES ('x-1', 'x', 0)",
                []
            )
            .is_err());
        let ok: String = old
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        assert_eq!(schema_of(&old), schema_of(&conn));
    }

    /// Step 11: an unsent change whose document was compacted (its bytes only in
    /// the outbox) goes back to `doc_changes`, folded; one still there stays as it
    /// was; an acknowledged one keeps only its row.
    #[test]
    fn the_outbox_gives_its_unsent_bytes_to_doc_changes() {
        let mut old = at_version(10);
        old.execute_batch(
            "INSERT INTO docs (doc_id, kind, snapshot, updated_ms) VALUES ('case-1', 'case', x'00', 0);
             INSERT INTO doc_changes (doc_id, hash, bytes) VALUES ('case-1', x'02', x'0202');
             INSERT INTO outbox (doc_id, hash, bytes, created_ms, acked_ms) VALUES
                 ('case-1', x'01', x'0101', 1, NULL),
                 ('case-1', x'02', x'0202', 2, NULL),
                 ('case-1', x'03', x'0303', 3, 4);",
        )
        .unwrap();
        migrate(&mut old, 10).unwrap();
        fn rows<A: rusqlite::types::FromSql>(
            conn: &Connection,
            sql: &str,
        ) -> Vec<(A, Vec<u8>, Option<i64>)> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        }
        assert_eq!(
            rows::<Vec<u8>>(
                &old,
                "SELECT hash, bytes, folded FROM doc_changes ORDER BY hash"
            ),
            vec![(vec![1], vec![1, 1], Some(1)), (vec![2], vec![2, 2], None)]
        );
        let outbox = rows::<i64>(&old, "SELECT seq, hash, acked_ms FROM outbox ORDER BY seq");
        assert_eq!(
            outbox,
            vec![
                (1, vec![1], None),
                (2, vec![2], None),
                (3, vec![3], Some(4))
            ]
        );
    }

    /// Step 12: each unsent outbox row gets its change's size; the outbox's size is
    /// then read from the index of unsent rows alone.
    #[test]
    fn the_outbox_keeps_each_unsent_changes_size() {
        let mut old = at_version(11);
        old.execute_batch(
            "INSERT INTO docs (doc_id, kind, updated_ms) VALUES ('case-1', 'case', 0);
             INSERT INTO doc_changes (doc_id, hash, bytes, folded) VALUES
                 ('case-1', x'01', x'010101', NULL), ('case-1', x'02', x'02', 1);
             INSERT INTO outbox (doc_id, hash, created_ms, acked_ms) VALUES
                 ('case-1', x'01', 1, NULL), ('case-1', x'02', 2, NULL),
                 ('case-1', x'03', 3, 4);",
        )
        .unwrap();
        migrate(&mut old, 11).unwrap();
        let sizes: Vec<i64> = old
            .prepare("SELECT size FROM outbox ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(sizes, [3, 1, 0]);
        let tx = old.transaction().unwrap();
        assert_eq!(crate::store::outbox_size(&tx).unwrap(), (2, 4));
        let plan: String = tx
            .query_row(
                "EXPLAIN QUERY PLAN SELECT count(*), coalesce(sum(size), 0) FROM outbox
                 WHERE acked_ms IS NULL",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("COVERING INDEX outbox_pending"), "{plan}");
    }
}
