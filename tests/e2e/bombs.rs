//! Hostile changes: decompression bombs (a compressed change and a document chunk
//! inflating to a gibibyte), a bundle, an oversized change, a corrupted checksum
//! and truncated chunks — pushed by an enrolled phone to `gridsync serve`, and
//! served to a phone and to a town relay by a fake upstream. Every one is refused
//! with a reason, the relay's peak memory stays near its idle figure, and it keeps
//! serving.

use std::io::Write;
use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::AutoCommit;
use gridsync_core::sync::change::frame_chunk;
use gridsync_core::sync::route::Route;
use gridsync_core::sync::wire::{
    self, ChangeStatus, EnrollResponse, PullResponse, PushRequest, PushResponse, WireChange,
    PROTOCOL_VERSION,
};
use gridsync_core::sync::{HttpTransport, ServerSecurity, Transport, MAX_CHANGE_BYTES};
use gridsync_core::{DeviceId, DocId, DocKind, Engine, Identity};
use gridsync_server::relay::Relay;
use gridsync_tests::fake_server::FakeServer;
use gridsync_tests::probe::memory;

use crate::sockets::{enroll, start};
use crate::workflow::{leak, WORKER};

/// Raw DEFLATE of `n` zero bytes: a few hundred KB that inflate to `n`.
fn deflated_zeros(n: usize) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![0u8; 1 << 20];
    for _ in 0..n / block.len() {
        enc.write_all(&block).unwrap();
    }
    enc.finish().unwrap()
}

/// A real change, as a phone makes one.
fn real_change() -> Vec<u8> {
    let mut doc = AutoCommit::new();
    doc.put(automerge::ROOT, "title", "楼道堆放杂物").unwrap();
    doc.commit();
    doc.get_changes(&[])[0].raw_bytes().to_vec()
}

/// The hostile inputs, by name. Two inflate to a gibibyte if anything inflates them.
fn bombs() -> Vec<(&'static str, Vec<u8>)> {
    let gib = deflated_zeros(1 << 30);
    let half_gib = deflated_zeros(1 << 29);
    let good = real_change();
    let mut bad_checksum = good.clone();
    bad_checksum[5] ^= 0x20;
    // A change chunk of exactly one byte over the limit.
    let mut oversized = frame_chunk(1, &vec![0u8; MAX_CHANGE_BYTES]);
    let over = oversized.len() - (MAX_CHANGE_BYTES + 1);
    oversized.truncate(oversized.len() - over);
    vec![
        ("compressed change inflating to 1 GiB", frame_chunk(2, &gib)),
        (
            "compressed change inflating to 512 MiB",
            frame_chunk(2, &half_gib),
        ),
        ("document chunk inflating to 1 GiB", frame_chunk(0, &gib)),
        ("bundle", frame_chunk(3, &[1u8; 4096])),
        ("1 MiB + 1 byte", oversized),
        ("corrupted checksum", bad_checksum),
        ("truncated header", good[..7].to_vec()),
        ("truncated body", good[..good.len() - 3].to_vec()),
        ("not a chunk", b"{\"title\":\"hello\"}".to_vec()),
    ]
}

#[test]
fn bombs_pushed_by_an_enrolled_phone_are_refused_and_the_relay_stays_small() {
    let data = tempfile::tempdir().unwrap();
    let phones = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let worker = enroll(data.path(), &server, WORKER, phones.path());
    // Warm the relay up with an ordinary sync, then take its idle figure.
    let id = worker.report_case(leak()).unwrap();
    worker.sync(&mut |_| {}).unwrap();
    let idle = memory(server.child.id());
    let (idle_hwm, idle_rss) = (idle.hwm_kib, idle.rss_kib);

    let (_, token) = worker.server().unwrap().unwrap();
    let transport = HttpTransport::new(&server.url);
    let bombs = bombs();
    let started = Instant::now();
    for (name, bytes) in &bombs {
        let body = wire::encode(&PushRequest {
            v: PROTOCOL_VERSION,
            changes: vec![WireChange {
                doc: id.clone(),
                bytes: bytes.clone(),
            }]
            .into(),
            erased: vec![],
        });
        let answer = transport
            .post(Route::Push.path(), Some(&token), body)
            .unwrap_or_else(|e| panic!("{name}: the relay must answer, got {e}"));
        let answer: PushResponse = wire::decode(&answer).unwrap();
        assert_eq!(answer.results.len(), 1, "{name}");
        let result = &answer.results[0];
        assert_eq!(result.status, ChangeStatus::Rejected, "{name}");
        let reason = result.reason.as_deref().unwrap_or("");
        assert!(!reason.is_empty(), "{name}: refused with a reason");
        println!(
            "{{\"bomb\":{name:?},\"bytes\":{},\"reason\":{reason:?}}}",
            bytes.len()
        );
    }
    let elapsed = started.elapsed();
    let peak = memory(server.child.id());
    let (peak_hwm, rss) = (peak.hwm_kib, peak.rss_kib);
    println!(
        "{{\"test\":\"bombs_pushed\",\"bombs\":{},\"seconds\":{:.3},\"idle_hwm_kib\":{idle_hwm},\"idle_rss_kib\":{idle_rss},\"peak_hwm_kib\":{peak_hwm},\"rss_kib\":{rss}}}",
        bombs.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        peak_hwm <= idle_hwm + 64 * 1024,
        "peak RSS {peak_hwm} KiB must stay within 64 MiB of idle {idle_hwm} KiB"
    );
    // It keeps serving: a note goes up and a second phone gets the case.
    worker.add_note(&id, "已通知物业").unwrap();
    let report = worker.sync(&mut |_| {}).unwrap();
    assert_eq!(report.pushed, 1);
    let dispatcher = enroll(
        data.path(),
        &server,
        crate::workflow::DISPATCHER,
        phones.path(),
    );
    dispatcher.sync(&mut |_| {}).unwrap();
    assert_eq!(dispatcher.get_case(&id).unwrap().doc.notes.len(), 1);
    assert_eq!(
        dispatcher.changes_since(&id, &[]).unwrap().len(),
        2,
        "the report and the note, and no bomb, were logged for that case"
    );
}

/// A pull answer of `bombs` for document `doc`, with `more: false`.
fn bomb_page(doc: &DocId, bombs: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    wire::encode(&PullResponse {
        v: PROTOCOL_VERSION,
        changes: bombs
            .iter()
            .map(|(_, bytes)| WireChange {
                doc: doc.clone(),
                bytes: bytes.clone(),
            })
            .collect(),
        cursor: 1,
        more: false,
        purge: Vec::new(),
        page: 1,
        new_token: None,
        backlog: None,
        erased: Vec::new(),
        directory: None,
        speaks: None,
    })
}

#[test]
fn bombs_served_by_a_fake_upstream_are_refused_by_a_phone_and_a_town_relay() {
    let bombs = bombs();
    let doc = DocId::new(DocKind::Case);
    let page = bomb_page(&doc, &bombs);
    let count = bombs.len() as u64;

    // A phone whose server turned hostile.
    let fake = FakeServer::start(4, move |route, _| match route {
        Route::Pull => (200, page.clone()),
        _ => (404, Vec::new()),
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let phone = Engine::open(
        dir.path().join("phone.db"),
        Identity {
            user: WORKER.parse().unwrap(),
            device: DeviceId::random(),
        },
    )
    .unwrap();
    phone
        .load_directory(gridsync_server::SAMPLE_DIRECTORY)
        .unwrap();
    phone.set_server(&fake.url(), "token").unwrap();
    let report = phone.sync(&mut |_| {}).expect("the sync ends normally");
    println!(
        "{{\"test\":\"bombs_pulled_by_phone\",\"served\":{count},\"refused\":{},\"applied\":{}}}",
        report.pull_refused, report.pulled
    );
    assert_eq!(report.pull_refused, count);
    assert_eq!(report.pulled, 0);
    assert!(phone.doc_ids().unwrap().is_empty());
    assert_eq!(
        phone.pull_state().unwrap().cursor,
        1,
        "the page was settled"
    );

    // A town relay whose district turned hostile.
    let page = bomb_page(&doc, &bombs);
    let directory = gridsync_server::SAMPLE_DIRECTORY.to_owned();
    let fake = FakeServer::start(6, move |route, _| match route {
        Route::Enroll => (
            200,
            wire::encode(&EnrollResponse {
                v: PROTOCOL_VERSION,
                token: "district-token".into(),
                user: "td-339901001".parse().unwrap(),
                directory: directory.clone(),
            }),
        ),
        Route::Pull => (200, page.clone()),
        _ => (404, Vec::new()),
    })
    .unwrap();
    let town_dir = tempfile::tempdir().unwrap();
    let town = Relay::open(town_dir.path(), None).unwrap();
    let transport = HttpTransport::new(&fake.url());
    town.connect_upstream(&transport, &fake.url(), "CODE", &ServerSecurity::default())
        .unwrap();
    let link = town.upstream().unwrap().unwrap();
    let report = town.sync_upstream(&link, &transport).unwrap();
    println!(
        "{{\"test\":\"bombs_pulled_by_town\",\"served\":{count},\"not_stored\":{},\"pulled\":{}}}",
        report.pulled_not_stored, report.pulled
    );
    assert_eq!(report.pulled_not_stored, count);
    assert_eq!(report.pulled, 0);
    assert_eq!(town.store().log_len().unwrap(), 0);
}
