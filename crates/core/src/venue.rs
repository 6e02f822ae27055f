//! Venue categories: the one list every party shares. The registry records a venue's category,
//! the poster's QR payload carries its numeric code, the outbreak rules give each category its
//! alert levels and exposure times ([`crate::rules`]), and configuration files name it in
//! snake_case.
//!
//! The numeric codes are part of the wire format (the QR payload's `category` field) and never
//! change meaning; a new category gets the next free code.
//!
//! | code | category | snake_case name |
//! |---|---|---|
//! | 0 | [`VenueCategory::Other`] | `other` |
//! | 1 | [`VenueCategory::Restaurant`] | `restaurant` |
//! | 2 | [`VenueCategory::Bar`] | `bar` |
//! | 3 | [`VenueCategory::Retail`] | `retail` |
//! | 4 | [`VenueCategory::Workplace`] | `workplace` |
//! | 5 | [`VenueCategory::Education`] | `education` |
//! | 6 | [`VenueCategory::Sports`] | `sports` |
//! | 7 | [`VenueCategory::Culture`] | `culture` |
//! | 8 | [`VenueCategory::Worship`] | `worship` |
//! | 9 | [`VenueCategory::PersonalCare`] | `personal_care` |
//! | 10 | [`VenueCategory::PrivateEvent`] | `private_event` |
//! | 11 | [`VenueCategory::PublicBuilding`] | `public_building` |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VenueError {
    /// A category name that is not one of the snake_case names of the module table.
    #[error("unknown venue category `{0}` (expected one of: {names})", names = VenueCategory::names())]
    UnknownName(String),
}

/// The category of a venue; see the module docs for the codes and names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VenueCategory {
    /// Anything else.
    Other = 0,
    /// Restaurant, café, canteen.
    Restaurant = 1,
    /// Bar, club.
    Bar = 2,
    /// Shop.
    Retail = 3,
    /// Office or other workplace.
    Workplace = 4,
    /// School, university.
    Education = 5,
    /// Gym, sports hall.
    Sports = 6,
    /// Cinema, theatre, concert.
    Culture = 7,
    /// Church, mosque, synagogue, temple.
    Worship = 8,
    /// Hairdresser, other close-contact service.
    PersonalCare = 9,
    /// Private gathering.
    PrivateEvent = 10,
    /// Public building, health care.
    PublicBuilding = 11,
}

impl VenueCategory {
    /// Every category, in code order (`ALL[c].code() == c`).
    pub const ALL: [Self; 12] = [
        Self::Other,
        Self::Restaurant,
        Self::Bar,
        Self::Retail,
        Self::Workplace,
        Self::Education,
        Self::Sports,
        Self::Culture,
        Self::Worship,
        Self::PersonalCare,
        Self::PrivateEvent,
        Self::PublicBuilding,
    ];

    /// The category with wire code `code`, `None` for an unknown code.
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.get(usize::try_from(code).ok()?).copied()
    }

    /// The wire code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The snake_case name used in configuration files, the CLI and the dashboard.
    pub fn name(self) -> &'static str {
        match self {
            Self::Other => "other",
            Self::Restaurant => "restaurant",
            Self::Bar => "bar",
            Self::Retail => "retail",
            Self::Workplace => "workplace",
            Self::Education => "education",
            Self::Sports => "sports",
            Self::Culture => "culture",
            Self::Worship => "worship",
            Self::PersonalCare => "personal_care",
            Self::PrivateEvent => "private_event",
            Self::PublicBuilding => "public_building",
        }
    }

    /// The category named `name` (see [`Self::name`]); exact, case-sensitive match.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Every name, comma-separated, for error messages.
    fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl FromStr for VenueCategory {
    type Err = VenueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| VenueError::UnknownName(s.to_string()))
    }
}

impl fmt::Display for VenueCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let expected = [
            (VenueCategory::Other, 0),
            (VenueCategory::Restaurant, 1),
            (VenueCategory::Bar, 2),
            (VenueCategory::Retail, 3),
            (VenueCategory::Workplace, 4),
            (VenueCategory::Education, 5),
            (VenueCategory::Sports, 6),
            (VenueCategory::Culture, 7),
            (VenueCategory::Worship, 8),
            (VenueCategory::PersonalCare, 9),
            (VenueCategory::PrivateEvent, 10),
            (VenueCategory::PublicBuilding, 11),
        ];
        for (category, code) in expected {
            assert_eq!(category.code(), code);
            assert_eq!(VenueCategory::from_code(code), Some(category));
        }
        assert_eq!(VenueCategory::from_code(12), None);
        assert_eq!(VenueCategory::from_code(u32::MAX), None);
    }

    #[test]
    fn names_round_trip_through_from_str_and_display() {
        for category in VenueCategory::ALL {
            let name = category.to_string();
            assert_eq!(name.parse::<VenueCategory>(), Ok(category));
            assert_eq!(VenueCategory::from_name(&name), Some(category));
        }
        assert_eq!(VenueCategory::PersonalCare.name(), "personal_care");
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_list_of_names() {
        for bad in ["", "cafe", "Restaurant", "restaurant ", "personal-care"] {
            let err = bad.parse::<VenueCategory>().expect_err(bad);
            assert_eq!(err, VenueError::UnknownName(bad.to_string()));
            assert!(err.to_string().contains("public_building"), "{err}");
        }
    }

    #[test]
    fn serde_uses_the_snake_case_names() {
        #[derive(Deserialize, Serialize)]
        struct Entry {
            category: VenueCategory,
        }
        for category in VenueCategory::ALL {
            let text = toml::to_string(&Entry { category }).expect("serialises");
            assert_eq!(text.trim(), format!("category = \"{category}\""));
            let back: Entry = toml::from_str(&text).expect("known");
            assert_eq!(back.category, category);
        }
        assert!(toml::from_str::<Entry>("category = \"disco\"").is_err());
    }
}
