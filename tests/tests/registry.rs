//! The collector's venue registry with a real collector process: `hotspot venue register`
//! records a venue and prints a payload the registry key signed; `hotspot venue registry-key`
//! prints that key; every rejection over the wire names its field and stores nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use hotspot_cli::cluster::Cluster;
use hotspot_client::grpc::RegistryClient;
use hotspot_client::payload::{UrlConfig, parse_url};
use hotspot_client::registry::TrustedKeys;
use hotspot_core::venue::VenueCategory;
use hotspot_proto::v1;
use tonic::Code;

use common::*;

fn venues_stored(cluster: &Cluster) -> i64 {
    let conn = rusqlite::Connection::open(cluster.dir.join("collector.sqlite")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM venues", [], |r| r.get(0))
        .unwrap()
}

fn request(name: &str, venue_code: u64) -> v1::RegisterVenueRequest {
    v1::RegisterVenueRequest {
        name: name.into(),
        address: "2 Quai Nord".into(),
        latitude: Some(48.86),
        longitude: Some(2.35),
        category: "bar".into(),
        capacity: 60,
        default_minutes: 120,
        valid_days: 10,
        venue_code,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registered_venues_get_signed_payloads_and_rejections_store_nothing() {
    let cluster = Cluster::prepare(&test_dir("registry"), exe(), &spec(60, vec![7], 10)).unwrap();
    let _procs = Procs(vec![(
        "collector".into(),
        cluster.start("collector").unwrap(),
    )]);
    let collector = cluster.url("collector");
    let token_file = cluster.dashboard_token_file();
    let token = std::fs::read_to_string(&token_file).unwrap();
    let before = venues_stored(&cluster); // the configured venue 7

    // 1. The CLI registers a venue and prints the URL the registry signed.
    let out = Command::new(exe())
        .args([
            "venue",
            "register",
            "--collector",
            &collector,
            "--token-file",
        ])
        .arg(&token_file)
        .args([
            "--name",
            "Café Nord",
            "--address",
            "1 rue du Nord",
            "--coordinates",
            "48.86,2.35",
            "--category",
            "restaurant",
            "--capacity",
            "40",
            "--default-minutes",
            "90",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    // 2. It verifies under the registry key the collector publishes (and holds).
    let registry = RegistryClient::new(&collector, Some(&token)).unwrap();
    let (key, host, bits) = registry.public_key().await.unwrap();
    assert_eq!(key, cluster.registry_key().unwrap().public());
    assert_eq!(bits, 32);
    let now = hotspot_client::unix_now();
    let venue = parse_url(&url, &UrlConfig { host }, &TrustedKeys::new([key]), now).unwrap();
    assert_eq!(
        (venue.name.as_str(), venue.category, venue.capacity),
        ("Café Nord", VenueCategory::Restaurant, 40)
    );
    assert_eq!(venues_stored(&cluster), before + 1);
    let printed = Command::new(exe())
        .args(["venue", "registry-key", "--collector", &collector])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&printed.stdout).contains(&key.to_hex()));

    // 3. A venue with a code of its own, then the same code again.
    let own = registry.register(request("Bar Sud", 4242)).await.unwrap();
    assert_eq!(own.venue_code, 4242);
    let again = registry
        .register(request("Bar Sud bis", 4242))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(again.message().starts_with("venue_code"), "{again:?}");
    let configured = registry.register(request("Seven", 7)).await.unwrap_err();
    assert_eq!(configured.code(), Code::AlreadyExists);

    // 4. Every field rule, over the wire, names its field.
    let cases = [
        (
            v1::RegisterVenueRequest {
                category: "casino".into(),
                ..request("x", 0)
            },
            "category",
        ),
        (
            v1::RegisterVenueRequest {
                capacity: 0,
                ..request("x", 0)
            },
            "capacity",
        ),
        (request("", 0), "name"),
        (
            v1::RegisterVenueRequest {
                latitude: Some(91.0),
                ..request("x", 0)
            },
            "latitude",
        ),
        (
            v1::RegisterVenueRequest {
                longitude: None,
                ..request("x", 0)
            },
            "longitude",
        ),
        (request("x", 1 << 33), "venue_code"),
    ];
    for (bad, field) in cases {
        let status = registry.register(bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }

    // 5. No token, a wrong token.
    let anonymous = RegistryClient::new(&collector, None).unwrap();
    let status = anonymous.register(request("x", 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let wrong = RegistryClient::new(&collector, Some("not-the-collector-token")).unwrap();
    let status = wrong.register(request("x", 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let cli = Command::new(exe())
        .args(["venue", "register", "--collector", &collector])
        .args(["--name", "X", "--coordinates", "1,2", "--capacity", "0"])
        .env("HOTSPOT_DASHBOARD_TOKEN", token.trim())
        .output()
        .unwrap();
    assert!(!cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("capacity"));

    // Only the two accepted registrations were stored.
    assert_eq!(venues_stored(&cluster), before + 2);
}
