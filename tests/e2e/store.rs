//! The relay's store: one suite, run against SQLite and against a real PostgreSQL
//! server (the same test functions for both), plus what only a shared database
//! has to get right: migrations when nodes start together.

use std::sync::Arc;

use gridsync_core::{DeviceId, DocId, DocKind, RegionCode, UserId};
use gridsync_server::notify::Rule;
use gridsync_server::relay::store::{
    open_store, DocScope, EnrollmentBatch, Erased, LogEntry, NewNotification, NotStored,
    NotificationState, PullAsk, PullPage, RelayStore, Settle, StoreErrorKind, TokenKind,
    Visibility, BACKLOG_CAP,
};
use tempfile::TempDir;

const TOWN: &str = "339901001";
const GRID1: &str = "339901001001001";
const GRID2: &str = "339901001001002";
const FAR: i64 = i64::MAX / 2;

struct Opened {
    store: Arc<dyn RelayStore>,
    _dir: TempDir,
}

fn sqlite() -> Opened {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(dir.path(), None).expect("sqlite store");
    Opened { store, _dir: dir }
}

fn postgres() -> Opened {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = gridsync_tests::postgres_database();
    let store = open_store(dir.path(), Some(&url)).expect("postgres store");
    Opened { store, _dir: dir }
}

/// Each test function, for both stores.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { let o = super::sqlite(); super::$name(&o.store); })*
        }
        mod postgres {
            $(#[test] fn $name() { let o = super::postgres(); super::$name(&o.store); })*
        }
    };
}

on_both_stores!(
    an_enrollment_code_works_once,
    appends_are_logged_once_in_order,
    logged_changes_are_found_with_their_documents,
    a_pull_brings_what_the_device_may_see_in_order,
    base_data_goes_only_where_it_is_kept,
    a_document_dispatched_arrives_whole_and_leaves_when_reassigned,
    pages_split_by_size_and_lose_nothing,
    an_unacknowledged_page_is_sent_again,
    a_pull_with_nothing_new_records_nothing_and_answers_the_same,
    backlogs_and_lag_count_what_is_waiting,
    photos_are_visible_with_their_documents,
    settings_accounts_and_sessions,
    pulls_never_skip_changes_committed_concurrently,
    tokens_are_offered_confirmed_and_retired,
    notifications_are_queued_once_taken_once_and_settled,
    a_disabled_user_loses_devices_codes_and_sessions_at_once,
    what_the_upstream_did_not_store_is_kept_retried_and_forgotten,
    photos_missing_here_are_asked_for_with_waits_and_not_for_ever,
    an_erased_photos_position_is_never_given_again,
    an_erased_photo_goes_unless_recorded_again_and_scrubs_are_marked,
);

fn a_disabled_user_loses_devices_codes_and_sessions_at_once(s: &Arc<dyn RelayStore>) {
    let (used, spare) = ([60u8; 32], [61u8; 32]);
    let (phone, tablet) = (DeviceId::random(), DeviceId::random());
    code_for(s, "w1", &used, FAR, false);
    code_for(s, "w1", &[62u8; 32], FAR, false);
    s.redeem_enrollment(&used, phone, &[63u8; 32], "1.0", 1, FAR)
        .expect("redeem");
    s.redeem_enrollment(&[62u8; 32], tablet, &[64u8; 32], "1.0", 1, FAR)
        .expect("redeem");
    code_for(s, "w1", &spare, FAR, false);
    code_for(s, "w2", &[65u8; 32], FAR, false);
    s.create_session(&[66u8; 32], &user("w1"), "csrf", FAR)
        .expect("session");

    assert_eq!(
        s.disable_user(&user("w1"), Some(&user("td")), 10)
            .expect("disable"),
        2
    );
    assert_eq!(
        s.disable_user(&user("w1"), None, 11).expect("again"),
        0,
        "once"
    );
    assert!(s.is_disabled(&user("w1")).expect("is") && !s.is_disabled(&user("w2")).expect("is"));
    assert!(s
        .devices()
        .expect("devices")
        .iter()
        .all(|d| d.user != user("w1") || d.revoked));
    assert_eq!(
        s.redeem_enrollment(&spare, DeviceId::random(), &[67u8; 32], "1.0", 12, FAR)
            .expect("withdrawn"),
        None
    );
    assert!(s.session(&[66u8; 32], 12).expect("session").is_none());
    assert_eq!(
        s.disabled_users().expect("list"),
        [(user("w1"), 10, Some("td".to_owned()))]
    );
    // Another user's code is untouched.
    assert_eq!(
        s.redeem_enrollment(&[65u8; 32], DeviceId::random(), &[68u8; 32], "1.0", 12, FAR)
            .expect("redeem"),
        Some(user("w2"))
    );
    assert!(
        s.enable_user(&user("w1")).expect("enable") && !s.enable_user(&user("w1")).expect("twice")
    );
}

/// Store one enrollment code (its hash) for user `who`.
fn code_for(s: &Arc<dyn RelayStore>, who: &str, hash: &[u8; 32], expires_ms: i64, relay: bool) {
    s.create_enrollments(&EnrollmentBatch {
        codes: &[(user(who), *hash)],
        expires_ms,
        relay,
        issued_by: None,
        issued_ms: 1,
    })
    .expect("code");
}

fn user(s: &str) -> UserId {
    s.parse().expect("user id")
}

fn region(s: &str) -> Visibility {
    Visibility {
        registry: true,
        region: Some(s.parse().expect("region")),
        dept: None,
    }
}

fn dept(s: &str) -> Visibility {
    Visibility {
        registry: true,
        region: None,
        dept: Some(s.parse().expect("dept")),
    }
}

fn scope(grid: &str, dept: Option<&str>) -> DocScope {
    DocScope {
        grid: grid.parse::<RegionCode>().expect("grid"),
        dept: dept.map(|d| d.parse().expect("dept")),
        photos: Vec::new(),
    }
}

/// Enroll a new device for `who`.
fn enroll(s: &Arc<dyn RelayStore>, who: &str) -> DeviceId {
    let device = DeviceId::random();
    let code = *DeviceId::random()
        .actor()
        .to_bytes()
        .first_chunk::<16>()
        .expect("16 bytes");
    let mut code_hash = [0u8; 32];
    code_hash[..16].copy_from_slice(&code);
    let mut token = [0u8; 32];
    token[..16].copy_from_slice(&code);
    token[31] = 1;
    code_for(s, who, &code_hash, FAR, false);
    let got = s
        .redeem_enrollment(&code_hash, device, &token, "1.0", 1, FAR)
        .expect("redeem");
    assert_eq!(got, Some(user(who)));
    device
}

/// A change of `doc` with distinct bytes (the store does not parse them).
fn entry(doc: &DocId, n: u32) -> LogEntry {
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(&DeviceId::random().actor().to_bytes()[..16]);
    let mut bytes = format!("change {n} of {doc}").into_bytes();
    bytes.resize(100, b'.');
    LogEntry {
        hash,
        doc: doc.clone(),
        bytes,
    }
}

fn append(
    s: &Arc<dyn RelayStore>,
    device: DeviceId,
    doc: &DocId,
    sc: &DocScope,
    n: u32,
) -> LogEntry {
    let e = entry(doc, n);
    s.append(
        device,
        std::slice::from_ref(&e),
        &[(doc.clone(), sc.clone())],
        10,
        None,
    )
    .expect("append");
    e
}

fn pull(
    s: &Arc<dyn RelayStore>,
    device: DeviceId,
    vis: &Visibility,
    cursor: u64,
    ack: u64,
) -> PullPage {
    let ask = PullAsk {
        cursor,
        max_bytes: 1 << 20,
        ack_page: ack,
        purged: &[],
        directory: None,
    };
    s.pull(device, vis, &ask, 20).expect("pull")
}

fn an_enrollment_code_works_once(s: &Arc<dyn RelayStore>) {
    let code = [7u8; 32];
    let (a, b) = (DeviceId::random(), DeviceId::random());
    code_for(s, "w1", &code, FAR, false);
    assert_eq!(
        s.redeem_enrollment(&code, a, &[1u8; 32], "1.0", 1, FAR)
            .expect("redeem"),
        Some(user("w1"))
    );
    assert_eq!(
        s.redeem_enrollment(&code, b, &[2u8; 32], "1.0", 1, FAR)
            .expect("again"),
        None,
        "a used code"
    );
    // A device id is enrolled once, and the refused code stays usable.
    let second = [8u8; 32];
    code_for(s, "w2", &second, FAR, true);
    assert_eq!(
        s.redeem_enrollment(&second, a, &[3u8; 32], "1.0", 1, FAR)
            .expect("taken"),
        None
    );
    assert_eq!(
        s.redeem_enrollment(&second, b, &[4u8; 32], "2.0", 1, FAR)
            .expect("redeem"),
        Some(user("w2"))
    );
    let expired = [9u8; 32];
    code_for(s, "w1", &expired, 5, false);
    assert_eq!(
        s.redeem_enrollment(&expired, DeviceId::random(), &[5u8; 32], "1.0", 6, FAR)
            .expect("late"),
        None
    );
    // A code withdrawn before use works no more; one used cannot be withdrawn.
    let withdrawn = [10u8; 32];
    code_for(s, "w3", &withdrawn, FAR, false);
    assert!(s.revoke_enrollment(&withdrawn, 7).expect("revoke"));
    assert!(!s.revoke_enrollment(&withdrawn, 8).expect("twice"));
    assert!(!s.revoke_enrollment(&code, 8).expect("a used code"));
    assert_eq!(
        s.redeem_enrollment(&withdrawn, DeviceId::random(), &[11u8; 32], "1.0", 9, FAR)
            .expect("withdrawn"),
        None
    );
    let listed = s.list_enrollments(0, 100).expect("list");
    assert_eq!(listed.len(), 4);
    let find = |h: &[u8; 32]| listed.iter().find(|e| &e.code_hash == h).expect("listed");
    assert_eq!(find(&withdrawn).revoked_ms, Some(7));
    assert_eq!(find(&code).used.as_ref().map(|(at, _)| *at), Some(1));
    assert!(find(&second).relay && find(&expired).used.is_none());

    let rec = s
        .device_by_token(&[4u8; 32])
        .expect("lookup")
        .expect("known token");
    assert_eq!(
        (rec.device, rec.user.clone(), rec.relay, rec.revoked),
        (b, user("w2"), true, false)
    );
    assert_eq!(rec.app_version, "2.0");
    assert!(s.device_by_token(&[6u8; 32]).expect("lookup").is_none());
    assert!(s.revoke(a, 50).expect("revoke"));
    assert!(!s.revoke(a, 51).expect("revoke twice"));
    assert!(
        s.device_by_token(&[1u8; 32])
            .expect("lookup")
            .expect("a")
            .revoked
    );
    let all: Vec<DeviceId> = s
        .devices()
        .expect("devices")
        .iter()
        .map(|d| d.device)
        .collect();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&a) && all.contains(&b));
    assert!(s.is_local_device(a).expect("local"));
    assert!(!s.is_local_device(DeviceId::random()).expect("not local"));
}

fn logged_changes_are_found_with_their_documents(s: &Arc<dyn RelayStore>) {
    let w = enroll(s, "w1");
    let (one, other) = (DocId::new(DocKind::Case), DocId::new(DocKind::Case));
    let sc = scope(GRID1, None);
    // More than one lookup statement's worth, the last one short.
    let entries: Vec<LogEntry> = (0..1_203)
        .map(|n| entry(if n % 3 == 0 { &other } else { &one }, n))
        .collect();
    s.append(
        w,
        &entries,
        &[(one.clone(), sc.clone()), (other.clone(), sc)],
        10,
        None,
    )
    .expect("append");
    let unlogged = entry(&one, 5_000).hash;
    let mut asked: Vec<[u8; 32]> = entries.iter().rev().map(|e| e.hash).collect();
    asked.insert(600, unlogged);
    let mut found = s.logged_docs(&asked).expect("lookup");
    found.sort();
    let mut want: Vec<([u8; 32], DocId)> =
        entries.iter().map(|e| (e.hash, e.doc.clone())).collect();
    want.sort();
    assert_eq!(found, want);
    assert!(s.logged_docs(&[unlogged]).expect("lookup").is_empty());
    assert!(s.logged_docs(&[]).expect("lookup").is_empty());
}

fn appends_are_logged_once_in_order(s: &Arc<dyn RelayStore>) {
    let (w, x) = (enroll(s, "w1"), enroll(s, "w2"));
    let doc = DocId::new(DocKind::Case);
    let sc = scope(GRID1, None);
    let first = append(s, w, &doc, &sc, 1);
    let second = append(s, x, &doc, &sc, 2);
    // The same change again (a retried push) is logged once.
    let top = s
        .append(
            w,
            std::slice::from_ref(&first),
            &[(doc.clone(), sc.clone())],
            11,
            None,
        )
        .expect("again");
    assert_eq!(s.log_len().expect("len"), 2);
    assert_eq!(s.log_top().expect("top"), top);
    let all = s.log_after(0, None, 1 << 20).expect("log");
    let hashes: Vec<[u8; 32]> = all.iter().map(|(_, e)| e.hash).collect();
    assert_eq!(hashes, vec![first.hash, second.hash]);
    assert!(all[0].0 < all[1].0);
    assert_eq!(all[1].1.bytes, second.bytes);
    let not_w = s.log_after(0, Some(w), 1 << 20).expect("log");
    assert_eq!(not_w.len(), 1);
    assert_eq!(not_w[0].1.hash, second.hash);
    assert!(s
        .log_after(all[1].0, None, 1 << 20)
        .expect("log")
        .is_empty());
    // At least one entry, however small the budget.
    assert_eq!(s.log_after(0, None, 1).expect("log").len(), 1);
    // A push whose checks stood at another end of the log stores nothing.
    let third = entry(&doc, 3);
    let batch = [(doc.clone(), sc.clone())];
    let moved = s.append(w, std::slice::from_ref(&third), &batch, 12, Some(top - 1));
    let moved = moved.expect_err("the log moved under the push");
    assert_eq!(
        moved.kind(),
        StoreErrorKind::Transient,
        "a push that lost its lock is checked again, not answered 500"
    );
    assert_eq!(s.log_len().expect("len"), 2);
    let stored = s
        .append(w, std::slice::from_ref(&third), &batch, 12, Some(top))
        .expect("the log ends where the push stood");
    assert!(stored > top);
    assert_eq!(s.log_len().expect("len"), 3);
}

fn a_pull_brings_what_the_device_may_see_in_order(s: &Arc<dyn RelayStore>) {
    let (w1, w2, town) = (enroll(s, "w1"), enroll(s, "w2"), enroll(s, "town"));
    let (d1, d2) = (DocId::new(DocKind::Case), DocId::new(DocKind::Patrol));
    let a = append(s, w1, &d1, &scope(GRID1, None), 1);
    let b = append(s, w2, &d2, &scope(GRID2, None), 2);
    let c = append(s, w1, &d1, &scope(GRID1, None), 3);
    let top = s.log_top().expect("top");

    let page = pull(s, town, &region(TOWN), 0, 0);
    let got: Vec<&Vec<u8>> = page.changes.iter().map(|(_, c)| c).collect();
    assert_eq!(
        got,
        vec![&a.bytes, &b.bytes, &c.bytes],
        "the whole town, in log order"
    );
    assert_eq!((page.cursor, page.more), (top, false));
    assert!(page.purge.is_empty());

    // A worker gets the other grid's nothing, and not her own changes back, but her
    // cursor moves to the end.
    let own = pull(s, w1, &region(GRID1), 0, 0);
    assert!(own.changes.is_empty());
    assert_eq!(own.cursor, top);
    let other = pull(s, w2, &region(GRID1), 0, 0);
    assert_eq!(other.changes.len(), 2);
    assert!(other.changes.iter().all(|(doc, _)| *doc == d1));

    // Nothing new: an empty page at the same cursor.
    let again = pull(s, town, &region(TOWN), top, page.page);
    assert!(again.changes.is_empty());
    assert_eq!(again.cursor, top);
    assert!(again.page > page.page, "pages are numbered");
}

/// A visibility without base data pulls the region's cases but no person,
/// household or place, counts none in its backlog, and is told to purge any it
/// holds.
fn base_data_goes_only_where_it_is_kept(s: &Arc<dyn RelayStore>) {
    let (w, town) = (enroll(s, "w1"), enroll(s, "town"));
    let case = DocId::new(DocKind::Case);
    let registry = [
        DocId::new(DocKind::Person),
        DocId::new(DocKind::Household),
        DocId::new(DocKind::Place),
    ];
    append(s, w, &case, &scope(GRID1, None), 1);
    for (i, doc) in registry.iter().enumerate() {
        append(s, w, doc, &scope(GRID1, None), 2 + i as u32);
    }
    let keeps = region(TOWN);
    let not = Visibility {
        registry: false,
        ..region(TOWN)
    };
    let first = pull(s, town, &keeps, 0, 0);
    assert_eq!(first.changes.len(), 4);
    let backlog = |v: &Visibility| s.backlog(town, v, 0, BACKLOG_CAP).expect("backlog").changes;
    assert_eq!((backlog(&keeps), backlog(&not)), (4, 1));
    // The device holds them all (the page above, acknowledged): now it is told to
    // purge the base data.
    let page = pull(s, town, &not, first.cursor, first.page);
    let mut purge = page.purge.clone();
    purge.sort();
    let mut expected = registry.to_vec();
    expected.sort();
    assert_eq!(purge, expected);
    let other = enroll(s, "town2");
    let fresh = pull(s, other, &not, 0, 0);
    assert!(
        fresh.changes.iter().all(|(doc, _)| *doc == case),
        "{:?}",
        fresh.changes
    );
    assert_eq!(fresh.changes.len(), 1);
}

fn a_document_dispatched_arrives_whole_and_leaves_when_reassigned(s: &Arc<dyn RelayStore>) {
    let (w, handler) = (enroll(s, "w1"), enroll(s, "h1"));
    let doc = DocId::new(DocKind::Case);
    append(s, w, &doc, &scope(GRID1, None), 1);
    append(s, w, &doc, &scope(GRID1, None), 2);
    let before = pull(s, handler, &dept("urban"), 0, 0);
    assert!(before.changes.is_empty());

    // Dispatched to the handler's department: the history before her cursor comes
    // whole, then the new change.
    append(s, w, &doc, &scope(GRID1, Some("urban")), 3);
    let page = pull(s, handler, &dept("urban"), before.cursor, before.page);
    assert_eq!(page.changes.len(), 3);
    assert!(page.changes.iter().all(|(d, _)| *d == doc));

    // Reassigned elsewhere: she is told to remove it, until she says she did.
    append(s, w, &doc, &scope(GRID1, Some("water")), 4);
    let gone = pull(s, handler, &dept("urban"), page.cursor, page.page);
    assert!(gone.changes.is_empty());
    assert_eq!(gone.purge, vec![doc.clone()]);
    let purged = [doc.clone()];
    let ask = PullAsk {
        cursor: gone.cursor,
        max_bytes: 1 << 20,
        ack_page: gone.page,
        purged: &purged,
        directory: None,
    };
    let after = s.pull(handler, &dept("urban"), &ask, 30).expect("pull");
    assert!(after.purge.is_empty());
}

fn pages_split_by_size_and_lose_nothing(s: &Arc<dyn RelayStore>) {
    let (w, town) = (enroll(s, "w1"), enroll(s, "town"));
    let mut sent = Vec::new();
    for n in 0..25 {
        let doc = DocId::new(DocKind::Case);
        sent.push(append(s, w, &doc, &scope(GRID1, None), n).bytes);
    }
    let (mut cursor, mut ack, mut got, mut pages) = (0, 0, Vec::new(), 0);
    loop {
        let ask = PullAsk {
            cursor,
            max_bytes: 450,
            ack_page: ack,
            purged: &[],
            directory: None,
        };
        let page = s.pull(town, &region(TOWN), &ask, 40).expect("pull");
        assert!(
            page.changes.len() <= 4,
            "450 bytes hold four 100-byte changes"
        );
        got.extend(page.changes.into_iter().map(|(_, c)| c));
        (cursor, ack) = (page.cursor, page.page);
        pages += 1;
        if !page.more {
            break;
        }
        assert!(pages < 50, "paging ends");
    }
    assert_eq!(got, sent, "every change once, in order");
    assert_eq!(pages, 7);
}

fn an_unacknowledged_page_is_sent_again(s: &Arc<dyn RelayStore>) {
    let (w, handler) = (enroll(s, "w1"), enroll(s, "h1"));
    let doc = DocId::new(DocKind::Case);
    append(s, w, &doc, &scope(GRID1, None), 1);
    let start = pull(s, handler, &dept("urban"), 0, 0);
    append(s, w, &doc, &scope(GRID1, Some("urban")), 2);
    let lost = pull(s, handler, &dept("urban"), start.cursor, start.page);
    assert_eq!(lost.changes.len(), 2);
    // The answer never arrived: the device asks again from where it was, without
    // acknowledging the lost page, and gets the same document whole.
    let again = pull(s, handler, &dept("urban"), start.cursor, start.page);
    assert_eq!(again.changes, lost.changes);
    // Acknowledged, it is not sent a third time.
    let done = pull(s, handler, &dept("urban"), again.cursor, again.page);
    assert!(done.changes.is_empty());
}

/// Most pulls find nothing new: they are answered from a read, with the page
/// number and purge list the written way would give, and write only what a
/// device's pull must record (a page that sent something, an acknowledged purge,
/// a moved cursor, a last sighting older than a minute).
fn a_pull_with_nothing_new_records_nothing_and_answers_the_same(s: &Arc<dyn RelayStore>) {
    let (w, handler) = (enroll(s, "w1"), enroll(s, "h1"));
    let urban = dept("urban");
    let ask = |cursor: u64, ack_page: u64, purged: &[DocId], now_ms: i64| {
        let ask = PullAsk {
            cursor,
            max_bytes: 1 << 20,
            ack_page,
            purged,
            directory: None,
        };
        s.pull(handler, &urban, &ask, now_ms).expect("pull")
    };
    let seen = || {
        s.devices()
            .expect("devices")
            .into_iter()
            .find(|d| d.device == handler)
            .and_then(|d| d.last_seen_ms)
    };
    let doc = DocId::new(DocKind::Case);
    append(s, w, &doc, &scope(GRID1, Some("urban")), 1);
    let first = ask(0, 0, &[], 1_000);
    assert_eq!(first.changes.len(), 1);
    // The next pull records the cursor the device now stands at.
    let recorded = ask(first.cursor, first.page, &[], 1_500);
    assert!(recorded.changes.is_empty());
    assert_eq!(recorded.page, first.page + 1);
    assert_eq!(seen(), Some(1_500));

    // Nothing new, nothing to record, seen half a second ago: nothing written.
    let quiet = ask(recorded.cursor, recorded.page, &[], 2_000);
    assert!(quiet.changes.is_empty() && quiet.purge.is_empty() && !quiet.more);
    assert_eq!((quiet.cursor, quiet.page), (recorded.cursor, recorded.page));
    assert_eq!(seen(), Some(1_500));
    // A minute on, the sighting is recorded, with a page of its own.
    let later = ask(quiet.cursor, quiet.page, &[], 61_500);
    assert_eq!(later.page, recorded.page + 1);
    assert_eq!(seen(), Some(61_500));

    // Reassigned elsewhere: she is told to remove it until she says she did,
    // by the written way and then by the quiet one, under the same page.
    append(s, w, &doc, &scope(GRID1, Some("water")), 2);
    let gone = ask(later.cursor, later.page, &[], 62_000);
    assert_eq!(gone.purge, vec![doc.clone()]);
    let repeated = ask(gone.cursor, gone.page, &[], 62_200);
    assert_eq!(repeated.purge, vec![doc.clone()]);
    let quiet = ask(repeated.cursor, repeated.page, &[], 62_500);
    assert_eq!(
        (quiet.page, quiet.purge.clone()),
        (repeated.page, vec![doc.clone()])
    );
    assert_eq!(seen(), Some(62_200));
    // Acknowledged: written, and not repeated.
    let done = ask(quiet.cursor, quiet.page, std::slice::from_ref(&doc), 63_000);
    assert!(done.purge.is_empty());
    assert_eq!(done.page, repeated.page + 1);
    assert_eq!(seen(), Some(63_000));
}

fn backlogs_and_lag_count_what_is_waiting(s: &Arc<dyn RelayStore>) {
    let (w1, w2, town) = (enroll(s, "w1"), enroll(s, "w2"), enroll(s, "town"));
    let doc = DocId::new(DocKind::Case);
    for n in 0..3 {
        append(s, w1, &doc, &scope(GRID1, None), n);
    }
    append(s, w2, &DocId::new(DocKind::Case), &scope(GRID2, None), 9);
    // Each entry is 100 bytes.
    let backlog = s
        .backlog(town, &region(TOWN), 0, BACKLOG_CAP)
        .expect("backlog");
    assert_eq!((backlog.changes, backlog.bytes), (4, 400));
    assert_eq!(
        s.backlog(w1, &region(GRID1), 0, BACKLOG_CAP)
            .expect("own")
            .changes,
        0
    );
    let other = s
        .backlog(w2, &region(GRID1), 0, BACKLOG_CAP)
        .expect("other");
    assert_eq!((other.changes, other.bytes), (3, 300));
    let (devices, behind, changes) = s.cursor_lag().expect("lag");
    assert_eq!((devices, behind, changes), (3, 3, 12));
    let page = pull(s, town, &region(TOWN), 0, 0);
    assert_eq!(
        s.backlog(town, &region(TOWN), page.cursor, BACKLOG_CAP)
            .expect("backlog"),
        Default::default()
    );
    let (_, behind, changes) = s.cursor_lag().expect("lag");
    // The town reported cursor 0 with that pull; its next pull reports the end.
    assert_eq!((behind, changes), (3, 12));
    pull(s, town, &region(TOWN), page.cursor, page.page);
    assert_eq!(s.cursor_lag().expect("lag").1, 2);
}

fn photos_are_visible_with_their_documents(s: &Arc<dyn RelayStore>) {
    let w = enroll(s, "w1");
    let doc = DocId::new(DocKind::Case);
    let (h1, h2) = ("a".repeat(64), "b".repeat(64));
    let mut sc = scope(GRID1, None);
    sc.photos = vec![(h1.clone(), "w1".into())];
    s.append(w, &[entry(&doc, 1)], &[(doc.clone(), sc)], 10, None)
        .expect("append");
    assert!(s.photo_visible(&h1, &region(GRID1)).expect("visible"));
    assert!(!s.photo_visible(&h1, &region(GRID2)).expect("not visible"));
    assert!(!s.photo_visible(&h2, &region(GRID1)).expect("unknown"));
    assert!(s.photo_attached_by(&h1, "w1").expect("attached"));
    assert!(!s.photo_attached_by(&h1, "w2").expect("not attached"));
    assert!(s
        .photo_referenced_outside(&h1, &region(GRID2))
        .expect("outside"));
    assert!(!s
        .photo_referenced_outside(&h1, &region(TOWN))
        .expect("inside"));

    assert_eq!(s.blob_size(&h1).expect("size"), None);
    assert_eq!(s.last_blob().expect("last"), 0);
    s.record_blob(&h1, 10, 1).expect("record");
    s.record_blob(&h1, 10, 2).expect("again");
    s.record_blob(&h2, 20, 3).expect("record");
    assert_eq!(s.blob_size(&h1).expect("size"), Some(10));
    let last = s.last_blob().expect("last");
    let all = s.blobs_after(0, last, 10).expect("blobs");
    assert_eq!(
        all.iter().map(|(_, h)| h.clone()).collect::<Vec<_>>(),
        vec![h1.clone(), h2.clone()]
    );
    assert_eq!(all[1].0, last);
    assert_eq!(s.blobs_after(all[0].0, last, 10).expect("after").len(), 1);
    assert_eq!(s.blobs_after(0, all[0].0, 10).expect("upto").len(), 1);
    assert_eq!(s.blobs_after(0, last, 1).expect("limit").len(), 1);
}

/// The upstream round and the backups go by photo positions: a photo stored
/// after the newest one was erased must come after every position already
/// passed, or it would never be sent.
fn an_erased_photos_position_is_never_given_again(s: &Arc<dyn RelayStore>) {
    let w = enroll(s, "w1");
    let (kept, erased, next) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    let (stays, goes) = (DocId::new(DocKind::Case), DocId::new(DocKind::Case));
    for (doc, hash) in [(&stays, &kept), (&goes, &erased)] {
        let mut sc = scope(GRID1, None);
        sc.photos = vec![(hash.clone(), "w1".into())];
        s.append(w, &[entry(doc, 1)], &[(doc.clone(), sc)], 10, None)
            .expect("append");
        s.record_blob(hash, 10, 1).expect("record");
    }
    let passed = s.last_blob().expect("last");
    assert_eq!(
        s.erase(&goes, "case-retention", 20, None).expect("erase"),
        Erased::Done {
            new: true,
            photos: vec![erased.clone()]
        }
    );
    assert_eq!(
        s.erased_photos_left("", 10).expect("left"),
        vec![erased.clone()]
    );
    s.record_blob(&next, 10, 30).expect("record");
    let after = s.blobs_after(passed, s.last_blob().expect("last"), 10);
    assert_eq!(
        after
            .expect("after")
            .into_iter()
            .map(|(_, h)| h)
            .collect::<Vec<_>>(),
        vec![next]
    );
}

/// An erasure leaves its photos to remove and a mark that it awaits a scrub, in
/// its own transaction; a photo recorded again before its removal ran (the same
/// bytes for another document) is kept; a failed removal stays to be tried
/// again; a scrub clears only the mark it began with.
fn an_erased_photo_goes_unless_recorded_again_and_scrubs_are_marked(s: &Arc<dyn RelayStore>) {
    let w = enroll(s, "w1");
    let (first, second) = ("d".repeat(64), "e".repeat(64));
    let goes = DocId::new(DocKind::Case);
    let mut sc = scope(GRID1, None);
    sc.photos = vec![(first.clone(), "w1".into()), (second.clone(), "w1".into())];
    s.append(w, &[entry(&goes, 1)], &[(goes.clone(), sc)], 10, None)
        .expect("append");
    for hash in [&first, &second] {
        s.record_blob(hash, 10, 1).expect("record");
    }
    assert_eq!(s.scrub_pending().expect("mark"), None);
    s.erase(&goes, "case-retention", 20, None).expect("erase");
    assert_eq!(
        s.erased_photos_left("", 10).expect("left"),
        vec![first.clone(), second.clone()]
    );
    assert!(s.scrub_pending().expect("mark").is_some());

    // The first is sent again for another document: called off.
    s.record_blob(&first, 10, 30).expect("record again");
    assert_eq!(
        s.erased_photos_left("", 10).expect("left"),
        vec![second.clone()]
    );
    let mut ran = 0;
    let removed = s
        .remove_erased_photo(&first, &mut || {
            ran += 1;
            Ok(())
        })
        .expect("remove");
    assert!(!removed);
    assert_eq!(ran, 0);

    // The second's removal fails, then succeeds; a record of the same bytes
    // meanwhile (another node, another thread) waits for it to end.
    let failing = s.remove_erased_photo(&second, &mut || {
        Err(gridsync_server::relay::store::StoreError::failed(
            "disk gone",
        ))
    });
    assert!(failing.is_err());
    assert_eq!(
        s.erased_photos_left("", 10).expect("left"),
        vec![second.clone()]
    );
    assert_eq!(
        s.erased_photos_left(&first, 10).expect("after the first"),
        vec![second.clone()]
    );
    assert!(s.erased_photos_left(&second, 10).expect("after").is_empty());
    std::thread::scope(|scope| {
        let mut recording = None;
        let removed = s
            .remove_erased_photo(&second, &mut || {
                let s = s.clone();
                let hash = second.clone();
                let record = scope.spawn(move || s.record_blob(&hash, 10, 60));
                std::thread::sleep(std::time::Duration::from_millis(300));
                assert!(!record.is_finished(), "a record ran during the removal");
                recording = Some(record);
                Ok(())
            })
            .expect("remove");
        assert!(removed);
        let record = recording.expect("the removal ran").join();
        record.expect("thread").expect("recorded after the removal");
    });
    assert!(s.erased_photos_left("", 10).expect("left").is_empty());
    assert_eq!(s.blob_size(&first).expect("size"), Some(10));
    assert_eq!(s.blob_size(&second).expect("size"), Some(10));

    // A forgotten photo's row held its hash: a scrub is owed. An erasure after
    // a scrub began marks again; that scrub's end keeps it.
    let mark = s.scrub_pending().expect("mark").expect("marked");
    let later = DocId::new(DocKind::Case);
    s.append(
        w,
        &[entry(&later, 1)],
        &[(later.clone(), scope(GRID1, None))],
        40,
        None,
    )
    .expect("append");
    s.erase(&later, "case-retention", 50, None).expect("erase");
    s.scrubbed(&mark).expect("scrubbed");
    let again = s.scrub_pending().expect("mark").expect("still marked");
    assert_ne!(again, mark);
    s.scrubbed(&again).expect("scrubbed");
    assert_eq!(s.scrub_pending().expect("mark"), None);
}

fn settings_accounts_and_sessions(s: &Arc<dyn RelayStore>) {
    assert_eq!(s.meta("k").expect("meta"), None);
    s.set_meta("k", "v1").expect("set");
    s.set_meta("k", "v2").expect("replace");
    assert_eq!(s.meta("k").expect("meta").as_deref(), Some("v2"));
    assert_eq!(s.meta_or_insert("first", "a").expect("insert"), "a");
    assert_eq!(s.meta_or_insert("first", "b").expect("kept"), "a");
    s.set_metas(&[("x", "1".into()), ("y", "2".into())])
        .expect("set several");
    assert_eq!(s.meta("y").expect("meta").as_deref(), Some("2"));
    // A prefix is literal: "p." does not match "pxa".
    s.set_metas(&[
        ("p.a", "1".into()),
        ("p.b", "2".into()),
        ("pxa", "3".into()),
    ])
    .expect("set prefixed");
    let found = s.metas_with_prefix("p.", 10).expect("prefix");
    assert_eq!(
        found,
        [("p.a".into(), "1".into()), ("p.b".into(), "2".into())]
    );
    assert_eq!(s.metas_with_prefix("p.", 1).expect("limit").len(), 1);
    s.delete_metas(&["p.a".into()]).expect("delete");
    assert_eq!(s.meta("p.a").expect("meta"), None);
    assert_eq!(s.meta("pxa").expect("meta").as_deref(), Some("3"));

    let (d1, d2) = (DeviceId::random(), DeviceId::random());
    assert_eq!(
        s.set_console_password(&user("disp"), "hash1", d1)
            .expect("account"),
        d1
    );
    s.create_session(&[1u8; 32], &user("disp"), "csrf1", 100)
        .expect("session");
    assert_eq!(
        s.session(&[1u8; 32], 50).expect("session"),
        Some((user("disp"), "csrf1".to_owned()))
    );
    // A new password keeps the account's device and ends its sessions.
    assert_eq!(
        s.set_console_password(&user("disp"), "hash2", d2)
            .expect("reset"),
        d1
    );
    assert_eq!(s.session(&[1u8; 32], 50).expect("ended"), None);
    assert_eq!(
        s.console_account(&user("disp")).expect("account"),
        Some(("hash2".to_owned(), d1))
    );
    assert!(s.is_local_device(d1).expect("console device"));
    s.create_session(&[2u8; 32], &user("disp"), "csrf2", 100)
        .expect("session");
    assert_eq!(s.session(&[2u8; 32], 100).expect("expired"), None);
    s.create_session(&[3u8; 32], &user("disp"), "csrf3", 100)
        .expect("session");
    s.end_session(&[3u8; 32]).expect("end");
    assert_eq!(s.session(&[3u8; 32], 50).expect("ended"), None);
}

/// Several writers append while a reader pulls: on a database where transactions
/// commit out of order, a pull could move the cursor past a change not yet
/// visible and lose it for good. The reader must end with every change once. (The
/// documents exist and the reader holds them before, so a skipped change would not
/// come back with a newly visible document's history.)
fn pulls_never_skip_changes_committed_concurrently(s: &Arc<dyn RelayStore>) {
    const WRITERS: usize = 4;
    const EACH: u32 = 20;
    const BATCH: u32 = 20;
    let writers: Vec<(DeviceId, Vec<DocId>)> = (0..WRITERS)
        .map(|i| {
            let w = enroll(s, &format!("w{i}"));
            let docs: Vec<DocId> = (0..4).map(|_| DocId::new(DocKind::Case)).collect();
            for (n, doc) in docs.iter().enumerate() {
                append(s, w, doc, &scope(GRID1, None), 1000 + n as u32);
            }
            (w, docs)
        })
        .collect();
    let town = enroll(s, "town");
    let (mut cursor, mut ack) = (0, 0);
    let mut pull_once = |got: &mut Vec<Vec<u8>>| {
        let page = pull(s, town, &region(TOWN), cursor, ack);
        got.extend(page.changes.into_iter().map(|(_, c)| c));
        (cursor, ack) = (page.cursor, page.page);
        page.more
    };
    let mut before = Vec::new();
    while pull_once(&mut before) {}
    assert_eq!(before.len(), WRITERS * 4, "the reader holds every document");

    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handles: Vec<_> = writers
        .into_iter()
        .map(|(w, docs)| {
            let (s, done) = (s.clone(), done.clone());
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                for n in 0..EACH {
                    // Several changes per append keep each transaction open a while
                    // after it took its sequence numbers.
                    let (entries, scopes): (Vec<_>, Vec<_>) = (0..BATCH)
                        .map(|i| {
                            let doc = &docs[i as usize % docs.len()];
                            (entry(doc, n * BATCH + i), (doc.clone(), scope(GRID1, None)))
                        })
                        .unzip();
                    s.append(w, &entries, &scopes, 10, None).expect("append");
                    sent.extend(entries.into_iter().map(|e| e.bytes));
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                sent
            })
        })
        .collect();
    let mut got = Vec::new();
    while done.load(std::sync::atomic::Ordering::SeqCst) < WRITERS {
        pull_once(&mut got);
    }
    while pull_once(&mut got) {}
    let mut sent: Vec<Vec<u8>> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("writer"))
        .collect();
    assert_eq!(got.len(), sent.len(), "every change exactly once");
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
}

/// Nodes starting together on a new database: one migrates, the others wait and
/// find the schema current. Were a migration run twice, its `CREATE TABLE` would
/// fail and that node would not open.
#[test]
fn postgres_migrations_run_once_when_nodes_start_together() {
    const NODES: usize = 4;
    let url = gridsync_tests::postgres_database();
    let together = Arc::new(std::sync::Barrier::new(NODES));
    let stores: Vec<_> = (0..NODES)
        .map(|_| {
            let (url, together) = (url.clone(), together.clone());
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().expect("temp dir");
                together.wait();
                open_store(dir.path(), Some(&url)).map(|s| (s, dir))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("node thread").expect("every node opens"))
        .collect();
    for (i, (s, _)) in stores.iter().enumerate() {
        s.set_meta(&format!("node{i}"), "up").expect("works");
    }
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("connect");
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .expect("migrations")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!versions.is_empty());
    assert_eq!(
        versions,
        (1..=versions.len() as i64).collect::<Vec<_>>(),
        "every migration applied, in order"
    );
}

/// Token rotation's steps: a successor is offered while the token is current (a
/// second offer retires the first), the first use of the successor makes it the
/// token and retires the old one, and old retirements are forgotten.
fn tokens_are_offered_confirmed_and_retired(s: &Arc<dyn RelayStore>) {
    let (code, dev) = ([40u8; 32], DeviceId::random());
    code_for(s, "w1", &code, FAR, false);
    let (t0, t1, t2) = ([41u8; 32], [42u8; 32], [43u8; 32]);
    s.redeem_enrollment(&code, dev, &t0, "1.0", 100, FAR)
        .expect("redeem");
    let found = |t: &[u8; 32]| s.find_token(t).expect("lookup").map(|(d, k)| (d.device, k));
    let (rec, kind) = s.find_token(&t0).expect("lookup").expect("enrolled");
    assert_eq!((rec.token_issued_ms, kind), (100, TokenKind::Current));
    assert_eq!(found(&t1), None);

    // Offered twice (the first answer lost): the first successor is retired.
    assert!(s.offer_token(dev, &t0, &t1, 200).expect("offer"));
    assert_eq!(found(&t1), Some((dev, TokenKind::Next)));
    assert!(s.offer_token(dev, &t0, &t2, 300).expect("offer again"));
    assert_eq!(
        found(&t1),
        Some((dev, TokenKind::Retired { retired_ms: 300 }))
    );
    assert!(!s
        .offer_token(dev, &t1, &[44u8; 32], 300)
        .expect("not its token"));
    assert!(!s.confirm_token(dev, &t1, 350, 0).expect("not offered"));

    // Used: the successor is the token, the old one retired.
    assert!(s.confirm_token(dev, &t2, 400, 0).expect("confirm"));
    assert!(!s.confirm_token(dev, &t2, 401, 0).expect("twice"));
    let (rec, kind) = s.find_token(&t2).expect("lookup").expect("current");
    assert_eq!((rec.token_issued_ms, kind), (400, TokenKind::Current));
    assert_eq!(
        found(&t0),
        Some((dev, TokenKind::Retired { retired_ms: 400 }))
    );
    assert_eq!(
        s.device_by_token(&t2).expect("lookup").map(|d| d.device),
        Some(dev)
    );
    assert!(s.device_by_token(&t0).expect("lookup").is_none());

    // Retired tokens older than the cut are forgotten at the next confirmation.
    let t3 = [45u8; 32];
    assert!(s.offer_token(dev, &t2, &t3, 500).expect("offer"));
    assert!(s.confirm_token(dev, &t3, 600, 350).expect("confirm"));
    assert_eq!(found(&t1), None, "retired at 300, before the cut");
    assert!(matches!(found(&t0), Some((_, TokenKind::Retired { .. }))));
    assert!(matches!(found(&t2), Some((_, TokenKind::Retired { .. }))));

    // A revoked device is offered nothing.
    assert!(s.revoke(dev, 700).expect("revoke"));
    assert!(!s.offer_token(dev, &t3, &[46u8; 32], 800).expect("revoked"));
    assert!(s.find_token(&t3).expect("lookup").expect("known").0.revoked);
}

/// The notification ledger: a message is queued once per case, rule, recipient
/// and occurrence, taken by one node at a time, and its outcomes recorded.
fn notifications_are_queued_once_taken_once_and_settled(s: &Arc<dyn RelayStore>) {
    let case = DocId::new(DocKind::Case);
    let message = |rule, to: &str, occurrence: &str| NewNotification {
        doc: case.clone(),
        rule,
        recipient: user(to),
        occurrence: occurrence.into(),
        payload: "{}".into(),
        created_ms: 1000,
    };
    let batch = [
        message(Rule::Dispatched, "h-water-1", "d1"),
        message(Rule::Dispatched, "h-water-2", "d1"),
        message(Rule::Supervision, "td-339901001", "5000"),
    ];
    assert_eq!(s.queue_notifications(&batch).expect("queue"), 3);
    // Seen again (the next round, another node): nothing new.
    assert_eq!(s.queue_notifications(&batch).expect("again"), 0);
    let again = [message(Rule::Dispatched, "h-water-1", "d2")];
    assert_eq!(s.queue_notifications(&again).expect("new dispatch"), 1);

    assert!(s.due_notifications(999, 10).expect("due").is_empty());
    let due = s.due_notifications(1000, 10).expect("due");
    assert_eq!(due.len(), 4);
    assert!(due
        .iter()
        .all(|n| n.state == NotificationState::Queued && n.attempts == 0));
    let first = &due[0];
    assert!(s
        .claim_notification(first.id, first.next_ms, 9000)
        .expect("claim"));
    assert!(
        !s.claim_notification(first.id, first.next_ms, 9000)
            .expect("claim"),
        "taken once"
    );
    assert_eq!(s.due_notifications(1000, 10).expect("due").len(), 3);

    s.settle_notification(
        first.id,
        &Settle::Retry {
            attempts: 1,
            next_ms: 2000,
            detail: "http_500".into(),
        },
    )
    .expect("retry");
    s.settle_notification(
        first.id,
        &Settle::Sent {
            attempts: 2,
            at_ms: 2500,
        },
    )
    .expect("sent");
    let second = &due[1];
    s.settle_notification(second.id, &Settle::Deferred { next_ms: 7000 })
        .expect("deferred");
    s.settle_notification(
        due[2].id,
        &Settle::Failed {
            attempts: 8,
            at_ms: 3000,
            detail: "timeout".into(),
        },
    )
    .expect("failed");
    s.settle_notification(due[3].id, &Settle::Cancelled { at_ms: 3100 })
        .expect("cancelled");

    let of_case = s.notifications_of(&case).expect("of case");
    let by_id = |id| of_case.iter().find(|n| n.id == id).expect("listed");
    let sent = by_id(first.id);
    assert_eq!(
        (
            sent.state,
            sent.attempts,
            sent.done_ms,
            sent.detail.as_deref()
        ),
        (NotificationState::Sent, 2, Some(2500), None)
    );
    let waiting = by_id(second.id);
    assert_eq!(
        (
            waiting.state,
            waiting.attempts,
            waiting.next_ms,
            waiting.detail.as_deref()
        ),
        (NotificationState::Queued, 0, 7000, Some("rate_limited"))
    );
    assert_eq!(by_id(due[2].id).state, NotificationState::Failed);
    assert_eq!(by_id(due[3].id).state, NotificationState::Cancelled);
    assert_eq!(
        s.notifications_sent_since(&first.recipient, 2000)
            .expect("sent since"),
        vec![2500]
    );
    assert!(s
        .notifications_sent_since(&first.recipient, 2501)
        .expect("sent since")
        .is_empty());
    assert!(s
        .notifications_of(&DocId::new(DocKind::Case))
        .expect("other case")
        .is_empty());
    let mut counts = s.notification_counts().expect("counts");
    counts.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        counts,
        [
            (NotificationState::Cancelled, 1),
            (NotificationState::Failed, 1),
            (NotificationState::Queued, 1),
            (NotificationState::Sent, 1),
        ]
    );
}

fn what_the_upstream_did_not_store_is_kept_retried_and_forgotten(s: &Arc<dyn RelayStore>) {
    let w = enroll(s, "w1");
    let (near, far) = (DocId::new(DocKind::Case), DocId::new(DocKind::Case));
    let (a, b, c) = (entry(&near, 1), entry(&near, 2), entry(&far, 3));
    s.append(
        w,
        &[a.clone(), b.clone(), c.clone()],
        &[
            (near.clone(), scope(GRID1, None)),
            (far.clone(), scope(GRID2, None)),
        ],
        10,
        None,
    )
    .expect("append");
    let not_stored = |e: &LogEntry, deferred: bool, reason: &str| NotStored {
        hash: e.hash,
        doc: e.doc.clone(),
        deferred,
        reason: reason.into(),
    };
    s.record_upstream_answers(
        &[
            not_stored(&a, true, "waits"),
            not_stored(&b, true, "waits"),
            not_stored(&c, false, "refused"),
        ],
        &[],
        100,
    )
    .expect("record");
    // Only deferred ones go again, in log order, after a position, while young.
    let hashes = |v: Vec<(u64, LogEntry)>| v.into_iter().map(|(_, e)| e.hash).collect::<Vec<_>>();
    let retries = s.upstream_retries(0, 10, u64::MAX).expect("retries");
    let first = retries[0].0;
    assert_eq!(hashes(retries), [a.hash, b.hash]);
    assert_eq!(
        hashes(s.upstream_retries(first, 10, u64::MAX).expect("after")),
        [b.hash]
    );
    assert_eq!(
        hashes(s.upstream_retries(0, 10, 1).expect("bytes")),
        [a.hash]
    );
    s.record_upstream_answers(&[not_stored(&a, true, "still waits")], &[], 200)
        .expect("again");
    assert_eq!(
        hashes(s.upstream_retries(0, 2, u64::MAX).expect("young")),
        [b.hash]
    );

    // Listed by scope, most recently answered first, with their counts.
    let (all, total) = s.upstream_refusals(&region(TOWN), 10).expect("list");
    assert_eq!(total, 3);
    assert_eq!(all[0].hash, a.hash);
    assert_eq!(
        (
            all[0].reason.as_str(),
            all[0].attempts,
            all[0].first_ms,
            all[0].last_ms
        ),
        ("still waits", 2, 100, 200)
    );
    let (grid2, total) = s.upstream_refusals(&region(GRID2), 10).expect("grid");
    assert_eq!((grid2.len(), total), (1, 1));
    assert!(!grid2[0].deferred);
    let (one, total) = s.upstream_refusals(&region(TOWN), 1).expect("limit");
    assert_eq!((one.len(), total), (1, 3));

    // Stored at last: forgotten. Erased: forgotten with its document.
    s.record_upstream_answers(&[], &[a.hash, b.hash], 300)
        .expect("stored");
    s.erase(&far, "test", 400, None).expect("erase");
    assert_eq!(s.upstream_refusals(&region(TOWN), 10).expect("none").1, 0);
    assert!(s
        .upstream_retries(0, 10, u64::MAX)
        .expect("none")
        .is_empty());
}

fn photos_missing_here_are_asked_for_with_waits_and_not_for_ever(s: &Arc<dyn RelayStore>) {
    let w = enroll(s, "w1");
    let doc = DocId::new(DocKind::Case);
    let (had, wanted) = ("a".repeat(64), "b".repeat(64));
    let mut sc = scope(GRID1, None);
    sc.photos = vec![(had.clone(), "w1".into()), (wanted.clone(), "dd".into())];
    s.append(w, &[entry(&doc, 1)], &[(doc.clone(), sc)], 10, None)
        .expect("append");
    s.record_blob(&had, 10, 1).expect("record");
    assert_eq!(
        s.photos_missing(0, 3, 10).expect("missing"),
        [(wanted.clone(), 0)]
    );
    s.photo_missed(&wanted, 1_000).expect("missed");
    assert!(s.photos_missing(999, 3, 10).expect("waiting").is_empty());
    assert_eq!(
        s.photos_missing(1_000, 3, 10).expect("due"),
        [(wanted.clone(), 1)]
    );
    s.photo_missed(&wanted, 2_000).expect("missed");
    s.photo_missed(&wanted, 3_000).expect("missed");
    assert!(s.photos_missing(5_000, 3, 10).expect("given up").is_empty());
    assert_eq!(s.photos_missing(5_000, 4, 10).expect("one more").len(), 1);
    assert!(s.photos_missing(0, 3, 0).expect("limit").is_empty());
    s.record_blob(&wanted, 20, 2).expect("had at last");
    assert!(s.photos_missing(5_000, 10, 10).expect("none").is_empty());
}
