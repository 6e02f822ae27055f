//! Alert rules: which released (venue, hour) counts become alerts (DESIGN.md section 2 and
//! section 3, step 7).
//!
//! - **crowding**: a venue-hour alerts when its noisy occupancy reaches a configured share of
//!   the venue's capacity;
//! - **outbreak**: per venue category, graded levels ("orange" at 1, "red" at 3 positive
//!   presences in a venue-hour, for example), as in the cluster-detection rules of the French
//!   CLEA protocol (TousAntiCovid, CLEA specification, "exposure" and "cluster" thresholds per
//!   venue type). A check-in counts in every hour of a category-dependent exposure time (2 h
//!   for a restaurant customer, 12 h for staff, for example): [`windows_touched`] does the
//!   spreading the client applies, and [`OutbreakRule::exposure_secs`] gives the durations.
//!
//! Outbreak uploads have a fixed shape: [`pad_to_fixed_shape`] fills every window of the
//! upload up to the same number of reports with dummies for the reserved venue code
//! [`DUMMY_VENUE_CODE`], which no rule ever alerts on.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use crate::task::DUMMY_VENUE_CODE;
pub use crate::venue::VenueCategory;

/// Errors of rule configuration and report shaping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// A rule parameter is out of range.
    #[error("invalid rule parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A real report named the reserved dummy venue code.
    #[error("venue code 0 is reserved for dummy reports")]
    ReservedVenueCode,
    /// A report's window lies outside the upload's windows.
    #[error("window {window} lies outside the upload's windows {first}..={last}")]
    WindowOutOfRange {
        /// The offending window.
        window: u64,
        /// First window of the upload.
        first: u64,
        /// Last window of the upload.
        last: u64,
    },
    /// More distinct presences in one window than the fixed shape allows.
    #[error("{count} presences in window {window}, more than the {limit} reports per window")]
    TooManyReports {
        /// The window.
        window: u64,
        /// Distinct presences in it.
        count: usize,
        /// Reports per window.
        limit: usize,
    },
}

/// How a visitor was at a venue: outbreak exposure times differ by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A customer, pupil or guest.
    Customer,
    /// Someone working there.
    Staff,
}

/// What the collector knows about a venue code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueInfo {
    /// The venue's category.
    pub category: VenueCategory,
    /// The venue's declared capacity (people).
    pub capacity: u32,
}

/// An alert's grade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertLevel {
    /// Crowding: occupancy reached the capacity share.
    Crowded,
    /// Outbreak: the lower level.
    Orange,
    /// Outbreak: the higher level.
    Red,
}

impl AlertLevel {
    /// The name stored with an alert and shown on the dashboard: `crowding`, `orange`, `red`.
    pub fn name(self) -> &'static str {
        match self {
            AlertLevel::Crowded => "crowding",
            AlertLevel::Orange => "orange",
            AlertLevel::Red => "red",
        }
    }
}

/// The crowding rule: alert when the noisy count reaches `share_permille / 1000` of capacity,
/// and at least `min_count` people.
///
/// The floor is what makes crowding detectable under differential privacy: the released
/// counts carry noise of a few people (docs/privacy.md), so a 10-seat cafe at 8 guests cannot
/// be told apart from one at 4; the authority chooses the smallest gathering it acts on.
///
/// A code the registry does not know (open mode) has no capacity to compare with: it alerts
/// from [`unknown_venue_count`](Self::with_unknown_venue_count) people on if the task sets
/// one, and never otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrowdingRule {
    share_permille: u32,
    min_count: u32,
    unknown_venue_count: Option<u32>,
}

impl CrowdingRule {
    /// A rule alerting at `share_permille` thousandths of capacity (1 to 10,000) and from
    /// `min_count` people on (at least 1).
    pub fn new(share_permille: u32, min_count: u32) -> Result<Self, RulesError> {
        if !(1..=10_000).contains(&share_permille) {
            return Err(RulesError::InvalidParameter {
                name: "share_permille",
                reason: "must lie in 1..=10000",
            });
        }
        if min_count == 0 {
            return Err(RulesError::InvalidParameter {
                name: "min_count",
                reason: "must be at least 1",
            });
        }
        Ok(Self {
            share_permille,
            min_count,
            unknown_venue_count: None,
        })
    }

    /// The same rule, alerting on codes nobody registered from `count` people on (at least
    /// `min_count`); `None` leaves such codes alone.
    pub fn with_unknown_venue_count(self, count: Option<u32>) -> Result<Self, RulesError> {
        if count.is_some_and(|c| c < self.min_count) {
            return Err(RulesError::InvalidParameter {
                name: "unknown_venue_count",
                reason: "must be at least min_count",
            });
        }
        Ok(Self {
            unknown_venue_count: count,
            ..self
        })
    }

    /// The capacity share, in thousandths.
    pub fn share_permille(&self) -> u32 {
        self.share_permille
    }

    /// The floor: the smallest count that alerts.
    pub fn min_count(&self) -> u32 {
        self.min_count
    }

    /// The threshold of codes nobody registered, if they alert at all.
    pub fn unknown_venue_count(&self) -> Option<u32> {
        self.unknown_venue_count
    }

    /// The threshold for a venue the registry may not know: [`threshold`](Self::threshold) of
    /// its capacity, or the unknown-venue count.
    pub fn threshold_for(&self, venue: Option<&VenueInfo>) -> Option<u64> {
        match venue {
            Some(v) => Some(self.threshold(v.capacity)),
            None => self.unknown_venue_count.map(u64::from),
        }
    }

    /// The count at which a venue of `capacity` alerts: `ceil(capacity * share)`, at least
    /// `min_count`.
    pub fn threshold(&self, capacity: u32) -> u64 {
        (u64::from(capacity) * u64::from(self.share_permille))
            .div_ceil(1000)
            .max(u64::from(self.min_count))
    }
}

/// Outbreak levels and exposure times of one venue category.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CategoryRule {
    orange: u32,
    red: u32,
    customer_exposure_secs: u64,
    staff_exposure_secs: u64,
}

impl CategoryRule {
    /// Orange at `orange` presences, red at `red` (`1 <= orange <= red`); exposure times in
    /// seconds (positive).
    pub fn new(
        orange: u32,
        red: u32,
        customer_exposure_secs: u64,
        staff_exposure_secs: u64,
    ) -> Result<Self, RulesError> {
        if orange == 0 || orange > red {
            return Err(RulesError::InvalidParameter {
                name: "orange",
                reason: "levels need 1 <= orange <= red",
            });
        }
        if customer_exposure_secs == 0 || staff_exposure_secs == 0 {
            return Err(RulesError::InvalidParameter {
                name: "exposure_secs",
                reason: "exposure times must be positive",
            });
        }
        Ok(Self {
            orange,
            red,
            customer_exposure_secs,
            staff_exposure_secs,
        })
    }

    /// The level a count reaches, if any.
    pub fn level(&self, count: i64) -> Option<AlertLevel> {
        if count >= i64::from(self.red) {
            Some(AlertLevel::Red)
        } else if count >= i64::from(self.orange) {
            Some(AlertLevel::Orange)
        } else {
            None
        }
    }

    /// The orange threshold.
    pub fn orange(&self) -> u32 {
        self.orange
    }

    /// The red threshold.
    pub fn red(&self) -> u32 {
        self.red
    }

    /// How long a customer's check-in exposes, in seconds.
    pub fn customer_exposure_secs(&self) -> u64 {
        self.customer_exposure_secs
    }

    /// How long a staff member's check-in exposes, in seconds.
    pub fn staff_exposure_secs(&self) -> u64 {
        self.staff_exposure_secs
    }
}

/// The outbreak rule: one [`CategoryRule`] per category, and one for venues the collector does
/// not know (open mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutbreakRule {
    categories: BTreeMap<VenueCategory, CategoryRule>,
    unknown: CategoryRule,
}

impl OutbreakRule {
    /// A rule from per-category entries; categories without an entry use `unknown`.
    pub fn new(categories: BTreeMap<VenueCategory, CategoryRule>, unknown: CategoryRule) -> Self {
        Self {
            categories,
            unknown,
        }
    }

    /// The defaults: orange at 1 and red at 3 where people are close together for long
    /// (restaurants, bars, sports, worship, personal care, private events), orange at 2 and
    /// red at 5 elsewhere; customers exposed 2 h (1 h in shops, personal care and public
    /// buildings), staff 12 h. Codes nobody registered (open mode) get the strict levels.
    pub fn default_rules() -> Self {
        const HOUR: u64 = 3600;
        let rule = |orange, red, customer_hours: u64| CategoryRule {
            orange,
            red,
            customer_exposure_secs: customer_hours * HOUR,
            staff_exposure_secs: 12 * HOUR,
        };
        let categories = VenueCategory::ALL
            .into_iter()
            .map(|c| {
                let r = match c {
                    VenueCategory::Restaurant
                    | VenueCategory::Bar
                    | VenueCategory::Sports
                    | VenueCategory::Worship
                    | VenueCategory::PrivateEvent => rule(1, 3, 2),
                    VenueCategory::PersonalCare => rule(1, 3, 1),
                    VenueCategory::Retail | VenueCategory::PublicBuilding => rule(2, 5, 1),
                    VenueCategory::Workplace
                    | VenueCategory::Education
                    | VenueCategory::Culture
                    | VenueCategory::Other => rule(2, 5, 2),
                };
                (c, r)
            })
            .collect();
        Self {
            categories,
            unknown: rule(1, 3, 2),
        }
    }

    /// The rule of each category that has one of its own.
    pub fn categories(&self) -> &BTreeMap<VenueCategory, CategoryRule> {
        &self.categories
    }

    /// The rule of codes the collector does not know, and of categories without their own.
    pub fn unknown(&self) -> &CategoryRule {
        &self.unknown
    }

    /// The rule for a venue (the `unknown` rule if the collector does not know it).
    pub fn for_venue(&self, venue: Option<&VenueInfo>) -> &CategoryRule {
        venue
            .and_then(|v| self.categories.get(&v.category))
            .unwrap_or(&self.unknown)
    }

    /// How long a check-in exposes, by category and role.
    pub fn exposure_secs(&self, category: VenueCategory, role: Role) -> u64 {
        let rule = self.categories.get(&category).unwrap_or(&self.unknown);
        match role {
            Role::Customer => rule.customer_exposure_secs,
            Role::Staff => rule.staff_exposure_secs,
        }
    }

    /// The smallest orange threshold of any category: the open search's pruning threshold.
    pub fn min_threshold(&self) -> u64 {
        self.categories
            .values()
            .chain([&self.unknown])
            .map(|r| u64::from(r.orange))
            .min()
            .unwrap_or(1)
    }
}

/// The rules of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rules {
    /// Crowding rule.
    Crowding(CrowdingRule),
    /// Outbreak rule.
    Outbreak(OutbreakRule),
}

impl Rules {
    /// The alert level a released count reaches at venue `code`, if any. The dummy code never
    /// alerts; crowding judges a venue whose capacity the collector does not know by the
    /// rule's unknown-venue count, if it has one.
    pub fn evaluate(&self, code: u64, venue: Option<&VenueInfo>, count: i64) -> Option<AlertLevel> {
        if code == DUMMY_VENUE_CODE {
            return None;
        }
        match self {
            Rules::Crowding(rule) => {
                let threshold = rule.threshold_for(venue)?;
                (count >= i64::try_from(threshold).ok()?).then_some(AlertLevel::Crowded)
            }
            Rules::Outbreak(rule) => rule.for_venue(venue).level(count),
        }
    }

    /// The smallest count at which [`evaluate`](Self::evaluate) alerts for venue `code`
    /// (its lowest level, for outbreak rules), or `None` if no count does.
    pub fn alert_threshold(&self, code: u64, venue: Option<&VenueInfo>) -> Option<u64> {
        if code == DUMMY_VENUE_CODE {
            return None;
        }
        match self {
            Rules::Crowding(rule) => rule.threshold_for(venue),
            Rules::Outbreak(rule) => Some(u64::from(rule.for_venue(venue).orange)),
        }
    }

    /// What fired, in words, for the alert log: the rule, the threshold the count reached and
    /// where it came from. `None` when `level` is not one this rule raises for the venue.
    pub fn describe(&self, venue: Option<&VenueInfo>, level: AlertLevel) -> Option<String> {
        match (self, level) {
            (Rules::Crowding(rule), AlertLevel::Crowded) => {
                let threshold = rule.threshold_for(venue)?;
                Some(match venue {
                    Some(v) => format!(
                        "crowding: >= {threshold} people ({} permille of capacity {}, at least {})",
                        rule.share_permille, v.capacity, rule.min_count
                    ),
                    None => format!("crowding: >= {threshold} people (unregistered venue)"),
                })
            }
            (Rules::Outbreak(rule), AlertLevel::Orange | AlertLevel::Red) => {
                let r = rule.for_venue(venue);
                let at = if level == AlertLevel::Red {
                    r.red
                } else {
                    r.orange
                };
                let category = venue.map_or("unregistered venue", |v| v.category.name());
                Some(format!(
                    "outbreak {}: >= {at} positive presences ({category})",
                    level.name()
                ))
            }
            _ => None,
        }
    }

    /// The default rules of a task kind: crowding at 80 % of capacity and at least 40
    /// people; outbreak at [`OutbreakRule::default_rules`].
    pub fn default_for(kind: crate::task::TaskKind) -> Self {
        match kind {
            crate::task::TaskKind::Crowding => Rules::Crowding(CrowdingRule {
                share_permille: 800,
                min_count: 40,
                unknown_venue_count: None,
            }),
            crate::task::TaskKind::Outbreak => Rules::Outbreak(OutbreakRule::default_rules()),
        }
    }

    /// Which task kind these rules are for.
    pub fn kind(&self) -> crate::task::TaskKind {
        match self {
            Rules::Crowding(_) => crate::task::TaskKind::Crowding,
            Rules::Outbreak(_) => crate::task::TaskKind::Outbreak,
        }
    }

    /// The smallest count at which any of `venues` could alert (at least 1): the threshold an
    /// open search prunes prefixes with, so that no alerting venue is cut off.
    pub fn min_threshold<'a>(&self, venues: impl IntoIterator<Item = &'a VenueInfo>) -> u64 {
        match self {
            Rules::Crowding(rule) => venues
                .into_iter()
                .map(|v| rule.threshold(v.capacity))
                .chain(rule.unknown_venue_count.map(u64::from))
                .min()
                .unwrap_or(1),
            Rules::Outbreak(rule) => rule.min_threshold(),
        }
    }
}

/// The windows a presence of `duration_secs` starting at `start_secs` touches, with windows of
/// `window_secs` (window `w` covers `[w * window_secs, (w + 1) * window_secs)`).
pub fn windows_touched(
    start_secs: u64,
    duration_secs: u64,
    window_secs: u64,
) -> Result<RangeInclusive<u64>, RulesError> {
    if window_secs == 0 {
        return Err(RulesError::InvalidParameter {
            name: "window_secs",
            reason: "must be positive",
        });
    }
    if duration_secs == 0 {
        return Err(RulesError::InvalidParameter {
            name: "duration_secs",
            reason: "must be positive",
        });
    }
    let last = start_secs
        .checked_add(duration_secs - 1)
        .ok_or(RulesError::InvalidParameter {
            name: "duration_secs",
            reason: "overflows",
        })?;
    Ok(start_secs / window_secs..=last / window_secs)
}

/// Shapes an outbreak upload: for every window in `windows`, exactly `per_window` venue codes,
/// the distinct real presences `(window, code)` of that window followed by dummies
/// ([`DUMMY_VENUE_CODE`]). Refuses real reports for code 0, outside `windows`, or more than
/// `per_window` distinct presences in one window.
pub fn pad_to_fixed_shape(
    presences: &[(u64, u64)],
    windows: RangeInclusive<u64>,
    per_window: usize,
) -> Result<Vec<(u64, Vec<u64>)>, RulesError> {
    // Group the distinct presences by window, checking each.
    let mut by_window: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for &(window, code) in presences {
        if code == DUMMY_VENUE_CODE {
            return Err(RulesError::ReservedVenueCode);
        }
        if !windows.contains(&window) {
            return Err(RulesError::WindowOutOfRange {
                window,
                first: *windows.start(),
                last: *windows.end(),
            });
        }
        by_window.entry(window).or_default().insert(code);
    }
    if let Some((&window, codes)) = by_window.iter().find(|(_, c)| c.len() > per_window) {
        return Err(RulesError::TooManyReports {
            window,
            count: codes.len(),
            limit: per_window,
        });
    }

    // Every window gets the same number of reports.
    Ok(windows
        .map(|w| {
            let mut codes: Vec<u64> = by_window
                .get(&w)
                .map(|c| c.iter().copied().collect())
                .unwrap_or_default();
            codes.resize(per_window, DUMMY_VENUE_CODE);
            (w, codes)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_threshold_is_where_evaluate_starts_to_alert() {
        let crowding = Rules::Crowding(
            CrowdingRule::new(800, 40)
                .and_then(|r| r.with_unknown_venue_count(Some(60)))
                .expect("valid"),
        );
        let outbreak = Rules::default_for(crate::task::TaskKind::Outbreak);
        for rules in [crowding, outbreak] {
            for venue in [Some(&CAFE), Some(&SHOP), None] {
                let t = rules
                    .alert_threshold(7, venue)
                    .expect("alerts at some count");
                let t = i64::try_from(t).expect("small");
                assert!(rules.evaluate(7, venue, t).is_some(), "{rules:?} {venue:?}");
                assert!(
                    rules.evaluate(7, venue, t - 1).is_none(),
                    "{rules:?} {venue:?}"
                );
            }
            assert_eq!(rules.alert_threshold(DUMMY_VENUE_CODE, Some(&CAFE)), None);
        }
        // Crowding without an unknown-venue count never alerts on an unregistered code.
        let strict = Rules::default_for(crate::task::TaskKind::Crowding);
        assert_eq!(strict.alert_threshold(7, None), None);
    }

    const CAFE: VenueInfo = VenueInfo {
        category: VenueCategory::Restaurant,
        capacity: 40,
    };
    const SHOP: VenueInfo = VenueInfo {
        category: VenueCategory::Retail,
        capacity: 40,
    };

    #[test]
    fn crowding_alerts_from_its_threshold_on() {
        let rules = Rules::Crowding(CrowdingRule::new(750, 1).expect("valid"));
        // 75 % of 40 is 30.
        assert_eq!(rules.evaluate(7, Some(&CAFE), 29), None);
        assert_eq!(
            rules.evaluate(7, Some(&CAFE), 30),
            Some(AlertLevel::Crowded)
        );
        assert_eq!(
            rules.evaluate(7, Some(&CAFE), 31),
            Some(AlertLevel::Crowded)
        );
    }

    #[test]
    fn crowding_threshold_rounds_up() {
        let rule = CrowdingRule::new(750, 1).expect("valid");
        assert_eq!(rule.threshold(41), 31); // 30.75
        assert_eq!(rule.threshold(0), 1);
        assert!(CrowdingRule::new(0, 1).is_err());
        assert!(CrowdingRule::new(10_001, 1).is_err());
        assert!(CrowdingRule::new(800, 0).is_err());
    }

    #[test]
    fn crowding_floor_has_sharp_edges() {
        let rules = Rules::Crowding(CrowdingRule::new(500, 25).expect("valid"));
        // Half of 40 is 20, but the floor is 25.
        assert_eq!(rules.evaluate(7, Some(&CAFE), 24), None);
        assert_eq!(
            rules.evaluate(7, Some(&CAFE), 25),
            Some(AlertLevel::Crowded)
        );
        assert_eq!(
            rules.evaluate(7, Some(&CAFE), 26),
            Some(AlertLevel::Crowded)
        );
    }

    #[test]
    fn crowding_cannot_judge_an_unknown_venue() {
        let rules = Rules::Crowding(CrowdingRule::new(500, 1).expect("valid"));
        assert_eq!(rules.evaluate(7, None, 1_000_000), None);
    }

    #[test]
    fn crowding_judges_an_unknown_venue_by_its_own_count_when_set() {
        let rule = CrowdingRule::new(500, 20)
            .and_then(|r| r.with_unknown_venue_count(Some(50)))
            .expect("valid");
        let rules = Rules::Crowding(rule);
        assert_eq!(rules.evaluate(7, None, 49), None);
        assert_eq!(rules.evaluate(7, None, 50), Some(AlertLevel::Crowded));
        assert_eq!(rules.evaluate(7, None, 51), Some(AlertLevel::Crowded));
        // Registered venues keep their capacity rule: 20 for a capacity of 40.
        assert_eq!(
            rules.evaluate(7, Some(&CAFE), 20),
            Some(AlertLevel::Crowded)
        );
        assert_eq!(rules.min_threshold([&CAFE]), 20);
        assert_eq!(rules.min_threshold([]), 50);
        // The unknown-venue count may not undercut the floor.
        let err = CrowdingRule::new(500, 20)
            .and_then(|r| r.with_unknown_venue_count(Some(19)))
            .expect_err("below the floor");
        assert!(matches!(
            err,
            RulesError::InvalidParameter {
                name: "unknown_venue_count",
                ..
            }
        ));
    }

    #[test]
    fn descriptions_name_the_threshold_reached() {
        let crowding = Rules::Crowding(CrowdingRule::new(750, 1).expect("valid"));
        assert_eq!(
            crowding
                .describe(Some(&CAFE), AlertLevel::Crowded)
                .as_deref(),
            Some("crowding: >= 30 people (750 permille of capacity 40, at least 1)")
        );
        assert_eq!(crowding.describe(None, AlertLevel::Crowded), None);
        assert_eq!(crowding.describe(Some(&CAFE), AlertLevel::Red), None);
        let outbreak = Rules::Outbreak(OutbreakRule::default_rules());
        assert_eq!(
            outbreak.describe(Some(&SHOP), AlertLevel::Red).as_deref(),
            Some("outbreak red: >= 5 positive presences (retail)")
        );
        assert_eq!(
            outbreak.describe(None, AlertLevel::Orange).as_deref(),
            Some("outbreak orange: >= 1 positive presences (unregistered venue)")
        );
        assert_eq!(AlertLevel::Crowded.name(), "crowding");
    }

    #[test]
    fn outbreak_levels_have_sharp_edges() {
        let rules = Rules::Outbreak(OutbreakRule::default_rules());
        // Restaurant: orange at 1, red at 3.
        assert_eq!(rules.evaluate(9, Some(&CAFE), 0), None);
        assert_eq!(rules.evaluate(9, Some(&CAFE), 1), Some(AlertLevel::Orange));
        assert_eq!(rules.evaluate(9, Some(&CAFE), 2), Some(AlertLevel::Orange));
        assert_eq!(rules.evaluate(9, Some(&CAFE), 3), Some(AlertLevel::Red));
        assert_eq!(rules.evaluate(9, Some(&CAFE), 4), Some(AlertLevel::Red));
        // Retail: orange at 2, red at 5.
        assert_eq!(rules.evaluate(9, Some(&SHOP), 1), None);
        assert_eq!(rules.evaluate(9, Some(&SHOP), 2), Some(AlertLevel::Orange));
        assert_eq!(rules.evaluate(9, Some(&SHOP), 4), Some(AlertLevel::Orange));
        assert_eq!(rules.evaluate(9, Some(&SHOP), 5), Some(AlertLevel::Red));
        assert_eq!(rules.evaluate(9, Some(&SHOP), 6), Some(AlertLevel::Red));
        // A code nobody registered gets the unknown-venue levels: orange at 1, red at 3.
        assert_eq!(rules.evaluate(9, None, 0), None);
        assert_eq!(rules.evaluate(9, None, 1), Some(AlertLevel::Orange));
        assert_eq!(rules.evaluate(9, None, 2), Some(AlertLevel::Orange));
        assert_eq!(rules.evaluate(9, None, 3), Some(AlertLevel::Red));
        assert_eq!(rules.evaluate(9, None, 4), Some(AlertLevel::Red));
        // A negative noisy count never alerts.
        assert_eq!(rules.evaluate(9, Some(&CAFE), -3), None);
    }

    #[test]
    fn dummy_code_never_alerts() {
        let crowding = Rules::Crowding(CrowdingRule::new(1, 1).expect("valid"));
        let outbreak = Rules::Outbreak(OutbreakRule::default_rules());
        for count in [1, 1_000, i64::MAX] {
            assert_eq!(
                crowding.evaluate(DUMMY_VENUE_CODE, Some(&CAFE), count),
                None
            );
            assert_eq!(
                outbreak.evaluate(DUMMY_VENUE_CODE, Some(&CAFE), count),
                None
            );
            assert_eq!(outbreak.evaluate(DUMMY_VENUE_CODE, None, count), None);
        }
    }

    #[test]
    fn category_rule_rejects_bad_levels() {
        assert!(CategoryRule::new(0, 3, 1, 1).is_err());
        assert!(CategoryRule::new(4, 3, 1, 1).is_err());
        assert!(CategoryRule::new(1, 3, 0, 1).is_err());
        assert!(CategoryRule::new(1, 3, 1, 0).is_err());
        assert!(CategoryRule::new(3, 3, 1, 1).is_ok());
    }

    #[test]
    fn exposure_depends_on_category_and_role() {
        let rule = OutbreakRule::default_rules();
        assert_eq!(
            rule.exposure_secs(VenueCategory::Restaurant, Role::Customer),
            7200
        );
        assert_eq!(
            rule.exposure_secs(VenueCategory::Retail, Role::Customer),
            3600
        );
        assert_eq!(
            rule.exposure_secs(VenueCategory::Retail, Role::Staff),
            12 * 3600
        );
        assert_eq!(rule.min_threshold(), 1);
    }

    #[test]
    fn spreading_covers_every_hour_a_checkin_touches() {
        // 12:30 for 2 h touches hours 12, 13 and 14.
        assert_eq!(windows_touched(12 * 3600 + 1800, 7200, 3600), Ok(12..=14));
        // 12:00 for exactly 2 h touches 12 and 13 only.
        assert_eq!(windows_touched(12 * 3600, 7200, 3600), Ok(12..=13));
        // 12:59:59 for one second: hour 12 alone.
        assert_eq!(windows_touched(13 * 3600 - 1, 1, 3600), Ok(12..=12));
        // Staff: 8:00 for 12 h, twelve windows.
        assert_eq!(
            windows_touched(8 * 3600, 12 * 3600, 3600).map(|r| r.count()),
            Ok(12)
        );
    }

    #[test]
    fn spreading_rejects_bad_durations() {
        assert!(windows_touched(0, 0, 3600).is_err());
        assert!(windows_touched(0, 10, 0).is_err());
        assert!(windows_touched(u64::MAX, 10, 3600).is_err());
    }

    #[test]
    fn padding_gives_every_window_the_same_shape() {
        let shaped =
            pad_to_fixed_shape(&[(3, 11), (3, 12), (3, 11), (5, 13)], 2..=5, 3).expect("fits");
        assert_eq!(shaped.len(), 4);
        assert!(shaped.iter().all(|(_, codes)| codes.len() == 3));
        assert_eq!(shaped[1], (3, vec![11, 12, 0]));
        assert_eq!(shaped[0], (2, vec![0, 0, 0]));
        assert_eq!(shaped[3], (5, vec![13, 0, 0]));
    }

    #[test]
    fn padding_refuses_bad_presences() {
        assert_eq!(
            pad_to_fixed_shape(&[(3, 0)], 0..=5, 3),
            Err(RulesError::ReservedVenueCode)
        );
        assert!(matches!(
            pad_to_fixed_shape(&[(9, 4)], 0..=5, 3),
            Err(RulesError::WindowOutOfRange { window: 9, .. })
        ));
        assert!(matches!(
            pad_to_fixed_shape(&[(1, 4), (1, 5)], 0..=5, 1),
            Err(RulesError::TooManyReports {
                window: 1,
                count: 2,
                limit: 1
            })
        ));
    }
}
