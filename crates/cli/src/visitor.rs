//! `hotspot visitor`: the visitor's app as a command line, over the client library.
//!
//! `scan` checks in from a payload string or a photo of a poster, `diary` lists the local
//! diary, `report-positive` prepares the padded outbreak upload into the diary's outbox, and
//! `check-exposure` verifies a signed exposure list and matches it against the diary.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hotspot_client::civil::CivilDate;
use hotspot_client::diary::{Diary, RETENTION_DAYS};
use hotspot_client::payload::{UrlConfig, VenueCategory};
use hotspot_client::registry::{TrustedKey, TrustedKeys};
use hotspot_client::scan::{ScanConfig, scan};
use hotspot_client::upload::{
    PaddingParams, SpreadParams, WindowGrid, crowding_report, outbreak_upload,
};
use hotspot_client::{DAY_SECS, UnixSeconds, exposure, poster, unix_now};

/// The visitor's app: check in, keep the diary, report, match alerts.
#[derive(Debug, Args)]
pub struct VisitorArgs {
    /// The diary file (created on first use).
    #[arg(long, env = "HOTSPOT_DIARY", default_value = "hotspot-diary.json")]
    diary: PathBuf,
    #[command(subcommand)]
    command: VisitorCommand,
}

#[derive(Debug, Subcommand)]
enum VisitorCommand {
    /// Check in by scanning a payload URL, a typed code, or a PNG/JPEG photo of a poster.
    Scan(ScanArgs),
    /// List the check-ins of the last 14 days.
    Diary,
    /// After a positive test: prepare the padded outbreak upload of the whole diary.
    ReportPositive(ReportArgs),
    /// Verify a signed exposure list and match it against the diary, on this device.
    CheckExposure(ExposureArgs),
}

#[derive(Debug, Args)]
struct ScanArgs {
    /// Payload URL or typed fallback code.
    payload: Option<String>,
    /// A PNG or JPEG photo of a poster instead of a payload string.
    #[arg(long, conflicts_with = "payload")]
    image: Option<PathBuf>,
    /// Registry public keys (hex) the app trusts.
    #[arg(
        long = "registry-pub",
        env = "HOTSPOT_REGISTRY_PUB",
        value_delimiter = ','
    )]
    registry_pub: Vec<String>,
    /// Host of our payload URLs.
    #[arg(
        long,
        env = "HOTSPOT_QR_HOST",
        default_value = "checkin.hotspot.example"
    )]
    host: String,
    /// Venue code width for Corona-Warn-App and NotifyMe posters (the open task's bits).
    #[arg(long, default_value_t = 32)]
    legacy_bits: u32,
    /// Arrival, Unix seconds (default: now).
    #[arg(long)]
    arrival: Option<UnixSeconds>,
    /// Departure, Unix seconds (default: arrival plus the venue's default duration).
    #[arg(long)]
    departure: Option<UnixSeconds>,
    /// Prepare a crowding report for this task into the outbox.
    #[arg(long)]
    crowding_task: Option<String>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The one-time diagnosis code from the health authority.
    #[arg(long)]
    code: String,
    /// The outbreak task id.
    #[arg(long, default_value = "outbreak")]
    task: String,
    /// Window length in seconds.
    #[arg(long, default_value_t = 3600)]
    window_secs: u64,
    /// Reports per window after padding.
    #[arg(long, default_value_t = 4)]
    reports_per_window: usize,
    /// Exposure time per category, e.g. `restaurant=120,workplace=720` (minutes).
    #[arg(long, value_delimiter = ',')]
    exposure: Vec<String>,
    /// Exposure time of other categories, in minutes.
    #[arg(long, default_value_t = 120)]
    default_exposure: u32,
}

#[derive(Debug, Args)]
struct ExposureArgs {
    /// The downloaded exposure list (crates/dashboard's signed format).
    #[arg(long)]
    list: PathBuf,
    /// The collector's public key (hex) that signs exposure lists.
    #[arg(long, env = "HOTSPOT_COLLECTOR_PUB")]
    collector_pub: String,
}

/// Runs `hotspot visitor ...`.
pub fn run(args: VisitorArgs) -> anyhow::Result<()> {
    let now = unix_now();
    let mut diary = Diary::open(&args.diary, now)?;
    match args.command {
        VisitorCommand::Scan(scan_args) => check_in(&mut diary, scan_args, now),
        VisitorCommand::Diary => {
            print_diary(&diary);
            Ok(())
        }
        VisitorCommand::ReportPositive(report) => report_positive(&mut diary, report, now),
        VisitorCommand::CheckExposure(exposure_args) => {
            check_exposure(&mut diary, exposure_args, now)
        }
    }
}

fn check_in(diary: &mut Diary, args: ScanArgs, now: UnixSeconds) -> anyhow::Result<()> {
    // 1. The text: typed, or read from a photo.
    let text = match (&args.payload, &args.image) {
        (Some(text), None) => text.clone(),
        (None, Some(path)) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("--image {}", path.display()))?;
            poster::decode_qr_image(&bytes).context("--image")?
        }
        _ => bail!("give a payload or --image FILE"),
    };

    // 2. Parse and verify.
    let keys = args
        .registry_pub
        .iter()
        .map(|hex| TrustedKey::from_hex(hex).context("--registry-pub"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = ScanConfig {
        url: UrlConfig { host: args.host },
        keys: TrustedKeys::new(keys),
        legacy_bits: args.legacy_bits,
        typed_default_minutes: 60,
    };
    let venue = scan(&text, &config, now)?;

    // 3. Record, and prepare the crowding report if asked.
    let arrival = args.arrival.unwrap_or(now);
    let (name, code) = (venue.name.clone(), venue.venue_code);
    let id = diary.check_in(venue, arrival, args.departure)?;
    println!(
        "checked in at {} (venue code {code}), diary entry {id}",
        display_name(&name)
    );
    if let Some(task) = args.crowding_task {
        let checkin = diary
            .checkins()
            .iter()
            .find(|c| c.id == id)
            .context("just checked in")?
            .clone();
        let report = crowding_report(&checkin, &task, WindowGrid::HOURLY, &mut rand::rng());
        diary.enqueue([report])?;
        diary.mark_crowding_reported(id)?;
        println!(
            "crowding report for task {task} queued ({} in the outbox)",
            diary.outbox().len()
        );
    }
    Ok(())
}

fn print_diary(diary: &Diary) {
    if diary.checkins().is_empty() {
        println!("no check-ins in the last {RETENTION_DAYS} days");
    }
    for c in diary.checkins() {
        println!(
            "{:>4}  {}  {:>3} min  {:<32} code {}",
            c.id,
            when(c.arrival),
            (c.departure - c.arrival) / 60,
            display_name(&c.venue.name),
            c.venue.venue_code
        );
    }
    println!(
        "outbox: {} report(s) waiting for upload",
        diary.outbox().len()
    );
}

fn report_positive(diary: &mut Diary, args: ReportArgs, now: UnixSeconds) -> anyhow::Result<()> {
    if args.code.trim().is_empty() {
        bail!("--code: the diagnosis code is empty");
    }
    let spread = SpreadParams {
        grid: WindowGrid {
            origin: 0,
            secs: args.window_secs,
        },
        exposure_minutes: parse_exposure(&args.exposure)?,
        default_exposure_minutes: args.default_exposure,
    };
    let padding = PaddingParams {
        reports_per_window: args.reports_per_window,
        days: RETENTION_DAYS,
    };
    let upload = outbreak_upload(
        diary.checkins(),
        &args.task,
        now,
        &spread,
        padding,
        &mut rand::rng(),
    );
    let total = upload.reports.len();
    diary.enqueue(upload.reports)?;
    println!(
        "outbreak upload prepared: {total} reports ({} real presences; left out: {} over the \
         per-window limit, {} after now), queued in the diary's outbox with stable report ids",
        upload.real, upload.over_limit, upload.out_of_period
    );
    println!(
        "not sent: exchanging the diagnosis code for an outbreak credential and the gRPC \
         upload come with the issuer and leader services (docs/qr.md, \"What remains\")"
    );
    Ok(())
}

fn check_exposure(diary: &mut Diary, args: ExposureArgs, now: UnixSeconds) -> anyhow::Result<()> {
    let key = TrustedKey::from_hex(&args.collector_pub).context("--collector-pub")?;
    let bytes =
        std::fs::read(&args.list).with_context(|| format!("--list {}", args.list.display()))?;
    let list = exposure::verify_list(
        &bytes,
        &TrustedKeys::new([key]),
        diary.exposure_version(),
        now,
    )?;
    let matches = exposure::match_diary(&list, diary.checkins());
    diary.set_exposure_version(list.version())?;
    println!(
        "exposure list version {} verified: {} alerted cells",
        list.version(),
        list.cells().len()
    );
    if matches.is_empty() {
        println!("no match: none of your check-ins overlaps an alerted venue-hour");
    }
    for m in matches {
        println!(
            "MATCH level {}: {} (code {}) in the hour from {}",
            level_name(m.level),
            display_name(&m.venue_name),
            m.venue_code,
            when(m.window_start)
        );
    }
    Ok(())
}

fn level_name(level: exposure::ExposureLevel) -> &'static str {
    match level {
        exposure::ExposureLevel::Orange => "orange",
        exposure::ExposureLevel::Red => "red",
    }
}

fn parse_exposure(items: &[String]) -> anyhow::Result<BTreeMap<VenueCategory, u32>> {
    items
        .iter()
        .map(|item| {
            let (name, minutes) = item
                .split_once('=')
                .context("--exposure: expected category=minutes")?;
            let category = VenueCategory::from_name(name.trim())
                .with_context(|| format!("--exposure: unknown category {name:?}"))?;
            Ok((
                category,
                minutes.trim().parse().context("--exposure: minutes")?,
            ))
        })
        .collect()
}

fn display_name(name: &str) -> &str {
    if name.is_empty() {
        "(typed code)"
    } else {
        name
    }
}

fn when(at: UnixSeconds) -> String {
    let date = CivilDate::from_unix_days(u32::try_from(at / DAY_SECS).unwrap_or(u32::MAX));
    let secs = at % DAY_SECS;
    format!("{date} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}
