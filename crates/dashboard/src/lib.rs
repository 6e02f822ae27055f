//! hotspot-dashboard: what leaves the collector for people and apps (DESIGN.md section 3,
//! step 7): the health authority's dashboard, webhook alert delivery, and the signed exposure
//! list visitor apps match against their diaries.
//!
//! The collector mounts it through a narrow interface:
//!
//! 1. implement [`DashboardSource`] (and [`webhook::Outbox`] for durable webhook state) over its
//!    store; [`InMemorySource`] and [`webhook::InMemoryOutbox`] stand in for tests and demos;
//! 2. `admin_router.merge(router(DashboardState::new(source, token)))`, adding
//!    [`DashboardState::with_exposure_signing_key`] to publish the exposure list;
//! 3. spawn [`webhook::WebhookDispatcher::run`] per configured endpoint.
//!
//! | module | holds |
//! |---|---|
//! | [`view`] | the view types (alerts, batches, venues, filters, cursors) |
//! | [`exposure`] | the exposure-list wire format, signing and verification (no server needed) |
//! | [`source`] | the [`DashboardSource`] trait and the in-memory implementation |
//! | [`auth`] | bearer token and session cookie checks |
//! | [`web`] | the axum router |
//! | [`page`], [`map`] | server-rendered HTML and the SVG heat grid |
//! | [`webhook`] | signed webhook delivery with retries through a durable outbox |
//! | [`demo`] | made-up demo data |
//! | [`conformance`] | contract checks the collector's store runs against its implementations |
//!
//! With `default-features = false` only [`view`] and [`exposure`] are built (serde and
//! ed25519-dalek), which is what the visitor library needs.

#![warn(missing_docs)]

pub mod exposure;
pub mod view;

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
mod civil;
#[cfg(feature = "server")]
pub mod conformance;
#[cfg(feature = "server")]
pub mod demo;
#[cfg(feature = "server")]
pub mod map;
#[cfg(feature = "server")]
pub mod page;
#[cfg(feature = "server")]
pub mod source;
#[cfg(feature = "server")]
pub mod web;
#[cfg(feature = "server")]
pub mod webhook;

#[cfg(feature = "server")]
pub use auth::BearerToken;
#[cfg(feature = "server")]
pub use source::{DashboardSource, InMemorySource, SourceError};
#[cfg(feature = "server")]
pub use web::{DashboardState, router};
