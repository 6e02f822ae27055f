//! The dashboard's HTML, rendered on the server from the view types: filters, the hour strip
//! (a time slider that works without scripts), the map, the alert table and the batch table.
//! Pure functions of their inputs, so the page can be tested without a server.
//!
//! Everything interpolated into the page goes through [`esc`]; the only script is a one-line
//! inline handler that labels the hour slider.

use std::fmt::Write;

use crate::civil::{DAY, format_clock, format_day, format_minute, format_window};
use crate::map;
use crate::view::{AlertCursor, AlertLevel, AlertSummary, AlertView, BatchView, VenueView};

/// Rows shown in the alert table at most.
pub const MAX_ROWS: usize = 500;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The dashboard's filters, parsed from the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Midnight UTC of the chosen day (default: the day of the latest alert).
    pub day: Option<u64>,
    /// Hour of the day 0..=23; `None` shows the whole day.
    pub hour: Option<u8>,
    /// Venue category; `None` shows all.
    pub category: Option<String>,
    /// Levels shown; empty shows all.
    pub levels: Vec<AlertLevel>,
}

impl PageQuery {
    /// The query string for this selection with the hour replaced by `hour`.
    fn with_hour(&self, day: u64, hour: Option<u8>) -> String {
        let mut pairs = vec![("day", format_day(day))];
        if let Some(h) = hour {
            pairs.push(("hour", h.to_string()));
        }
        if let Some(c) = &self.category {
            pairs.push(("category", c.clone()));
        }
        pairs.extend(self.levels.iter().map(|l| ("level", l.as_str().to_owned())));
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// Everything the page shows.
pub struct PageModel<'a> {
    /// The filters.
    pub query: &'a PageQuery,
    /// Midnight UTC of the day shown.
    pub day: u64,
    /// Every registered venue.
    pub venues: &'a [VenueView],
    /// Alerts of the day after category and level filters (all hours).
    pub day_alerts: &'a [AlertView],
    /// The most recent batches.
    pub batches: &'a [BatchView],
    /// Alerts with a cursor above this are marked new.
    pub seen: AlertCursor,
    /// The whole log's summary.
    pub summary: AlertSummary,
}

impl PageModel<'_> {
    fn shown(&self) -> Vec<&AlertView> {
        // Windows need not be hourly nor start on the hour: an hour shows every window that
        // starts within it (as the JSON API's `hour` does).
        let hour = self.query.hour.map(|h| self.day + u64::from(h) * 3600);
        self.day_alerts
            .iter()
            .filter(|a| hour.is_none_or(|h| (h..h + 3600).contains(&a.window_start)))
            .collect()
    }
}

/// Renders the whole dashboard page.
pub fn render(model: &PageModel<'_>) -> String {
    let shown = model.shown();
    let owned: Vec<AlertView> = shown.iter().map(|a| (*a).clone()).collect();
    let new_count = shown.iter().filter(|a| a.cursor > model.seen).count();
    let mut html = String::with_capacity(64 * 1024);
    html.push_str(HEAD);
    let _ = write!(
        html,
        r#"<header><h1>hotspot · alerts</h1><p class="summary">{total} alerts stored · <span id="shown-count">{n}</span> shown · <span class="new-badge">{new_count} new</span> since your last visit · times in UTC</p><form method="post" action="/dashboard/logout"><button>Log out</button></form></header>"#,
        total = model.summary.count,
        n = shown.len(),
    );
    filters(&mut html, model);
    hour_strip(&mut html, model);
    let _ = write!(
        html,
        r#"<section class="panel"><h2>Map: alerted venue-hours {when}</h2>{legend}{svg}</section>"#,
        when = esc(&selection_label(model)),
        legend = LEGEND,
        svg = map::render(model.venues, &owned),
    );
    alert_table(&mut html, model, &shown);
    batch_table(&mut html, model.batches);
    html.push_str("</main></body></html>");
    html
}

fn selection_label(model: &PageModel<'_>) -> String {
    match model.query.hour {
        Some(h) => format!("on {} {:02}:00–{:02}:00", format_day(model.day), h, h + 1),
        None => format!("on {}", format_day(model.day)),
    }
}

fn filters(html: &mut String, model: &PageModel<'_>) {
    let q = model.query;
    let mut categories: Vec<&str> = model.venues.iter().map(|v| v.category.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    let hour = q.hour.map_or(-1, i32::from);
    let _ = write!(
        html,
        r#"<form class="panel filters" method="get" action="/dashboard"><label>Day <input type="date" name="day" value="{day}"></label><label>Hour <input type="range" id="hour" name="hour" min="-1" max="23" value="{hour}" oninput="this.nextElementSibling.textContent=this.value<0?'whole day':this.value.padStart(2,'0')+':00'"><output>{hour_label}</output></label><label>Category <select name="category"><option value="">all</option>"#,
        day = format_day(model.day),
        hour_label = q
            .hour
            .map_or("whole day".to_owned(), |h| format!("{h:02}:00")),
    );
    for c in categories {
        let selected = if q.category.as_deref() == Some(c) {
            " selected"
        } else {
            ""
        };
        let _ = write!(html, r#"<option{selected}>{}</option>"#, esc(c));
    }
    html.push_str("</select></label><fieldset><legend>Levels</legend>");
    for level in AlertLevel::ALL {
        let checked = if q.levels.is_empty() || q.levels.contains(&level) {
            " checked"
        } else {
            ""
        };
        let _ = write!(
            html,
            r#"<label class="lvl level-{l}"><input type="checkbox" name="level" value="{l}"{checked}> {l}</label>"#,
            l = level.as_str()
        );
    }
    html.push_str(r#"</fieldset><button type="submit">Apply</button></form>"#);
}

/// Alerts per hour of the chosen day as a row of links: the time slider without scripts.
fn hour_strip(html: &mut String, model: &PageModel<'_>) {
    let mut per_hour = [0usize; 24];
    for a in model.day_alerts {
        if let Some(slot) =
            per_hour.get_mut(((a.window_start.saturating_sub(model.day)) / 3600) as usize)
        {
            *slot += 1;
        }
    }
    let max = per_hour.iter().copied().max().unwrap_or(0).max(1);
    let prev = model
        .query
        .with_hour(model.day.saturating_sub(DAY), model.query.hour);
    let next = model.query.with_hour(model.day + DAY, model.query.hour);
    let all_class = if model.query.hour.is_none() {
        " current"
    } else {
        ""
    };
    let _ = write!(
        html,
        r#"<nav class="panel hours" aria-label="Hours"><a href="/dashboard?{prev}">&larr; previous day</a><a class="whole{all_class}" href="/dashboard?{all}">whole day</a><div class="strip">"#,
        prev = esc(&prev),
        all = esc(&model.query.with_hour(model.day, None)),
    );
    for (h, count) in per_hour.iter().enumerate() {
        let current = if model.query.hour == Some(h as u8) {
            " current"
        } else {
            ""
        };
        let _ = write!(
            html,
            r#"<a class="hour{current}" href="/dashboard?{link}" title="{h:02}:00 UTC: {count} alert(s)"><span class="bar" style="height:{pct}%"></span><span class="lbl">{h:02}</span></a>"#,
            link = esc(&model.query.with_hour(model.day, Some(h as u8))),
            pct = 4 + 96 * count / max,
        );
    }
    let _ = write!(
        html,
        r#"</div><a href="/dashboard?{}">next day &rarr;</a></nav>"#,
        esc(&next)
    );
}

fn alert_table(html: &mut String, model: &PageModel<'_>, shown: &[&AlertView]) {
    let _ = write!(
        html,
        r#"<section class="panel"><h2>Alerts {}</h2><table id="alerts"><thead><tr><th></th><th>Venue</th><th>Category</th><th>Window (UTC)</th><th>Noisy count ± 95%</th><th>Level</th><th>Rule</th><th>First seen (UTC)</th></tr></thead><tbody>"#,
        esc(&selection_label(model))
    );
    if shown.is_empty() {
        html.push_str(
            r#"<tr><td colspan="8" class="empty">No alerts match these filters.</td></tr>"#,
        );
    }
    for a in shown.iter().take(MAX_ROWS) {
        let new = a.cursor > model.seen;
        let (from, to) = format_window(a.window_start, a.window_secs);
        let _ = write!(
            html,
            r#"<tr class="alert{row_class}" data-venue="{code:x}" data-level="{l}"><td>{badge}</td><td>{name} <code>{code:08x}</code></td><td>{cat}</td><td>{day} {from}–{to}</td><td class="num">{count} ± {ci:.1}</td><td><span class="pill level-{l}">{l}</span></td><td>{rule}</td><td>{seen}</td></tr>"#,
            row_class = if new { " new" } else { "" },
            badge = if new {
                r#"<span class="new-badge">NEW</span>"#
            } else {
                ""
            },
            code = a.venue_code,
            l = a.level.as_str(),
            name = esc(&a.venue_name),
            cat = esc(&a.category),
            day = format_day(a.window_start),
            count = a.noisy_count,
            ci = 1.96 * a.stddev,
            rule = esc(&a.rule),
            seen = format_minute(a.first_seen),
        );
    }
    html.push_str("</tbody></table>");
    if shown.len() > MAX_ROWS {
        let _ = write!(
            html,
            r#"<p class="note">Showing the first {MAX_ROWS} of {} alerts; narrow the filters to see the rest.</p>"#,
            shown.len()
        );
    }
    html.push_str(r#"<p class="note">Counts are differentially private: each is the true count plus noise; ± gives the 95% range of that noise (1.96 standard deviations).</p></section>"#);
}

fn batch_table(html: &mut String, batches: &[BatchView]) {
    html.push_str(r#"<section class="panel"><h2>Batches</h2><table id="batches"><thead><tr><th>Task</th><th>Window (UTC)</th><th>State</th><th>Accepted</th><th>Rejected</th><th>Search</th><th>ε spent</th><th>ε left today</th><th>δ</th><th>Alerts</th></tr></thead><tbody>"#);
    if batches.is_empty() {
        html.push_str(r#"<tr><td colspan="10" class="empty">No batches collected yet.</td></tr>"#);
    }
    for b in batches {
        let state = b.collected_at.map_or("collecting".to_owned(), |t| {
            format!("collected {}", format_clock(t))
        });
        let total = (b.epsilon_spent + b.epsilon_left).max(f64::MIN_POSITIVE);
        let (from, end) = format_window(b.window_start, b.window_secs);
        let _ = write!(
            html,
            r#"<tr><td>{task}</td><td>{day} {from}–{end}</td><td>{state}</td><td class="num">{acc}</td><td class="num">{rej}</td><td>{mode}</td><td class="num">{spent:.3}</td><td class="num"><span class="budget"><span style="width:{pct:.0}%"></span></span> {left:.3}</td><td class="num">{delta:e}</td><td class="num">{alerts}</td></tr>"#,
            task = esc(&b.task),
            day = format_day(b.window_start),
            acc = b.accepted,
            rej = b.rejected,
            mode = b.search_mode.as_str(),
            spent = b.epsilon_spent,
            left = b.epsilon_left,
            pct = 100.0 * b.epsilon_left.max(0.0) / total,
            delta = b.delta,
            alerts = b.alerts,
        );
    }
    html.push_str("</tbody></table></section>");
}

/// The login form, with an optional error line.
pub fn login_page(error: Option<&str>) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="error">{}</p>"#, esc(e))
    });
    format!(
        r#"{HEAD}<section class="panel login"><h1>hotspot dashboard</h1><p>Enter the collector's dashboard token (from its configuration).</p>{error}<form method="post" action="/dashboard/login"><input type="password" name="token" autocomplete="current-password" autofocus required><button type="submit">Log in</button></form></section></main></body></html>"#
    )
}

const LEGEND: &str = r#"<p class="legend"><span class="pill level-crowding">crowding</span> <span class="pill level-orange">orange</span> <span class="pill level-red">red</span> · squares: alerted venue-hours per area (darker = more) · dots: venues (grey: no alert in the selection)</p>"#;

const HEAD: &str = r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>hotspot dashboard</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#eceff3;color:#1d232a}
main{max-width:1100px;margin:0 auto;padding:12px}
header{display:flex;align-items:center;gap:16px;flex-wrap:wrap}header h1{font-size:20px;margin:8px 0}header form{margin-left:auto}
.panel{background:#fff;border-radius:6px;padding:10px 14px;margin:10px 0;box-shadow:0 1px 2px #0002}
h2{font-size:16px;margin:4px 0 8px}
.filters{display:flex;gap:14px;align-items:center;flex-wrap:wrap}.filters fieldset{border:0;margin:0;padding:0;display:flex;gap:8px}.filters legend{float:left;margin-right:6px}
.hours{display:flex;align-items:flex-end;gap:10px}.strip{display:flex;gap:2px;flex:1}
.hour{flex:1;display:flex;flex-direction:column;align-items:center;text-decoration:none;color:#333}
.hour .bar{display:block;width:100%;background:#8aa0b8;min-height:2px;max-height:48px}.hour{height:64px;justify-content:flex-end}
.hour.current .bar{background:#1d5fbf}.hour.current .lbl,.whole.current{font-weight:bold}
table{border-collapse:collapse;width:100%}th,td{padding:4px 6px;border-bottom:1px solid #e3e7ec;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}td.empty{color:#777;text-align:center}
tr.new{background:#fff8d6}.new-badge{background:#1d5fbf;color:#fff;border-radius:3px;padding:0 5px;font-size:12px}
.pill{border-radius:10px;padding:0 8px;color:#fff;font-size:12px}
.level-crowding.pill{background:#6a3fc8}.level-orange.pill{background:#f08a24}.level-red.pill{background:#d7263d}
.budget{display:inline-block;width:60px;height:8px;background:#e3e7ec;border-radius:4px;overflow:hidden;vertical-align:middle}.budget span{display:block;height:100%;background:#2e9d5b}
.note,.legend{color:#555;font-size:12px}.error{color:#b00020}
#map{width:100%;height:auto;max-height:70vh;border:1px solid #d5dae0}
.login{max-width:420px;margin:80px auto}.login input{width:100%;margin:8px 0;padding:6px}
</style></head><body><main>"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{LatLon, SearchModeView};

    fn hostile_alert() -> AlertView {
        AlertView {
            id: "x".into(),
            cursor: AlertCursor(5),
            task: "t".into(),
            venue_code: 0xabc,
            venue_name: "<script>alert(1)</script>".into(),
            category: "\"><img src=x onerror=alert(2)>".into(),
            location: Some(LatLon {
                lat: 50.0,
                lon: 8.0,
            }),
            window_start: 1_796_169_600 + 3600,
            window_secs: 3600,
            level: AlertLevel::Red,
            noisy_count: 3,
            stddev: 1.0,
            rule: "<b>rule</b>".into(),
            first_seen: 1_796_169_600 + 7200,
        }
    }

    fn render_one(alert: &AlertView, seen: AlertCursor) -> String {
        let venues = [VenueView {
            code: 0xabc,
            name: alert.venue_name.clone(),
            category: alert.category.clone(),
            capacity: 10,
            lat: 50.0,
            lon: 8.0,
        }];
        let batch = BatchView {
            task: "<t>".into(),
            window_start: 0,
            window_secs: 3600,
            accepted: 1,
            rejected: 0,
            search_mode: SearchModeView::Open,
            epsilon_spent: 0.5,
            epsilon_left: 0.5,
            delta: 1e-9,
            alerts: 1,
            collected_at: None,
        };
        let query = PageQuery {
            category: Some("<q>".into()),
            ..PageQuery::default()
        };
        let alerts = [alert.clone()];
        let model = PageModel {
            query: &query,
            day: 1_796_169_600,
            venues: &venues,
            day_alerts: &alerts,
            batches: &[batch],
            seen,
            summary: AlertSummary::default(),
        };
        render(&model)
    }

    #[test]
    fn registry_text_and_query_values_are_escaped() {
        let html = render_one(&hostile_alert(), AlertCursor::START);
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img src=x"));
        assert!(!html.contains("<b>rule"));
        assert!(!html.contains("<t>") && !html.contains("<q>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn an_hour_shows_every_window_starting_within_it() {
        let day = 1_796_169_600;
        let mut alert = hostile_alert();
        // A 3-second window starting 20 min 34 s past 01:00.
        alert.window_start = day + 3600 + 1234;
        alert.window_secs = 3;
        let alerts = [alert];
        let shown = |hour| {
            let query = PageQuery {
                hour: Some(hour),
                ..PageQuery::default()
            };
            let model = PageModel {
                query: &query,
                day,
                venues: &[],
                day_alerts: &alerts,
                batches: &[],
                seen: AlertCursor::START,
                summary: AlertSummary::default(),
            };
            model.shown().len()
        };
        assert_eq!((shown(0), shown(1), shown(2)), (0, 1, 0));
    }

    #[test]
    fn alerts_after_the_seen_cursor_are_marked_new() {
        assert!(render_one(&hostile_alert(), AlertCursor(4)).contains(r#"class="alert new""#));
        assert!(!render_one(&hostile_alert(), AlertCursor(5)).contains(r#"class="alert new""#));
    }

    #[test]
    fn unlocated_alerts_are_listed_but_not_drawn() {
        let mut alert = hostile_alert();
        alert.location = None;
        alert.venue_code = 0xdef;
        let html = render_one(&alert, AlertCursor::START);
        assert!(html.contains(r#"<tr class="alert new" data-venue="def""#));
        assert!(!html.contains(r#"circle class="alerted"#));
        assert!(!html.contains("NaN"));
        alert.location = Some(LatLon {
            lat: f64::NAN,
            lon: 8.0,
        });
        assert!(!render_one(&alert, AlertCursor::START).contains("NaN"));
    }

    #[test]
    fn noisy_count_shows_its_95_percent_range() {
        assert!(render_one(&hostile_alert(), AlertCursor::START).contains("3 ± 2.0"));
    }
}
