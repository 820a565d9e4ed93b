//! When the relay judges a case's times, it does not take a phone's clock on trust
//! (issue #19, scenario 6; docs/reliability.md, "Clocks"). An entry of a case's
//! timeline is implausible when its `at` is later than the relay received the
//! change carrying it (plus [`TOLERANCE_MINUTES`]), or earlier than the entry its
//! author had seen last (`after`, as the relay reads that one) minus the same
//! tolerance. A time in the past alone is not implausible: an offline phone
//! records hours or days before it syncs.
//!
//! An implausible entry is read at its time clamped between the entry it follows
//! and its receipt, and a dispatch's deadline moves with it (the rule's span,
//! `deadline - at`, does not depend on the clock). The relay's case index, its
//! console and its statistics judge by this reading; the documents are never
//! touched, so every replica still converges byte for byte, and nothing a phone
//! sends is refused for its clock.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use gridsync_core::{fold, Action, CaseDoc, CaseState, DocId, Entry};

use super::store::RelayStore;
use super::Relay;

/// How far an entry's time may be after its receipt, or before the entry it
/// follows, before it is implausible: clocks a few minutes apart are normal.
pub const TOLERANCE_MINUTES: i64 = 5;

/// The longest entry id whose receipt is recorded (ids are 32 hex digits).
pub const MAX_ENTRY_ID_CHARS: usize = 64;

/// Why an entry's time is not trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implausible {
    /// Later than the relay received it.
    AfterReceipt,
    /// Earlier than the entry its author had seen last.
    BeforeWhatItFollows,
}

/// How the relay reads one timeline entry's time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryTime {
    /// When the relay received it (`None`: not recorded, e.g. received before
    /// receipts were kept; then it counts as received now, which only ever bounds
    /// a time in the future).
    pub received: Option<DateTime<Utc>>,
    /// The time the relay judges it by: its own `at` unless implausible.
    pub judged: DateTime<Utc>,
    /// Why it is implausible, if it is.
    pub flag: Option<Implausible>,
}

/// Read a timeline's times. `received` maps entry ids to when the relay received
/// them; an entry it lacks counts as received at `now`. Pure and total: the
/// same inputs give the same reading on every node.
pub fn read(
    timeline: &[Entry],
    received: &HashMap<String, i64>,
    now: DateTime<Utc>,
) -> Vec<EntryTime> {
    let tolerance = Duration::minutes(TOLERANCE_MINUTES);
    let mut out: Vec<EntryTime> = Vec::with_capacity(timeline.len());
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(timeline.len());
    for (i, e) in timeline.iter().enumerate() {
        let recorded = received
            .get(&e.id)
            .and_then(|ms| DateTime::from_timestamp_millis(*ms));
        let upper = recorded.unwrap_or(now);
        // What the author had seen last comes before this entry in the list (it
        // existed when this one was appended); an id not found bounds nothing.
        let lower = e
            .after
            .as_deref()
            .and_then(|a| seen.get(a))
            .map(|j| out[*j].judged);
        let flag = if e.at > upper + tolerance {
            Some(Implausible::AfterReceipt)
        } else if lower.is_some_and(|l| e.at < l - tolerance) {
            Some(Implausible::BeforeWhatItFollows)
        } else {
            None
        };
        let judged = match flag {
            None => e.at,
            // Between what it follows and its receipt; the receipt, the relay's
            // own clock, wins if the two cross.
            Some(_) => lower.map_or(upper, |l| l.min(upper)).max(e.at.min(upper)),
        };
        seen.entry(e.id.as_str()).or_insert(i);
        out.push(EntryTime {
            received: recorded,
            judged,
            flag,
        });
    }
    out
}

/// The timeline as the relay reads it: each entry at its judged time, and a
/// dispatch's deadline moved by as much as its entry (its span kept). `None` when
/// every entry is taken as written.
pub fn retimed(timeline: &[Entry], times: &[EntryTime]) -> Option<Vec<Entry>> {
    if times.iter().all(|t| t.flag.is_none()) || times.len() != timeline.len() {
        return None;
    }
    Some(
        timeline
            .iter()
            .zip(times)
            .map(|(e, t)| {
                let mut e = e.clone();
                if t.flag.is_some() {
                    let shift = t.judged - e.at;
                    e.at = t.judged;
                    if let Action::Dispatch { deadline, .. } = &mut e.action {
                        *deadline = deadline.checked_add_signed(shift).unwrap_or(*deadline);
                    }
                }
                e
            })
            .collect(),
    )
}

/// A case's state as the relay judges it: the fold of its timeline read at the
/// judged times, with [`CaseState::judged_at`] set for each implausible entry.
pub fn judged_state(timeline: &[Entry], times: &[EntryTime]) -> CaseState {
    let mut state = match retimed(timeline, times) {
        Some(t) => fold(&t),
        None => fold(timeline),
    };
    if times.iter().any(|t| t.flag.is_some()) {
        state.judged_at = times.iter().map(|t| t.flag.map(|_| t.judged)).collect();
    }
    state
}

/// The receipts `store` holds for `doc`'s entries; none if it cannot say (the
/// reading then only bounds times in the future by now).
fn receipts(store: &dyn RelayStore, doc: &DocId) -> HashMap<String, i64> {
    match store.entry_receipts(doc) {
        Ok(r) => r.into_iter().collect(),
        Err(e) => {
            tracing::warn!(case = %doc, error = %e, "entry receipts not read");
            HashMap::new()
        }
    }
}

/// The index's reading of a case (see [`gridsync_core::index::read_timelines_with`]).
pub(super) fn index_reading(
    store: Arc<dyn RelayStore>,
) -> Arc<gridsync_core::index::TimelineReading> {
    Arc::new(move |case: &CaseDoc| {
        let times = read(
            &case.timeline,
            &receipts(store.as_ref(), &case.id),
            Utc::now(),
        );
        retimed(&case.timeline, &times)
    })
}

impl Relay {
    /// How the relay reads the times of `case`'s timeline, entry by entry.
    pub fn entry_times(&self, case: &CaseDoc) -> Vec<EntryTime> {
        read(
            &case.timeline,
            &receipts(self.store.as_ref(), &case.id),
            Utc::now(),
        )
    }

    /// `case`'s state as the relay judges it (see [`judged_state`]): what its
    /// index, console and notices should go by.
    pub fn judged_state(&self, case: &CaseDoc) -> CaseState {
        judged_state(&case.timeline, &self.entry_times(case))
    }

    /// Add to `received` the entries of `case` whose receipt is not recorded yet
    /// (they arrive now); how many of them carry an implausible time.
    pub(super) fn note_receipts(&self, case: &CaseDoc, received: &mut Vec<(DocId, String)>) -> u64 {
        let known = receipts(self.store.as_ref(), &case.id);
        let times = read(&case.timeline, &known, Utc::now());
        let mut implausible = 0;
        for (e, t) in case.timeline.iter().zip(&times) {
            if known.contains_key(&e.id) || e.id.chars().count() > MAX_ENTRY_ID_CHARS {
                continue;
            }
            implausible += u64::from(t.flag.is_some());
            received.push((case.id.clone(), e.id.clone()));
        }
        implausible
    }

    /// Entries received whose time the relay did not trust, since it started.
    pub fn implausible_times(&self) -> u64 {
        self.implausible_times
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use gridsync_core::{RegionLevel, Role};

    const T0: i64 = 1_790_000_000;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(T0 + min * 60, 0).unwrap()
    }

    fn entry(id: &str, after: Option<&str>, min: i64, action: Action) -> Entry {
        Entry {
            id: id.into(),
            after: after.map(Into::into),
            actor: "u1".parse().unwrap(),
            role: Role::CommunityDispatcher,
            at: at(min),
            action,
        }
    }

    fn report(min: i64) -> Entry {
        entry(
            "r",
            None,
            min,
            Action::Report {
                level: RegionLevel::Community,
            },
        )
    }

    fn dispatch(after: &str, min: i64, hours: i64) -> Entry {
        entry(
            "d",
            Some(after),
            min,
            Action::Dispatch {
                dept: "water".parse().unwrap(),
                deadline: at(min + hours * 60),
            },
        )
    }

    fn received(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
        pairs
            .iter()
            .map(|(id, min)| (id.to_string(), (T0 + min * 60) * 1000))
            .collect()
    }

    const YEAR: i64 = 365 * 24 * 60;
    const DAYS3: i64 = 3 * 24 * 60;

    #[test]
    fn honest_and_offline_times_are_taken_as_written() {
        // Reported offline two days before it reached the relay, dispatched on
        // time, a clock two minutes fast: all plausible.
        let t = vec![report(-2 * 24 * 60), dispatch("r", 10, 72)];
        let r = received(&[("r", 0), ("d", 8)]);
        let times = read(&t, &r, at(20));
        assert!(times.iter().all(|x| x.flag.is_none()), "{times:?}");
        assert_eq!(times[0].judged, at(-2 * 24 * 60));
        assert!(retimed(&t, &times).is_none());
        assert_eq!(judged_state(&t, &times), fold(&t));
    }

    #[test]
    fn a_fast_clock_is_read_at_the_receipt() {
        for skew in [DAYS3, YEAR] {
            let t = vec![report(0), dispatch("r", 30 + skew, 72)];
            let times = read(&t, &received(&[("r", 1), ("d", 30)]), at(40));
            assert_eq!(times[1].flag, Some(Implausible::AfterReceipt));
            assert_eq!(times[1].judged, at(30));
            let state = judged_state(&t, &times);
            // The rule's 72 hours from when the relay received the dispatch.
            assert_eq!(state.deadline, Some(at(30 + 72 * 60)));
            assert_eq!(state.accepted_at, Some(at(30)));
            assert_eq!(state.judged_at, vec![None, Some(at(30))]);
            assert_eq!(fold(&t).deadline, Some(at(30 + skew + 72 * 60)));
        }
    }

    #[test]
    fn a_slow_clock_after_what_it_follows_is_read_from_that_entry() {
        for skew in [DAYS3, YEAR] {
            let t = vec![report(0), dispatch("r", 30 - skew, 72)];
            let times = read(&t, &received(&[("r", 1), ("d", 31)]), at(40));
            assert_eq!(times[1].flag, Some(Implausible::BeforeWhatItFollows));
            assert_eq!(times[1].judged, at(0));
            let state = judged_state(&t, &times);
            assert_eq!(state.deadline, Some(at(72 * 60)));
            assert!(!state.is_overdue(at(40)));
            assert!(fold(&t).is_overdue(at(40)));
        }
    }

    #[test]
    fn an_entry_not_yet_recorded_counts_as_received_now() {
        let t = vec![report(YEAR)];
        let times = read(&t, &HashMap::new(), at(0));
        assert_eq!(times[0].flag, Some(Implausible::AfterReceipt));
        assert_eq!(times[0].judged, at(0));
        assert_eq!(times[0].received, None);
    }

    #[test]
    fn a_bound_follows_the_judged_time_of_what_it_follows() {
        // The report a year fast is read at its receipt; an accept an hour later
        // by the same fast clock is then not "before what it follows" but still
        // after its receipt.
        let t = vec![
            report(YEAR),
            entry("a", Some("r"), YEAR + 60, Action::Accept),
        ];
        let times = read(&t, &received(&[("r", 0), ("a", 70)]), at(80));
        assert_eq!(times[0].judged, at(0));
        assert_eq!(times[1].flag, Some(Implausible::AfterReceipt));
        assert_eq!(times[1].judged, at(70));
        // A tolerance's worth of drift is not a flag.
        let t = vec![report(0), entry("a", Some("r"), -4, Action::Accept)];
        let times = read(&t, &received(&[("r", 0), ("a", 1)]), at(2));
        assert!(times.iter().all(|x| x.flag.is_none()));
        let t = vec![report(6)];
        let times = read(&t, &received(&[("r", 0)]), at(0));
        assert_eq!(times[0].flag, Some(Implausible::AfterReceipt));
    }
}
