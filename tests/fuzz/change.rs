//! The checked Automerge change decoder, `gridsync_core::sync::change::decode_change`:
//! the one way bytes from a phone, a relay, a log or a backup become a change.
//!
//! Half the inputs are mutated whole (the framing checks: magic, chunk type,
//! length, checksum); the other half have their body mutated and the header
//! rebuilt with a correct length and checksum, so Automerge's own parser sees them.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ScalarValue, ROOT};
use gridsync_core::sync::change::decode_change;

use crate::engine::{fuzz, mutate, Rng, Target, Verdict};

/// Raw bytes of real changes: maps, nested objects, lists, text with CJK and
/// emoji, counters, timestamps, deletions, and changes with dependencies from two
/// actors, like the case and patrol documents the app writes.
pub fn real_changes() -> Vec<Vec<u8>> {
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "kind", "case").unwrap();
    doc.put(ROOT, "title", "楼上管道漏水").unwrap();
    doc.put(ROOT, "severity", 3i64).unwrap();
    doc.put(ROOT, "reported", ScalarValue::Timestamp(1_767_225_600_000))
        .unwrap();
    let location = doc.put_object(ROOT, "location", ObjType::Map).unwrap();
    doc.put(&location, "lat", 30.2741).unwrap();
    doc.put(&location, "lon", 120.1551).unwrap();
    doc.commit();
    let timeline = doc.put_object(ROOT, "timeline", ObjType::List).unwrap();
    for (i, action) in ["report", "accept", "dispatch"].iter().enumerate() {
        let entry = doc.insert_object(&timeline, i, ObjType::Map).unwrap();
        doc.put(&entry, "action", *action).unwrap();
        doc.put(
            &entry,
            "at",
            ScalarValue::Timestamp(1_767_225_600_000 + i as i64),
        )
        .unwrap();
    }
    doc.commit();
    let text = doc.put_object(ROOT, "notes", ObjType::Text).unwrap();
    doc.splice_text(&text, 0, 0, "3号楼楼下天花板渗水 💧")
        .unwrap();
    doc.put(ROOT, "views", ScalarValue::counter(1)).unwrap();
    doc.commit();
    let mut other = doc.fork();
    other.splice_text(&text, 2, 1, "").unwrap();
    other.increment(ROOT, "views", 2).unwrap();
    other.delete(ROOT, "severity").unwrap();
    other.put(ROOT, "photo", vec![0u8, 1, 2, 255]).unwrap();
    other.commit();
    doc.merge(&mut other).unwrap();
    let mut patrol = AutoCommit::new();
    patrol.put(ROOT, "kind", "patrol").unwrap();
    let track = patrol.put_object(ROOT, "track", ObjType::List).unwrap();
    for i in 0..20 {
        patrol.insert(&track, i, 30.27 + i as f64 * 1e-4).unwrap();
    }
    patrol.commit();
    doc.get_changes(&[])
        .into_iter()
        .chain(patrol.get_changes(&[]))
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

/// Magic (4), checksum (4), chunk type (1), then the length as unsigned LEB128.
fn split(change: &[u8]) -> Option<&[u8]> {
    let mut i = 9;
    while *change.get(i)? & 0x80 != 0 {
        i += 1;
    }
    change.get(i + 1..)
}

/// A type-1 chunk around `body` with its length and checksum right.
fn reframe(body: &[u8]) -> Vec<u8> {
    gridsync_core::sync::change::frame_chunk(1, body)
}

/// LEB128 and column heads Automerge's format is built from.
const TOKENS: &[&[u8]] = &[
    b"\x85\x6f\x4a\x83",
    b"\x00",
    b"\x7f",
    b"\x80\x01",
    b"\xff\xff\xff\xff\x0f",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
    b"\x10",
    b"\x20",
    b"\x40",
];

#[test]
fn checked_change_decoder() {
    let seeds = real_changes();
    let max_len = 2 * seeds.iter().map(Vec::len).max().unwrap_or(0) + 256;
    fuzz(Target {
        name: "change",
        seeds,
        tokens: TOKENS,
        max_len,
        max_iterations: 2_500_000,
        max_corpus: 256,
        mutator: Some(
            &|rng: &mut Rng, parent: &[u8], seeds: &[Vec<u8>]| match split(parent) {
                Some(body) if rng.chance(2) => {
                    let bodies: Vec<Vec<u8>> = seeds
                        .iter()
                        .filter_map(|s| split(s))
                        .map(<[u8]>::to_vec)
                        .collect();
                    reframe(&mutate(rng, body, &bodies, TOKENS, body.len() * 2 + 64))
                }
                _ => mutate(rng, parent, seeds, TOKENS, parent.len() * 2 + 64),
            },
        ),
        run: &|bytes| match decode_change(bytes) {
            Ok(_) => Verdict::Accepted,
            Err(_) => Verdict::Refused,
        },
    });
}

#[test]
fn reframing_keeps_a_real_change_valid() {
    for change in real_changes() {
        let body = split(&change).unwrap();
        assert_eq!(reframe(body), change);
        assert!(decode_change(&change).is_ok());
    }
}
