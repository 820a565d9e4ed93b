//! The push/pull session, shared by a phone and by a town relay syncing to its
//! district: what to send next, what an answer means, what to record.
//!
//! The protocol logic is pure: [`PushPage`] turns outgoing changes into a request
//! and reads the answer into [`PushVerdicts`]; [`pull_request`] and [`read_pull`] do
//! the same for a pull page, decoding every change through the checked decoder.
//! [`push_all`] and [`pull_all`] drive them over a [`Link`] for any [`Replica`] —
//! the phone's engine or the relay's upstream bookkeeping — so the loop, its
//! bounds and its stopping rules exist once.

use std::collections::HashSet;
use std::time::Instant;

use automerge::{Change, ChangeHash};

use super::change::{decode_wire_changes, ChangeError};
use super::client::{SyncError, Transport, TransportError};
use super::pace::Pace;
use super::route::{Endpoint, Pull, Push};
use super::wire::{
    self, Backlog, ChangeStatus, Changes, DirectoryUpdate, PullRequest, PullResponse, PushRequest,
    PushResponse, WireChange, FIRST_PROTOCOL_VERSION, MAX_CHANGES_PER_MESSAGE, PROTOCOL_VERSION,
};
use crate::directory::Directory;
use crate::engine::PullState;
use crate::ids::DocId;

/// Requests one push or pull phase makes at most, so a sync always ends.
pub const MAX_ROUNDS: usize = 1_000;

/// A change on its way to the server: a phone's outbox item or a relay's log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The document.
    pub doc: DocId,
    /// The change hash.
    pub hash: ChangeHash,
    /// The raw change.
    pub bytes: Vec<u8>,
}

/// What the server did with a page of pushed changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushVerdicts {
    /// Stored now or before: settled.
    pub stored: Vec<ChangeHash>,
    /// Refused, with the reason: never stored or forwarded.
    pub rejected: Vec<(ChangeHash, String)>,
    /// Waiting for a dependency the server lacks: send again later.
    pub deferred: Vec<ChangeHash>,
}

/// A push request and what it needs to read the answer.
#[derive(Debug)]
pub struct PushPage {
    /// The request to send.
    pub request: PushRequest,
    sent: HashSet<ChangeHash>,
}

impl PushPage {
    /// The request for `items` (at most [`MAX_CHANGES_PER_MESSAGE`] are sent), in
    /// protocol version `v`.
    pub fn new(items: &[Outgoing], v: u32) -> PushPage {
        let items = &items[..items.len().min(MAX_CHANGES_PER_MESSAGE)];
        let changes = items
            .iter()
            .map(|i| WireChange {
                doc: i.doc.clone(),
                bytes: i.bytes.clone(),
            })
            .collect();
        PushPage {
            request: PushRequest {
                v,
                changes: Changes::new(changes, v),
                erased: Vec::new(),
            },
            sent: items.iter().map(|i| i.hash).collect(),
        }
    }

    /// What the answer says about each change sent. An answer naming a change that
    /// was not sent is not the protocol; a change the answer does not mention
    /// stays unsettled and goes again next time.
    pub fn read(self, answer: PushResponse) -> Result<PushVerdicts, SyncError> {
        check_version(answer.v)?;
        let mut verdicts = PushVerdicts::default();
        for r in answer.results {
            if !self.sent.contains(&r.hash) {
                return Err(SyncError::Protocol(
                    "a result names a change that was not sent".into(),
                ));
            }
            match r.status {
                ChangeStatus::Accepted | ChangeStatus::Duplicate => verdicts.stored.push(r.hash),
                ChangeStatus::Rejected => verdicts
                    .rejected
                    .push((r.hash, r.reason.unwrap_or_else(|| "rejected".into()))),
                ChangeStatus::Deferred => verdicts.deferred.push(r.hash),
            }
        }
        Ok(verdicts)
    }
}

/// A pull answer, decoded and checked. Its `Debug` hides a new token.
pub struct PulledPage {
    /// Changes that passed the checked decoder, in server order.
    pub changes: Vec<(DocId, Change)>,
    /// Changes that did not, with why (counted; never applied).
    pub refused: Vec<(DocId, ChangeError)>,
    /// Documents to remove.
    pub purge: Vec<DocId>,
    /// The state to record together with the changes.
    pub next: PullState,
    /// Whether another page waits.
    pub more: bool,
    /// A new token for this device, to store with the page (token rotation).
    pub new_token: Option<String>,
    /// What the server says still waits after this page (zero on the last).
    pub backlog: Backlog,
    /// Of `purge`, the documents that were erased (ADR 0011): a relay erases them
    /// from its own log and replica; a phone purges them like the rest.
    pub erased: Vec<DocId>,
    /// A newer directory revision, checked to be one (see [`read_pull`]).
    pub directory: Option<DirectoryUpdate>,
}

impl std::fmt::Debug for PulledPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulledPage")
            .field("changes", &self.changes.len())
            .field("refused", &self.refused)
            .field("purge", &self.purge)
            .field("next", &self.next)
            .field("more", &self.more)
            .field("new_token", &super::wire::redacted(&self.new_token))
            .field("backlog", &self.backlog)
            .field("erased", &self.erased)
            .field("directory", &self.directory)
            .finish()
    }
}

/// The pull request, in protocol version `v`, for a replica whose pulls stand at
/// `state` and which holds directory revision `directory` (none: it takes no
/// directory updates).
pub fn pull_request(
    state: &PullState,
    directory: Option<u64>,
    max_bytes: u64,
    v: u32,
) -> PullRequest {
    PullRequest {
        v,
        cursor: state.cursor,
        max_bytes,
        purged: state.purged.clone(),
        ack_page: state.page,
        directory,
    }
}

/// Read a pull answer: version and bounds checked, every change through the
/// checked decoder, a directory update newer than `directory` (what the request
/// said this replica holds). A directory this build cannot read (a newer
/// format) is left out and the page applied: the replica keeps the one it has.
pub fn read_pull(answer: PullResponse, directory: Option<u64>) -> Result<PulledPage, SyncError> {
    check_version(answer.v)?;
    if answer.changes.len() > MAX_CHANGES_PER_MESSAGE
        || answer.purge.len() > MAX_CHANGES_PER_MESSAGE
        || answer.erased.len() > MAX_CHANGES_PER_MESSAGE
    {
        return Err(SyncError::Protocol("too many changes in one page".into()));
    }
    if answer
        .new_token
        .as_deref()
        .is_some_and(|t| !wire::is_token(t))
    {
        return Err(SyncError::Protocol(
            "a new token that cannot be a token".into(),
        ));
    }
    let update = match answer.directory {
        Some(update) if directory.is_none_or(|held| update.revision <= held) => {
            return Err(SyncError::Protocol(format!(
                "a directory revision {} that is not newer than the one held",
                update.revision
            )));
        }
        Some(update) if Directory::from_json(&update.json).is_ok() => Some(update),
        // A newer directory format than this build reads: it keeps its own.
        Some(_) | None => None,
    };
    let docs: Vec<DocId> = answer.changes.iter().map(|c| c.doc.clone()).collect();
    let mut changes = Vec::with_capacity(docs.len());
    let mut refused = Vec::new();
    for (doc, decoded) in docs
        .into_iter()
        .zip(decode_wire_changes(answer.changes.into_vec()))
    {
        match decoded {
            Ok(c) => changes.push(c),
            Err((_, e)) => refused.push((doc, e)),
        }
    }
    Ok(PulledPage {
        changes,
        refused,
        next: PullState {
            cursor: answer.cursor,
            page: answer.page,
            purged: answer.purge.clone(),
        },
        purge: answer.purge,
        more: answer.more,
        new_token: answer.new_token,
        backlog: answer.backlog.filter(|_| answer.more).unwrap_or_default(),
        erased: answer.erased,
        directory: update,
    })
}

/// The answer's protocol version is one this side speaks (each message is read
/// by its own version).
pub fn check_version(v: u32) -> Result<(), SyncError> {
    if wire::speaks(v) {
        Ok(())
    } else {
        Err(SyncError::Protocol(format!(
            "server speaks protocol version {v}, this side {FIRST_PROTOCOL_VERSION} to {PROTOCOL_VERSION}"
        )))
    }
}

/// What a link learnt about a server, for the next link to it.
#[derive(Debug, Clone)]
pub struct Learnt {
    /// How big its pages may be and how long its requests may take.
    pub pace: Pace,
    /// The protocol version to speak to it: the first, until it says it speaks a
    /// newer one (so a server from before that version is never sent what it
    /// cannot read).
    pub protocol: u32,
}

impl Default for Learnt {
    fn default() -> Self {
        Learnt {
            pace: Pace::default(),
            protocol: FIRST_PROTOCOL_VERSION,
        }
    }
}

/// A connection to a server: the transport, the token, what went over it, and
/// what it learnt: the [`Pace`] that sizes its pages and times its requests, and
/// the protocol version the server speaks.
pub struct Link<'a> {
    transport: &'a dyn Transport,
    token: Option<String>,
    learnt: Learnt,
    /// Requests made.
    pub requests: u64,
    /// Request body bytes sent.
    pub bytes_up: u64,
    /// Answer body bytes received.
    pub bytes_down: u64,
}

impl<'a> Link<'a> {
    /// A link over `transport` with `token` (none for enrollment), knowing nothing
    /// of the server yet.
    pub fn new(transport: &'a dyn Transport, token: Option<&str>) -> Link<'a> {
        Self::resume(transport, token, Learnt::default())
    }

    /// A link that goes on from what an earlier link to the same server learnt
    /// (the app retries after a cut with a new link).
    pub fn resume(transport: &'a dyn Transport, token: Option<&str>, learnt: Learnt) -> Link<'a> {
        Link {
            transport,
            token: token.map(str::to_owned),
            learnt,
            requests: 0,
            bytes_up: 0,
            bytes_down: 0,
        }
    }

    /// Use `token` from the next request on (one the server issued, once stored).
    pub fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// The next page's size for this link, at most `cap` bytes.
    pub fn page(&self, cap: u64) -> u64 {
        self.learnt.pace.page(cap)
    }

    /// What this link has learnt, for the next one.
    pub fn learnt(&self) -> &Learnt {
        &self.learnt
    }

    /// The protocol version to write requests in.
    pub fn protocol(&self) -> u32 {
        self.learnt.protocol
    }

    /// A push or pull answer said the server speaks up to version `speaks` (none:
    /// only the first): speak the newest both sides do from the next request on.
    /// The latest answer decides, so a cluster half upgraded is followed back down.
    pub fn heard(&mut self, speaks: Option<u32>) {
        self.learnt.protocol = speaks
            .unwrap_or(FIRST_PROTOCOL_VERSION)
            .clamp(FIRST_PROTOCOL_VERSION, PROTOCOL_VERSION);
    }

    /// One request of endpoint `E` and its answer, within a timeout that follows
    /// the page; the time it took sizes the next page.
    pub fn call<E: Endpoint>(&mut self, request: &E::Request) -> Result<E::Response, SyncError> {
        let body = wire::encode(request);
        let sent = body.len() as u64;
        self.bytes_up += sent;
        self.requests += 1;
        // An answer is at most about a page (a pull), or small.
        let pace = &mut self.learnt.pace;
        let timeout = pace.timeout(sent.max(pace.page(u64::MAX)));
        let started = Instant::now();
        let answer =
            match self
                .transport
                .post_within(E::ROUTE.path(), self.token.as_deref(), body, timeout)
            {
                Ok(answer) => answer,
                Err(e) => {
                    if matches!(e, TransportError::Network(_)) {
                        pace.failed();
                    }
                    return Err(e.into());
                }
            };
        pace.done(sent + answer.len() as u64, started.elapsed());
        self.bytes_down += answer.len() as u64;
        wire::decode(&answer).map_err(|e| SyncError::Protocol(e.to_string()))
    }
}

/// The side of a sync that keeps state: where outgoing changes come from and where
/// answers and pulled pages are recorded, each durably before the next request.
pub trait Replica {
    /// The oldest changes the server has not settled, up to about `max_bytes`.
    fn outgoing(&self, max_bytes: usize) -> Result<Vec<Outgoing>, SyncError>;
    /// Record the answer to the push of the last [`Replica::outgoing`] page.
    /// Returns whether anything moved (if not, everything left waits and the push
    /// phase ends).
    fn record_push(&self, verdicts: &PushVerdicts) -> Result<bool, SyncError>;
    /// Where pulls stand.
    fn pull_state(&self) -> Result<PullState, SyncError>;
    /// Apply a page and record its state, atomically — with the page's new token,
    /// if it has one and this replica keeps its token (say so in
    /// [`PullApplied::token_kept`]).
    fn apply_pull(&self, page: PulledPage) -> Result<PullApplied, SyncError>;
    /// The directory revision this replica holds, if it takes directory updates.
    fn directory_revision(&self) -> Result<Option<u64>, SyncError>;
    /// Keep a newer directory revision (validated by [`read_pull`]). Called after
    /// the page it came with is applied: cut short, the next pull brings it again.
    fn apply_directory(&self, update: DirectoryUpdate) -> Result<(), SyncError>;
}

/// What applying one pull page did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PullApplied {
    /// Changes new here.
    pub new: u64,
    /// Documents removed.
    pub purged: u64,
    /// The page's new token was stored with it: the link uses it from now on.
    pub token_kept: bool,
}

/// What a push phase did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushTotals {
    /// Changes the server stored (or already had).
    pub stored: u64,
    /// Changes it refused, with reasons.
    pub rejected: Vec<(ChangeHash, String)>,
    /// Changes it deferred in the last round.
    pub deferred: u64,
    /// Request body bytes of this phase.
    pub bytes: u64,
}

/// Push everything `replica` has for the server, in pages the link's pace sizes
/// (at most about `page_bytes`),
/// until nothing is left or nothing moves. `progress` sees the totals so far after
/// every page.
pub fn push_all(
    replica: &dyn Replica,
    link: &mut Link<'_>,
    page_bytes: usize,
    progress: &mut dyn FnMut(&PushTotals),
) -> Result<PushTotals, SyncError> {
    let mut totals = PushTotals::default();
    for _ in 0..MAX_ROUNDS {
        let items = replica.outgoing(link.page(page_bytes as u64) as usize)?;
        if items.is_empty() {
            break;
        }
        let page = PushPage::new(&items, link.protocol());
        let before = link.bytes_up;
        let answer = link.call::<Push>(&page.request)?;
        link.heard(answer.speaks);
        totals.bytes += link.bytes_up - before;
        let verdicts = page.read(answer)?;
        let moved = replica.record_push(&verdicts)?;
        totals.stored += verdicts.stored.len() as u64;
        totals.deferred = verdicts.deferred.len() as u64;
        totals.rejected.extend(verdicts.rejected);
        progress(&totals);
        if !moved {
            break;
        }
    }
    Ok(totals)
}

/// What a pull phase did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PullTotals {
    /// Changes new here.
    pub pulled: u64,
    /// Changes the checked decoder refused.
    pub refused: u64,
    /// Documents removed.
    pub purged: u64,
    /// Answer body bytes of this phase.
    pub bytes: u64,
    /// What the server said still waits after the last page.
    pub backlog: Backlog,
    /// Whether a newer directory revision arrived (and was kept).
    pub directory: bool,
}

/// Pull pages the link's pace sizes (at most `page_bytes`) until the server has
/// nothing more.
pub fn pull_all(
    replica: &dyn Replica,
    link: &mut Link<'_>,
    page_bytes: u64,
    progress: &mut dyn FnMut(&PullTotals),
) -> Result<PullTotals, SyncError> {
    let mut totals = PullTotals::default();
    for _ in 0..MAX_ROUNDS {
        let state = replica.pull_state()?;
        let directory = replica.directory_revision()?;
        let before = link.bytes_down;
        let request = pull_request(&state, directory, link.page(page_bytes), link.protocol());
        let answer = link.call::<Pull>(&request)?;
        link.heard(answer.speaks);
        totals.bytes += link.bytes_down - before;
        let mut page = read_pull(answer, directory)?;
        let update = page.directory.take();
        let more = page.more;
        totals.backlog = page.backlog;
        let new_token = page.new_token.clone();
        totals.refused += page.refused.len() as u64;
        let applied = replica.apply_pull(page)?;
        // Only a token that is stored is used: the old one stops working once the
        // server sees the new one, and the next sync starts from what is stored.
        if let (Some(token), true) = (new_token, applied.token_kept) {
            link.set_token(token);
        }
        if let Some(update) = update {
            replica.apply_directory(update)?;
            totals.directory = true;
        }
        totals.pulled += applied.new;
        totals.purged += applied.purged;
        progress(&totals);
        if !more {
            break;
        }
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::wire::ChangeResult;

    fn outgoing(n: u8) -> Outgoing {
        Outgoing {
            doc: "case-0123456789abcdef0123456789abcdef".parse().unwrap(),
            hash: ChangeHash([n; 32]),
            bytes: vec![n],
        }
    }

    #[test]
    fn a_push_answer_is_read_into_verdicts() {
        let page = PushPage::new(&[outgoing(1), outgoing(2), outgoing(3)], PROTOCOL_VERSION);
        assert_eq!(page.request.changes.len(), 3);
        let result = |n: u8, status, reason: Option<&str>| ChangeResult {
            hash: ChangeHash([n; 32]),
            status,
            reason: reason.map(str::to_owned),
        };
        let verdicts = page
            .read(PushResponse {
                v: PROTOCOL_VERSION,
                results: vec![
                    result(1, ChangeStatus::Accepted, None),
                    result(2, ChangeStatus::Rejected, Some("scope")),
                    result(3, ChangeStatus::Deferred, None),
                ],
                speaks: None,
            })
            .unwrap();
        assert_eq!(verdicts.stored, vec![ChangeHash([1; 32])]);
        assert_eq!(
            verdicts.rejected,
            vec![(ChangeHash([2; 32]), "scope".to_owned())]
        );
        assert_eq!(verdicts.deferred, vec![ChangeHash([3; 32])]);
    }

    #[test]
    fn an_answer_about_unsent_changes_or_another_version_is_refused() {
        let page = PushPage::new(&[outgoing(1)], PROTOCOL_VERSION);
        let bad = page.read(PushResponse {
            v: PROTOCOL_VERSION,
            results: vec![ChangeResult {
                hash: ChangeHash([9; 32]),
                status: ChangeStatus::Accepted,
                reason: None,
            }],
            speaks: None,
        });
        assert!(matches!(bad, Err(SyncError::Protocol(_))));
        let other = PushPage::new(&[outgoing(1)], PROTOCOL_VERSION).read(PushResponse {
            v: PROTOCOL_VERSION + 1,
            results: vec![],
            speaks: None,
        });
        assert!(matches!(other, Err(SyncError::Protocol(_))));
    }

    #[test]
    fn a_pull_page_decodes_changes_and_counts_refusals() {
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        doc.put(automerge::ROOT, "k", "v").unwrap();
        doc.commit();
        let good = doc.get_changes(&[])[0].raw_bytes().to_vec();
        let id: DocId = "case-0123456789abcdef0123456789abcdef".parse().unwrap();
        let page = read_pull(
            PullResponse {
                v: PROTOCOL_VERSION,
                changes: vec![
                    WireChange {
                        doc: id.clone(),
                        bytes: good,
                    },
                    WireChange {
                        doc: id.clone(),
                        bytes: vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2, 0],
                    },
                ]
                .into(),
                cursor: 7,
                more: true,
                purge: vec![id.clone()],
                page: 3,
                new_token: None,
                backlog: Some(Backlog {
                    changes: 40,
                    bytes: 52_000,
                }),
                erased: vec![],
                directory: None,
                speaks: None,
            },
            None,
        )
        .unwrap();
        assert_eq!(page.changes.len(), 1);
        assert_eq!(page.refused.len(), 1);
        assert_eq!(page.next.cursor, 7);
        assert_eq!(page.next.page, 3);
        assert_eq!(page.next.purged, vec![id]);
        assert!(page.more);
        assert_eq!(page.backlog.bytes, 52_000);
    }

    #[test]
    fn a_directory_update_must_be_newer_and_one_this_build_reads() {
        let answer = |revision, json: &str| PullResponse {
            v: PROTOCOL_VERSION,
            changes: vec![].into(),
            cursor: 1,
            more: false,
            purge: vec![],
            page: 1,
            new_token: None,
            backlog: None,
            erased: vec![],
            directory: Some(DirectoryUpdate {
                revision,
                json: json.into(),
            }),
            speaks: None,
        };
        let sample = include_str!("../../data/sample-directory.json");
        let page = read_pull(answer(3, sample), Some(2)).unwrap();
        assert_eq!(page.directory.map(|d| d.revision), Some(3));
        for (revision, held) in [(2, Some(2)), (3, None)] {
            assert!(
                matches!(
                    read_pull(answer(revision, sample), held),
                    Err(SyncError::Protocol(_))
                ),
                "revision {revision} over {held:?}"
            );
        }
        // One this build cannot read is left out; the page still applies.
        let page = read_pull(answer(3, "{\"format\": \"next\"}"), Some(2)).unwrap();
        assert!(page.directory.is_none());
        assert_eq!(page.next.cursor, 1);
    }
}
