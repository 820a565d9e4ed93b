//! Tiers on the console: the changes this server's upstream did not take, with
//! the upstream's reason, shown on the devices page of a town (or any tier with an
//! upstream).

use maud::{html, Markup};

use super::i18n::Lang;
use super::pages;
use crate::relay::store::UpstreamRefusal;

/// Rows shown at most.
pub(super) const ROWS: u32 = 100;

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(pages::local)
        .unwrap_or_default()
}

/// The section: what the upstream refused or has not placed yet, most recent
/// first, and how many there are in all.
pub(super) fn section(lang: Lang, refusals: &[UpstreamRefusal], total: u64) -> Markup {
    let t = lang.t();
    html! {
        section id="upstream-refusals" {
            h2 { (t.upstream_refused) }
            p { (t.upstream_note) }
            @if refusals.is_empty() {
                p { (t.upstream_none) }
            } @else {
                table {
                    thead { tr {
                        th { (t.document) } th { (t.status) } th { (t.reason) }
                        th { (t.first_time) } th { (t.latest_time) } th { (t.attempts) }
                    } }
                    tbody {
                        @for r in refusals {
                            tr data-doc=(r.doc) {
                                td { @if r.doc.kind() == gridsync_core::DocKind::Case {
                                    a href={ "/console/cases/" (r.doc) } { code { (r.doc) } }
                                } @else { code { (r.doc) } } }
                                td.state { (if !r.deferred {
                                    t.upstream_rejected
                                } else if r.retried() {
                                    t.upstream_retrying
                                } else {
                                    t.upstream_given_up
                                }) }
                                td.reason { (r.reason) }
                                td { (time(r.first_ms)) }
                                td { (time(r.last_ms)) }
                                td.attempts { (r.attempts) }
                            }
                        }
                    }
                }
                p { (t.in_all) " " (total) }
            }
        }
    }
}
