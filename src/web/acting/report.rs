//! The daily report's sections about what the office did: notices issued and received, orders
//! and re-inspections, night-patrol results, commands to devices.

use super::i18n::words;
use super::order_texts::{self, OrderTexts};
use crate::report::DailyReport;
use crate::store::acting::{OrderKind, ReinspectionResult};
use crate::web::layout::Ui;
use maud::html;

/// The sections as HTML (nothing when the report carries no actions).
pub fn section(r: &DailyReport, ui: Ui) -> String {
    let Some(a) = &r.actions else {
        return String::new();
    };
    let w = words(ui.lang);
    let lang = ui.lang;
    html! {
        section id="report-actions" {
            h2 { (w.notices_issued) }
            @if a.notices.is_empty() { p.muted { (w.none) } }
            @for n in &a.notices {
                p.notice {
                    "#" (n.id) " " (lang.level_word(&n.level)) " · " (ui.time(Some(n.issued_ts))) " · " (n.issued_by) " — "
                    (w.receipts) ": " b { (n.receipts.iter().filter(|r| r.received_ts.is_some()).count()) " / " (n.receipts.len()) }
                }
            }
            h2 { (w.orders) " / " (w.reinspections) }
            @if a.orders.is_empty() { p.muted { (w.none) } }
            @if !a.orders.is_empty() {
                table.orders {
                    thead { tr { th { (w.site) } th { (w.alert) } th { (w.orders) } th { (w.issued) } th { (w.reinspections) } } }
                    tbody { @for o in &a.orders {
                        tr {
                            td { (o.site) }
                            td { (o.alert_id) }
                            td { @match o.kind { OrderKind::StopWork => (w.stop_work), OrderKind::Rectify => (w.rectify) } }
                            td { (ui.time(Some(o.issued_ts))) " · " (o.issued_by) }
                            td { @for ri in &o.reinspections {
                                div { (ui.time(Some(ri.ts))) " "
                                    @if ri.result == ReinspectionResult::Passed { (w.passed) } @else { (w.failed) }
                                    " · " (ri.by) }
                            } }
                        }
                    } }
                }
            }
            @if let Some(cmds) = &r.commands {
                @let t = order_texts::texts(lang);
                h2 { (t.report_heading) }
                @if cmds.is_empty() { p.muted { (w.none) } }
                @if !cmds.is_empty() {
                    table.commands {
                        thead { tr { @for c in t.report_columns { th { (c) } } } }
                        tbody { @for c in cmds {
                            tr data-kind=(c.kind) {
                                td { (OrderTexts::kind_name(lang, &c.kind)) }
                                td { (c.sent) } td { (c.answered) } td { (c.refused) }
                                td { (c.timed_out) } td { (c.awaiting) } td { (c.not_sent) }
                            }
                        } }
                    }
                }
            }
            h2 { (w.patrol_results) }
            @if a.patrol.is_empty() { p.muted { (w.none) } }
            @if !a.patrol.is_empty() {
                table.patrol {
                    thead { tr { th { (w.site) } th { (w.last_checkin) } th { (w.by) } th { (w.note) } } }
                    tbody { @for c in &a.patrol {
                        tr data-result=(c.result.name()) {
                            td { (c.site) }
                            td { (w.patrol_result(c.result)) " · " (ui.time(Some(c.ts))) }
                            td { (c.by) }
                            td { (c.note) }
                        }
                    } }
                }
            }
        }
    }
    .into_string()
}
