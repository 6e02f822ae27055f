//! `hotspot venue`: registry keys, signed venue payloads and A4 posters.
//!
//! `register` records a venue in the collector's registry over gRPC (with the collector's
//! bearer token) and prints the payload URL the registry signed; `register --offline` signs
//! locally with a registry key file instead (open-mode tasks, tests). `registry-key` prints the
//! registry's public key for the visitor apps to trust. See docs/client.md.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hotspot_client::grpc::RegistryClient;
use hotspot_client::payload::{self, UrlConfig, VenueCategory, VenueInfo};
use hotspot_client::poster::Poster;
use hotspot_client::registry::{RegistryKey, TrustedKey, TrustedKeys};
use hotspot_client::{DAY_SECS, fallback, unix_now};
use hotspot_proto::v1;

use crate::runtime;

/// Venue tools: keys, registration, posters.
#[derive(Debug, Args)]
pub struct VenueArgs {
    #[command(subcommand)]
    command: VenueCommand,
}

#[derive(Debug, Subcommand)]
enum VenueCommand {
    /// Create a registry signing key file (mode 0600) and print its public key.
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Register a venue and print its signed QR payload URL.
    Register(RegisterArgs),
    /// Print the public key of the collector's registry (what visitor apps trust).
    RegistryKey {
        /// The collector's gRPC URL.
        #[arg(long, env = "HOTSPOT_COLLECTOR_URL")]
        collector: String,
    },
    /// Render the A4 poster of a signed payload as SVG, PNG and PDF.
    Poster(PosterArgs),
}

#[derive(Debug, Args)]
struct RegisterArgs {
    /// Sign locally with `--registry-key` instead of asking the collector's registry.
    #[arg(long)]
    offline: bool,
    /// Registry key file (see `hotspot venue keygen`), for `--offline`.
    #[arg(long)]
    registry_key: Option<PathBuf>,
    /// The collector's gRPC URL (its registry service).
    #[arg(
        long,
        env = "HOTSPOT_COLLECTOR_URL",
        required_unless_present = "offline"
    )]
    collector: Option<String>,
    /// File holding the collector's bearer token (or set HOTSPOT_DASHBOARD_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Venue name shown on the poster and in the app.
    #[arg(long)]
    name: String,
    /// Street address.
    #[arg(long, default_value = "")]
    address: String,
    /// Coordinates as `lat,lon` in degrees (kept by the registry, not printed in the
    /// payload); needed to register with the collector.
    #[arg(long, required_unless_present = "offline")]
    coordinates: Option<String>,
    /// Category: other, restaurant, bar, retail, workplace, education, sports, culture,
    /// worship, personal_care, private_event, public_building.
    #[arg(long, default_value = "other")]
    category: String,
    /// Capacity in persons.
    #[arg(long)]
    capacity: u32,
    /// Default check-in duration in minutes.
    #[arg(long, default_value_t = 60)]
    default_minutes: u32,
    /// Days from today the payload stays valid.
    #[arg(long, default_value_t = 365)]
    valid_days: u32,
    /// Venue code width of the task (32 or 64), for `--offline` (the registry knows its own).
    #[arg(long, default_value_t = 32)]
    bits: u32,
    /// Venue code (a poster printed again); drawn at random when absent.
    #[arg(long)]
    venue_code: Option<u64>,
    /// Host of the check-in landing page.
    #[arg(
        long,
        env = "HOTSPOT_QR_HOST",
        default_value = "checkin.hotspot.example"
    )]
    host: String,
}

#[derive(Debug, Args)]
struct PosterArgs {
    /// The signed payload URL (as printed by `register`).
    #[arg(long)]
    payload: String,
    /// The registry public key (hex) that signed it.
    #[arg(long)]
    registry_pub: String,
    /// Host the payload URL uses.
    #[arg(
        long,
        env = "HOTSPOT_QR_HOST",
        default_value = "checkin.hotspot.example"
    )]
    host: String,
    /// Folder for poster.svg, poster.png and poster.pdf.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
    /// PNG resolution in dots per inch.
    #[arg(long, default_value_t = 150.0)]
    dpi: f32,
}

/// Runs `hotspot venue ...`.
pub fn run(args: VenueArgs) -> anyhow::Result<()> {
    match args.command {
        VenueCommand::Keygen { out } => {
            let key = RegistryKey::generate(&mut rand::rng());
            key.save(&out)?;
            println!("registry key written to {}", out.display());
            println!("public key: {}", key.public().to_hex());
            Ok(())
        }
        VenueCommand::Register(args) if args.offline => register_offline(args),
        VenueCommand::Register(args) => register(args),
        VenueCommand::RegistryKey { collector } => {
            let (key, host, bits) = runtime()?.block_on(async {
                let registry = RegistryClient::new(&collector, None)?;
                registry
                    .public_key()
                    .await
                    .map_err(|s| anyhow::anyhow!("registry: {}", s.message()))
            })?;
            println!("public key: {}", key.to_hex());
            println!("payload host: {host}, venue codes of {bits} bits");
            Ok(())
        }
        VenueCommand::Poster(args) => poster(args),
    }
}

fn register(args: RegisterArgs) -> anyhow::Result<()> {
    let collector = args
        .collector
        .as_deref()
        .context("--collector URL is needed (or --offline)")?;
    let (lat, lon) = parse_coordinates(args.coordinates.as_deref().unwrap_or_default())?;
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--token-file {}", path.display()))?,
        None => std::env::var("HOTSPOT_DASHBOARD_TOKEN").context(
            "the collector's bearer token: give --token-file FILE or set HOTSPOT_DASHBOARD_TOKEN",
        )?,
    };
    let request = v1::RegisterVenueRequest {
        name: args.name,
        address: args.address,
        latitude: Some(lat),
        longitude: Some(lon),
        category: args.category,
        capacity: args.capacity,
        default_minutes: args.default_minutes,
        valid_days: args.valid_days,
        venue_code: args.venue_code.unwrap_or(0),
    };
    let registered = runtime()?.block_on(async {
        let registry = RegistryClient::new(collector, Some(&token))?;
        registry
            .register(request)
            .await
            .map_err(|s| anyhow::anyhow!("registry refused ({:?}): {}", s.code(), s.message()))
    })?;
    println!("{}", registered.payload_url);
    eprintln!(
        "venue code {} (typed: {}), valid through {}, payload URL {} bytes",
        registered.venue_code,
        registered.fallback_code,
        hotspot_client::civil::CivilDate::from_unix_days(registered.valid_until_day),
        registered.payload_url.len()
    );
    Ok(())
}

fn register_offline(args: RegisterArgs) -> anyhow::Result<()> {
    let key_path = args
        .registry_key
        .as_ref()
        .context("--offline needs --registry-key FILE")?;
    let key = RegistryKey::load(key_path)?;
    if let Some(coordinates) = &args.coordinates {
        parse_coordinates(coordinates)?;
    }
    let category: VenueCategory = args.category.parse().context("--category")?;
    let today = u32::try_from(unix_now() / DAY_SECS).context("clock past year 11 million")?;
    let venue = VenueInfo {
        venue_code: args
            .venue_code
            .unwrap_or_else(|| payload::random_venue_code(args.bits, &mut rand::rng())),
        bits: args.bits,
        name: args.name,
        address: args.address,
        category,
        capacity: args.capacity,
        default_minutes: args.default_minutes,
        valid_until_day: today.saturating_add(args.valid_days),
    };
    let url = venue.sign(&key)?.to_url(&UrlConfig { host: args.host });
    println!("{url}");
    eprintln!(
        "venue code {} (typed: {}), payload URL {} bytes",
        venue.venue_code,
        fallback::encode(venue.venue_code, venue.bits),
        url.len()
    );
    Ok(())
}

fn poster(args: PosterArgs) -> anyhow::Result<()> {
    let keys =
        TrustedKeys::new([TrustedKey::from_hex(&args.registry_pub).context("--registry-pub")?]);
    let config = UrlConfig { host: args.host };
    let venue =
        payload::parse_url(args.payload.trim(), &config, &keys, unix_now()).context("--payload")?;
    let poster = Poster {
        venue,
        url: args.payload.trim().to_owned(),
    };
    std::fs::create_dir_all(&args.out_dir)?;
    let outputs = [
        ("poster.svg", poster.to_svg()?.into_bytes()),
        ("poster.png", poster.to_png(args.dpi)?),
        ("poster.pdf", poster.to_pdf()?),
    ];
    for (name, bytes) in outputs {
        let path = args.out_dir.join(name);
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}

fn parse_coordinates(text: &str) -> anyhow::Result<(f64, f64)> {
    let (lat, lon) = text
        .split_once(',')
        .context("--coordinates: expected lat,lon")?;
    let lat: f64 = lat.trim().parse().context("--coordinates: latitude")?;
    let lon: f64 = lon.trim().parse().context("--coordinates: longitude")?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        bail!("--coordinates: out of range");
    }
    Ok((lat, lon))
}
