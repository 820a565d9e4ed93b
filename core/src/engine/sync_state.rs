//! What a device keeps about its server: URL, token and how to reach it safely,
//! where its pulls stand, a pull page applied with its purges, a push's answer
//! recorded, the changes refused, purges settled, and the one-sync-at-a-time lock.

use automerge::{Change, ChangeHash};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{group_by_doc, Engine, ImportResult};
use crate::error::{Error, Result};
use crate::ids::{DocId, DocKind, PhotoHash};
use crate::store;

/// Where a device's pulls stand (see [`Engine::pull_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullState {
    /// The server sequence number up to which changes have been applied.
    pub cursor: u64,
    /// The number of the last pull page applied.
    pub page: u64,
    /// The purge list of that page.
    pub purged: Vec<DocId>,
}

impl Engine {
    /// Remember the server and this device's token (from enrollment).
    pub fn set_server(&self, url: &str, token: &str) -> Result<()> {
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('server_url', ?1), ('token', ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![url, token],
            )?;
            Ok(())
        })
    }

    /// Remember how to reach the server safely: the certificates to trust for
    /// `https://`, and whether plain `http://` off this machine is allowed (see
    /// [`crate::sync::ServerSecurity`]).
    pub fn set_server_security(&self, security: &crate::sync::ServerSecurity) -> Result<()> {
        if let Some(pem) = &security.ca_pem {
            if pem.len() > 64 * 1024 {
                return Err(Error::InvalidInput(
                    "certificates: at most 64 KiB of PEM".into(),
                ));
            }
        }
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('server_ca_pem', ?1), ('server_plain_http', ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![
                    security.ca_pem.clone().unwrap_or_default(),
                    if security.allow_plain_http { "1" } else { "0" }
                ],
            )?;
            Ok(())
        })
    }

    /// How to reach the server safely, as last set (by default: public roots, no
    /// plain HTTP off this machine).
    pub fn server_security(&self) -> Result<crate::sync::ServerSecurity> {
        self.db.read(|tx| -> Result<_> {
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                    .optional()
            };
            Ok(crate::sync::ServerSecurity {
                ca_pem: get("server_ca_pem")?.filter(|p| !p.is_empty()),
                allow_plain_http: get("server_plain_http")?.as_deref() == Some("1"),
            })
        })
    }

    /// The server URL and token, if this device has been enrolled.
    pub fn server(&self) -> Result<Option<(String, String)>> {
        self.db.read(|tx| -> Result<_> {
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                    .optional()
            };
            Ok(get("server_url")?.zip(get("token")?))
        })
    }

    /// Where this device's pulls stand: the server sequence number up to which it
    /// has applied changes, and the number and purge list of the last page it
    /// applied (to acknowledge).
    pub fn pull_state(&self) -> Result<PullState> {
        self.db.read(|tx| -> Result<_> {
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                    .optional()
            };
            Ok(PullState {
                cursor: get("pull_cursor")?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                page: get("pull_page")?.and_then(|v| v.parse().ok()).unwrap_or(0),
                purged: get("purge_ack")?
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<_, _>>()?,
            })
        })
    }

    /// Apply one pull page: its changes, its purges and the new cursor, in one
    /// transaction, so a crash leaves either all of it or none. Returns the import
    /// results and how many documents were removed.
    pub fn apply_pull(
        &self,
        changes: Vec<(DocId, Change)>,
        purge: &[DocId],
        cursor: u64,
        page: u64,
    ) -> Result<(Vec<ImportResult>, usize)> {
        self.apply_pull_with_token(changes, purge, &[], cursor, page, None)
    }

    /// Like [`Engine::apply_pull`], storing the page's new token (token rotation)
    /// in the same transaction: the device never has the page without the token
    /// the server issued with it, nor the token without the page. `erased`: of
    /// `purge`, the documents erased at the server, whose refused changes are
    /// forgotten with them.
    pub fn apply_pull_with_token(
        &self,
        changes: Vec<(DocId, Change)>,
        purge: &[DocId],
        erased: &[DocId],
        cursor: u64,
        page: u64,
        new_token: Option<&str>,
    ) -> Result<(Vec<ImportResult>, usize)> {
        let batch = group_by_doc(changes);
        let now_ms = self.now().timestamp_millis();
        self.write(|tx| {
            // A document that came back into scope is no longer to be removed.
            for (id, _) in &batch {
                store::unqueue_purge(tx, id)?;
            }
            let results = self.import_batch(tx, batch, None, now_ms)?;
            let erased: std::collections::HashSet<&DocId> = erased.iter().collect();
            for id in purge {
                store::queue_purge(tx, id, erased.contains(id))?;
            }
            let (purged, photos) = self.settle_purges(tx)?;
            let ack = purge
                .iter()
                .map(DocId::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            tx.execute(
                "INSERT INTO meta (key, value)
                 VALUES ('pull_cursor', ?1), ('purge_ack', ?2), ('pull_page', ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![cursor.to_string(), ack, page.to_string()],
            )?;
            if let Some(token) = new_token {
                tx.execute("UPDATE meta SET value = ?1 WHERE key = 'token'", [token])?;
            }
            Ok((results, purged, photos))
        })
        .map(|(results, purged, photos)| {
            self.remove_photo_files(photos);
            if purged > 0 {
                // Best effort: a reader in the way leaves it to the next purge.
                let _ = self.checkpoint_after_purge();
            }
            (results, purged)
        })
    }

    /// Record the server's answer to a push: acknowledged changes leave the outbox;
    /// rejected ones leave it with their reason.
    ///
    /// A `deferred` change (the server lacks a dependency) that depends on a change
    /// the server refused can never be accepted: it is refused here too, with that
    /// reason, so it does not wait in the outbox for ever.
    pub fn record_push_results(
        &self,
        acked: &[ChangeHash],
        rejected: &[(ChangeHash, String)],
        deferred: &[ChangeHash],
    ) -> Result<()> {
        let now = self.now().timestamp_millis();
        self.write(|tx| {
            store::mark_acked(tx, acked, now)?;
            store::mark_rejected(tx, rejected, now)?;
            let doomed = store::depending_on_rejections(tx, deferred)?;
            let why = "depends on a change the server refused".to_owned();
            let doomed: Vec<_> = doomed.into_iter().map(|h| (h, why.clone())).collect();
            store::mark_rejected(tx, &doomed, now)?;
            self.settle_purges(tx)
        })
        .map(|(purged, photos)| {
            self.remove_photo_files(photos);
            if purged > 0 {
                // Best effort: a reader in the way leaves it to the next purge.
                let _ = self.checkpoint_after_purge();
            }
        })
    }

    /// Remove documents `ids` wholesale — snapshot, changes, index and search rows,
    /// outbox entries and refused changes — unsent work or not, and empty the WAL
    /// after: what the relay does to its replica when a person is erased or a
    /// case's retention ends (ADR 0011). Answers how many this replica held.
    pub fn erase_documents(&self, ids: &[DocId]) -> Result<usize> {
        let (held, removal) = self.write(|tx| {
            let mut held = 0;
            let mut photos = Vec::new();
            for id in ids {
                store::unqueue_purge(tx, id)?;
                let here: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM docs WHERE doc_id = ?1)",
                    [id.as_str()],
                    |r| r.get(0),
                )?;
                if here {
                    photos.extend(store::purge(tx, id, true)?);
                    self.touch(id);
                    held += 1;
                }
            }
            if held > 0 {
                store::merge_search(tx)?;
            }
            // Noted before the rows go: a crash after the commit leaves files to sweep.
            let note = (!photos.is_empty())
                .then(|| self.blobs.note_unswept())
                .transpose()?;
            Ok((held, PhotoRemoval { photos, note }))
        })?;
        self.remove_photo_files(removal);
        // Also when none was held: a call again after a checkpoint that a reader
        // kept waiting finishes the job.
        if !self.checkpoint_after_purge()? {
            return Err(Error::Io(std::io::Error::other(
                "the documents are gone, but the WAL could not be emptied after them \
                 (a reader was in the way); run the erasure again",
            )));
        }
        Ok(held)
    }

    /// After erasures on a server's replica ([`Engine::erase_documents`]): the
    /// file rebuilt from its live rows, so no page keeps a copy of an erased row
    /// that a page split left behind, and the WAL emptied.
    pub fn scrub(&self) -> Result<()> {
        if !self.db.hold()?.vacuum()? {
            return Err(Error::Io(std::io::Error::other(
                "the database was rebuilt, but the WAL could not be emptied after it \
                 (a reader was in the way); run the erasure again",
            )));
        }
        Ok(())
    }

    /// Empty the WAL after a purge: with `secure_delete` the database's own pages
    /// are zeroed, but the WAL would still hold earlier images of them. Answers
    /// false if a reader kept it from finishing.
    pub(crate) fn checkpoint_after_purge(&self) -> Result<bool> {
        Ok(self.db.hold()?.checkpoint_truncate()?)
    }

    /// Changes the server refused, newest first, with its reasons.
    pub fn rejected_changes(&self) -> Result<Vec<(DocId, ChangeHash, String)>> {
        self.db.read(store::rejections)
    }

    /// Remove documents the server no longer shows this device, once none of their
    /// local changes is still waiting to be delivered: unsent work is never dropped.
    /// Returns how many documents went and the photo files to remove after commit.
    fn settle_purges(&self, tx: &Transaction<'_>) -> Result<(usize, PhotoRemoval)> {
        let mut purged = 0;
        let mut erased_cases = 0;
        let mut photos = Vec::new();
        for (id, erased) in store::queued_purges(tx)? {
            if !store::has_unsettled(tx, &id)? {
                photos.extend(store::purge(tx, &id, erased)?);
                self.touch(&id);
                purged += 1;
                erased_cases += usize::from(erased && id.kind() == DocKind::Case);
            }
        }
        // An erased case's words leave the search index now; a case only out of
        // sight leaves them to FTS5's own merges (a merge rewrites the whole index).
        if erased_cases > 0 {
            store::merge_search(tx)?;
        }
        // Noted before the rows go: a crash after the commit leaves files to sweep.
        let note = (!photos.is_empty())
            .then(|| self.blobs.note_unswept())
            .transpose()?;
        Ok((purged, PhotoRemoval { photos, note }))
    }

    /// Remove the files of photos whose rows a committed purge deleted. A file that
    /// cannot be removed now is swept at the next open (its note stays).
    fn remove_photo_files(&self, removal: PhotoRemoval) {
        let all = removal
            .photos
            .iter()
            .map(|hash| self.blobs.remove(hash))
            .fold(true, |ok, r| ok & r.is_ok());
        if let (true, Some(note)) = (all, removal.note) {
            note.clear();
        }
    }

    /// Hold the sync lock (one sync at a time on this engine).
    pub(crate) fn one_sync(&self) -> std::sync::MutexGuard<'_, crate::sync::Learnt> {
        self.syncing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Photo files whose rows a purge deleted, to remove once it has committed, with the
/// note that makes the next open sweep if that does not happen.
struct PhotoRemoval {
    photos: Vec<PhotoHash>,
    note: Option<crate::blobs::SweepNote>,
}
