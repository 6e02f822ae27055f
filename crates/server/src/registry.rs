//! The collector's venue registry: the `Registry` gRPC service (issue 5, deliverable 3).
//!
//! `hotspot venue register` sends a venue's description; the collector checks every field,
//! gives the venue a code (its own, or a fresh random one `bits` wide), signs the venue's QR
//! payload with its registry key (Ed25519, crates/client `payload`), records the venue in its
//! `venues` table, and returns the payload URL. The registry key comes from a file or the
//! environment only; its public half is served by `GetRegistryKey` so that visitor apps can be
//! configured to trust it.
//!
//! | rule | status |
//! |---|---|
//! | no `authorization: Bearer <token>` header, or another token | `UNAUTHENTICATED` |
//! | `name` empty, over 80 characters or with control characters | `INVALID_ARGUMENT` `name` |
//! | `address` over 120 characters or with control characters | `INVALID_ARGUMENT` `address` |
//! | `latitude` / `longitude` missing, not finite or out of range | `INVALID_ARGUMENT` naming it |
//! | `category` not a known category name | `INVALID_ARGUMENT` `category` |
//! | `capacity` 0 | `INVALID_ARGUMENT` `capacity` |
//! | `default_minutes` over 1440 | `INVALID_ARGUMENT` `default_minutes` |
//! | `valid_days` over 1100 | `INVALID_ARGUMENT` `valid_days` |
//! | `venue_code` wider than the tasks' `bits` | `INVALID_ARGUMENT` `venue_code` |
//! | `venue_code` already registered | `ALREADY_EXISTS` `venue_code` |
//!
//! Nothing is stored on any rejection. Registrations are serialised inside the process, so the
//! duplicate check and the insert cannot interleave.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use hotspot_client::payload::{PayloadError, UrlConfig, VenueInfo, random_venue_code};
use hotspot_client::registry::RegistryKey;
use hotspot_client::{DAY_SECS, fallback};
use hotspot_core::task::DUMMY_VENUE_CODE;
use hotspot_core::venue::VenueCategory;
use hotspot_dashboard::BearerToken;
use hotspot_proto::v1;

use crate::node::Node;
use crate::storage::VenueRecord;
use crate::{blocking, store_status};

/// Longest validity of a payload, in days (about three years).
pub const MAX_VALID_DAYS: u32 = 1_100;
/// Validity when the request leaves it at 0.
pub const DEFAULT_VALID_DAYS: u32 = 365;
/// Default check-in duration when the request leaves it at 0.
pub const DEFAULT_MINUTES: u32 = 60;

/// A field of a venue that a rule refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VenueField {
    /// The venue code.
    Code,
    /// The name.
    Name,
    /// The address.
    Address,
    /// The latitude.
    Latitude,
    /// The longitude.
    Longitude,
    /// The capacity.
    Capacity,
    /// The default check-in duration.
    DefaultMinutes,
}

impl VenueField {
    /// The field's name on the wire (`RegisterVenueRequest`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Code => "venue_code",
            Self::Name => "name",
            Self::Address => "address",
            Self::Latitude => "latitude",
            Self::Longitude => "longitude",
            Self::Capacity => "capacity",
            Self::DefaultMinutes => "default_minutes",
        }
    }
}

/// Why a venue was refused: the field and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", field.name())]
pub struct VenueRuleError {
    /// The field.
    pub field: VenueField,
    /// The rule it breaks.
    pub reason: String,
}

/// The QR payload's fields for a venue record: its code, name, address, category, capacity and
/// default minutes, with `bits` and `valid_until_day` (unsigned).
pub fn venue_payload(record: &VenueRecord, bits: u32, valid_until_day: u32) -> VenueInfo {
    VenueInfo {
        venue_code: record.code,
        bits,
        name: record.name.clone(),
        address: record.address.clone(),
        category: record.category,
        capacity: record.capacity,
        default_minutes: record.default_minutes,
        valid_until_day,
    }
}

/// The rules every registered venue obeys, whether it comes from the collector's
/// `[[venues]]` or from `RegisterVenue`: the QR payload's own field rules (crates/client
/// `payload`: code, name, address, capacity, default minutes) for `bits`-wide codes, and
/// coordinates on the globe.
pub fn check_venue(venue: &VenueRecord, bits: u32) -> Result<(), VenueRuleError> {
    let refuse = |field, reason: &str| {
        Err(VenueRuleError {
            field,
            reason: reason.to_owned(),
        })
    };
    if !(venue.lat.is_finite() && (-90.0..=90.0).contains(&venue.lat)) {
        return refuse(
            VenueField::Latitude,
            "must be a number from -90 to 90 degrees",
        );
    }
    if !(venue.lon.is_finite() && (-180.0..=180.0).contains(&venue.lon)) {
        return refuse(
            VenueField::Longitude,
            "must be a number from -180 to 180 degrees",
        );
    }
    let info = venue_payload(venue, if bits == 64 { 64 } else { 32 }, 0);
    match info.validate() {
        Ok(()) => Ok(()),
        Err(PayloadError::InvalidField { field, reason }) => {
            let field = match field {
                "name" => VenueField::Name,
                "address" => VenueField::Address,
                "capacity" => VenueField::Capacity,
                "default_minutes" => VenueField::DefaultMinutes,
                _ => VenueField::Code,
            };
            refuse(field, reason)
        }
        Err(other) => refuse(VenueField::Code, &other.to_string()),
    }
}

/// A registration whose every field passed its rule.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedVenue {
    /// The venue as the registry records it; `code` is 0 when the registry draws it.
    pub record: VenueRecord,
    /// Last valid day of its payload (Unix days).
    pub valid_until_day: u32,
}

/// Checks a request against the rules of the module table, for venue codes `bits` wide, at
/// `now`.
pub fn check_request(
    request: &v1::RegisterVenueRequest,
    bits: u32,
    now: u64,
) -> Result<CheckedVenue, Status> {
    let today = u32::try_from(now / DAY_SECS).unwrap_or(u32::MAX);
    let (Some(lat), Some(lon)) = (request.latitude, request.longitude) else {
        let missing = if request.latitude.is_none() {
            "latitude"
        } else {
            "longitude"
        };
        return Err(invalid(missing, "missing"));
    };
    let category = VenueCategory::from_name(request.category.trim()).ok_or_else(|| {
        invalid(
            "category",
            &format!("unknown category `{}`", request.category),
        )
    })?;
    let valid_days = match request.valid_days {
        0 => DEFAULT_VALID_DAYS,
        d if d > MAX_VALID_DAYS => {
            return Err(invalid("valid_days", "must be at most 1100"));
        }
        d => d,
    };
    let record = VenueRecord {
        code: request.venue_code,
        name: request.name.trim().to_owned(),
        address: request.address.trim().to_owned(),
        lat,
        lon,
        category,
        capacity: request.capacity,
        default_minutes: match request.default_minutes {
            0 => DEFAULT_MINUTES,
            m => m,
        },
        registered_unix: now,
    };
    // A code of 0 asks the registry to draw one: check the rest with a placeholder.
    let probe = VenueRecord {
        code: record.code.max(1),
        ..record.clone()
    };
    check_venue(&probe, bits).map_err(|e| invalid(e.field.name(), &e.reason))?;
    Ok(CheckedVenue {
        record,
        valid_until_day: today.saturating_add(valid_days),
    })
}

fn invalid(field: &str, why: &str) -> Status {
    Status::invalid_argument(format!("{field}: {why}"))
}

/// The `Registry` service.
pub struct RegistryService {
    node: Arc<Node>,
    key: Arc<RegistryKey>,
    url: UrlConfig,
    bits: u32,
    token: BearerToken,
    /// Serialises registrations: the duplicate check and the insert happen under it.
    write: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService")
            .field("key", &self.key)
            .field("host", &self.url.host)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl RegistryService {
    /// The registry of `node`, signing with `key` for URLs on `host`, open to holders of
    /// `token`. Venue codes are as wide as the narrowest task's (32 unless every task is 64).
    pub fn new(node: Arc<Node>, key: Arc<RegistryKey>, host: String, token: BearerToken) -> Self {
        let bits = node
            .tasks
            .values()
            .map(|t| t.config.bits)
            .min()
            .unwrap_or(32);
        Self {
            node,
            key,
            url: UrlConfig { host },
            bits,
            token,
            write: tokio::sync::Mutex::new(()),
        }
    }

    fn authorise<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization: a bearer token is required"))?;
        if !self.token.matches(presented.trim().as_bytes()) {
            return Err(Status::unauthenticated(
                "authorization: the token is not valid",
            ));
        }
        Ok(())
    }

    /// A fresh venue code nobody holds: random, `bits` wide, never 0.
    async fn draw_code(&self) -> Result<u64, Status> {
        for _ in 0..16 {
            let code = random_venue_code(self.bits, &mut rand::rng());
            let store = Arc::clone(&self.node.store);
            if blocking(move || store.venue(code).map_err(store_status))
                .await?
                .is_none()
            {
                return Ok(code);
            }
        }
        // With 2^32 codes this means the registry is nearly full.
        Err(Status::resource_exhausted(
            "venue_code: no free venue code found; the registry is full",
        ))
    }
}

#[tonic::async_trait]
impl v1::registry_server::Registry for RegistryService {
    #[tracing::instrument(name = "register_venue", skip_all, fields(venue_code))]
    async fn register_venue(
        &self,
        request: Request<v1::RegisterVenueRequest>,
    ) -> Result<Response<v1::RegisterVenueResponse>, Status> {
        self.authorise(&request)?;
        let now = crate::now_unix();
        let CheckedVenue {
            mut record,
            valid_until_day,
        } = check_request(request.get_ref(), self.bits, now)?;

        let _serialised = self.write.lock().await;
        // 1. The code: the requested one if free, else a fresh one.
        if record.code == DUMMY_VENUE_CODE {
            record.code = self.draw_code().await?;
        } else {
            let (store, code) = (Arc::clone(&self.node.store), record.code);
            if blocking(move || store.venue(code).map_err(store_status))
                .await?
                .is_some()
            {
                return Err(Status::already_exists(format!(
                    "venue_code: {code} is already registered"
                )));
            }
        }
        let code = record.code;
        tracing::Span::current().record("venue_code", code);

        // 2. Sign, then store: a venue is recorded only with a payload that verifies.
        let info = venue_payload(&record, self.bits, valid_until_day);
        let payload = info
            .sign(&self.key)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let store = Arc::clone(&self.node.store);
        blocking(move || store.put_venue(&record).map_err(store_status)).await?;
        tracing::info!(category = %info.category, "venue registered");
        metrics::counter!("hotspot_venues_registered_total").increment(1);

        Ok(Response::new(v1::RegisterVenueResponse {
            venue_code: code,
            payload_url: payload.to_url(&self.url),
            fallback_code: fallback::encode(code, self.bits),
            valid_until_day,
        }))
    }

    async fn get_registry_key(
        &self,
        _request: Request<v1::GetRegistryKeyRequest>,
    ) -> Result<Response<v1::GetRegistryKeyResponse>, Status> {
        let public = self.key.public();
        Ok(Response::new(v1::GetRegistryKeyResponse {
            public_key: public.verifying_key().as_bytes().to_vec(),
            key_id: public.key_id().to_vec(),
            payload_host: self.url.host.clone(),
            bits: self.bits,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TODAY: u32 = 20_800;
    const NOW: u64 = TODAY as u64 * DAY_SECS + 3600;

    fn request() -> v1::RegisterVenueRequest {
        v1::RegisterVenueRequest {
            name: "Café Central".into(),
            address: "Herrengasse 14, Wien".into(),
            latitude: Some(48.21),
            longitude: Some(16.366),
            category: "restaurant".into(),
            capacity: 80,
            default_minutes: 90,
            valid_days: 30,
            venue_code: 0,
        }
    }

    fn field_of(status: &Status) -> &str {
        status.message().split(':').next().unwrap_or_default()
    }

    #[test]
    fn a_good_request_passes_with_defaults_filled_in() {
        let checked = check_request(&request(), 32, NOW).unwrap();
        assert_eq!(checked.record.category, VenueCategory::Restaurant);
        assert_eq!(checked.valid_until_day, TODAY + 30);
        let defaults = v1::RegisterVenueRequest {
            default_minutes: 0,
            valid_days: 0,
            ..request()
        };
        let checked = check_request(&defaults, 32, NOW).unwrap();
        assert_eq!(
            (checked.record.default_minutes, checked.valid_until_day),
            (DEFAULT_MINUTES, TODAY + DEFAULT_VALID_DAYS)
        );
    }

    #[test]
    fn every_rejection_names_its_field() {
        let cases: Vec<(v1::RegisterVenueRequest, &str)> = vec![
            (
                v1::RegisterVenueRequest {
                    name: " ".into(),
                    ..request()
                },
                "name",
            ),
            (
                v1::RegisterVenueRequest {
                    name: "x".repeat(81),
                    ..request()
                },
                "name",
            ),
            (
                v1::RegisterVenueRequest {
                    address: "a\u{1}b".into(),
                    ..request()
                },
                "address",
            ),
            (
                v1::RegisterVenueRequest {
                    latitude: None,
                    ..request()
                },
                "latitude",
            ),
            (
                v1::RegisterVenueRequest {
                    latitude: Some(90.5),
                    ..request()
                },
                "latitude",
            ),
            (
                v1::RegisterVenueRequest {
                    longitude: Some(f64::NAN),
                    ..request()
                },
                "longitude",
            ),
            (
                v1::RegisterVenueRequest {
                    longitude: Some(-180.01),
                    ..request()
                },
                "longitude",
            ),
            (
                v1::RegisterVenueRequest {
                    category: "casino".into(),
                    ..request()
                },
                "category",
            ),
            (
                v1::RegisterVenueRequest {
                    capacity: 0,
                    ..request()
                },
                "capacity",
            ),
            (
                v1::RegisterVenueRequest {
                    default_minutes: 1441,
                    ..request()
                },
                "default_minutes",
            ),
            (
                v1::RegisterVenueRequest {
                    valid_days: MAX_VALID_DAYS + 1,
                    ..request()
                },
                "valid_days",
            ),
            (
                v1::RegisterVenueRequest {
                    venue_code: 1 << 32,
                    ..request()
                },
                "venue_code",
            ),
        ];
        for (bad, field) in cases {
            let status = check_request(&bad, 32, NOW).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}");
            assert_eq!(field_of(&status), field, "{}", status.message());
        }
    }

    #[test]
    fn a_64_bit_registry_takes_any_nonzero_code() {
        let wide = v1::RegisterVenueRequest {
            venue_code: u64::MAX,
            ..request()
        };
        assert!(check_request(&wide, 64, NOW).is_ok());
    }
}
