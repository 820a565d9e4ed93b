//! What only a server asks of its replica; the phone never calls these (the
//! bindings do not expose them). Drafting a change as a console user, reading as
//! one, the command centre's figures, reading any document without a scope, the
//! checked import of a push, and a node's position in a shared log.

use automerge::transaction::Transaction as AmTransaction;
use automerge::{Automerge, AutomergeError, Change};
use chrono::NaiveDate;
use rusqlite::OptionalExtension;

use super::cases::check_room;
use super::{make_change, Case, Engine, Identity, ImportResult, PhotoInfo};
use crate::directory::User;
use crate::doc::case::{self, check_note, CaseDoc, Note, PhotoRef};
use crate::doc::DocContent;
use crate::error::{Error, Result};
use crate::ids::{DocId, UserId};
use crate::index::{self, CaseFilter, DailyCompliance};
use crate::store;
use crate::workflow::{fold, Action};

/// A server's veto over incoming changes to one document: given the document id,
/// its content before them (`None` for a new document) and after them, and the
/// changes, `Err(reason)` refuses them all.
pub type ChangeCheck<'a> = dyn Fn(
        &DocId,
        Option<&DocContent>,
        &DocContent,
        &[automerge::Change],
    ) -> std::result::Result<(), String>
    + Sync
    + 'a;

impl Engine {
    /// The change `author` taking `action` on case `id` would make, checked exactly
    /// as [`Engine::act`] checks it, without storing it. A server's console acts for
    /// its signed-in users this way; the change then goes through the same checked
    /// import as a device's push.
    pub fn draft_action(&self, author: &Identity, id: &DocId, action: Action) -> Result<Vec<u8>> {
        let me = self.user(&author.user)?;
        self.check_department(&action)?;
        let (mut doc, case) = self.db.read(|tx| self.load_case_in_scope(tx, id, &me))?;
        let entry = self.action_entry(&case, &me, action)?;
        self.draft_change(&mut doc, id, author, |t| case::append_entry(t, &entry))
    }

    /// Like [`Engine::add_note`], drafted for `author` (see [`Engine::draft_action`]).
    pub fn draft_note(&self, author: &Identity, id: &DocId, text: &str) -> Result<Vec<u8>> {
        check_note(text)?;
        let note = Note {
            by: author.user.clone(),
            at: self.now(),
            text: text.to_owned(),
        };
        self.draft_case_edit(
            author,
            id,
            |case| case.notes.len() < case::limits::NOTES,
            "notes",
            |t| case::add_note(t, &note),
        )
    }

    /// Like [`Engine::attach_photo`], drafted for `author`, for a photo whose files
    /// the caller stores (a server keeps photos outside its replica's database).
    pub fn draft_photo(&self, author: &Identity, id: &DocId, photo: &PhotoInfo) -> Result<Vec<u8>> {
        let photo = PhotoRef {
            hash: photo.hash.clone(),
            thumb: Some(photo.thumb.clone()),
            width: photo.width,
            height: photo.height,
            by: author.user.clone(),
            at: self.now(),
        };
        self.draft_case_edit(
            author,
            id,
            |case| case.photos.len() < case::limits::PHOTOS,
            "photos",
            |t| case::add_photo(t, &photo),
        )
    }

    /// [`Engine::edit_case`] drafted for `author`: the same checks, nothing stored.
    fn draft_case_edit(
        &self,
        author: &Identity,
        id: &DocId,
        has_room: impl FnOnce(&CaseDoc) -> bool,
        what: &str,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<Vec<u8>> {
        let me = self.user(&author.user)?;
        let (mut doc, case) = self.db.read(|tx| self.load_case_in_scope(tx, id, &me))?;
        check_room(has_room(&case), what)?;
        self.draft_change(&mut doc, id, author, edit)
    }

    /// One change to `doc` made by `author`'s device, as bytes, not stored.
    fn draft_change(
        &self,
        doc: &mut Automerge,
        id: &DocId,
        author: &Identity,
        edit: impl FnOnce(&mut AmTransaction<'_>) -> Result<(), AutomergeError>,
    ) -> Result<Vec<u8>> {
        make_change(doc, id, &author.device, self.now(), edit)?
            .map(|c| c.raw_bytes().to_vec())
            .ok_or_else(|| Error::InvalidInput("the edit changes nothing".into()))
    }

    /// A case as `user` may see it: the same "not found" as for a missing case when
    /// it is outside their scope. For a server answering for its users.
    pub fn get_case_as(&self, user: &User, id: &DocId) -> Result<Case> {
        let (_, doc) = self.db.read(|tx| self.load_case_in_scope(tx, id, user))?;
        let state = fold(&doc.timeline);
        Ok(Case { doc, state })
    }

    /// The loop's figures over the cases `filter` selects (see [`crate::stats`]).
    pub fn statistics(&self, filter: &CaseFilter) -> Result<crate::stats::Summary> {
        self.db.read(|tx| crate::stats::summary(tx, filter))
    }

    /// The loop's figures per grid, reporter, category or month.
    pub fn statistics_by(
        &self,
        filter: &CaseFilter,
        by: crate::stats::GroupBy,
    ) -> Result<Vec<crate::stats::Group>> {
        self.db.read(|tx| crate::stats::grouped(tx, filter, by))
    }

    /// Each worker's compliance with "two patrols a day, two hours each" on each day
    /// from `from` to `to` (China Standard Time), zero-filled. At most 366 days.
    pub fn patrol_compliance(
        &self,
        workers: &[UserId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyCompliance>> {
        let days = (to - from).num_days();
        if !(0..366).contains(&days) {
            return Err(Error::InvalidInput(
                "the date range must be 1 to 366 days".into(),
            ));
        }
        self.db
            .read(|tx| index::patrol_compliance(tx, workers, from, to))
    }

    /// Read any document on this replica, without the user's scope check: for a
    /// server, which holds every document of its region.
    pub fn read_doc(&self, id: &DocId) -> Result<Option<DocContent>> {
        self.db.read(|tx| {
            store::load(tx, id)?
                .map(|doc| DocContent::read(&doc, id).map_err(Error::malformed(id)))
                .transpose()
        })
    }

    /// Like [`Engine::import_changes`], but each document's new changes are shown to
    /// `check` with the document before and after them; if `check` refuses, none of
    /// them is stored. This is how a server authorises what a device pushes.
    pub fn import_changes_checked(
        &self,
        batch: Vec<(DocId, Vec<Change>)>,
        check: &ChangeCheck<'_>,
    ) -> Result<Vec<ImportResult>> {
        let now_ms = self.now().timestamp_millis();
        self.write(|tx| self.import_batch(tx, batch, Some(check), now_ms))
    }

    /// How far into its server's shared change log this replica has applied
    /// (a relay node's own bookkeeping; 0 if never set).
    pub fn replica_position(&self) -> Result<u64> {
        self.db.read(|tx| -> Result<_> {
            let v: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = 'replica_position'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
    }

    /// Record how far into its server's shared change log this replica has applied.
    pub fn set_replica_position(&self, seq: u64) -> Result<()> {
        self.write(|tx| -> Result<()> {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('replica_position', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [seq.to_string()],
            )?;
            Ok(())
        })
    }
}
