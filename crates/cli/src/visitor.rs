//! `hotspot visitor`: the visitor's app as a command line, over the client library and real
//! servers.
//!
//! - `scan` checks in from a payload string, a typed code or a photo of a poster; with a
//!   crowding task it prepares the check-in's crowding report and uploads it at once (what
//!   fails to go out stays in the diary's outbox for `sync`);
//! - `sync` uploads what waits in the outbox for a task, with retries;
//! - `diary` lists the local diary;
//! - `report-positive` prepares the padded outbreak upload of the whole diary and uploads it;
//! - `check-exposure` downloads the signed exposure list from the collector (or reads a file),
//!   verifies it and matches it against the diary on this device.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hotspot_client::civil::CivilDate;
use hotspot_client::credential::{IssuerClient, Wallet};
use hotspot_client::diary::{Diary, RETENTION_DAYS};
use hotspot_client::grpc::{GrpcUploader, WalletPresenter, reserve_tickets};
use hotspot_client::registry::{TrustedKey, TrustedKeys};
use hotspot_client::scan::{ScanConfig, scan};
use hotspot_client::upload::{
    PaddingParams, RetryPolicy, SpreadParams, UploadSummary, crowding_report, drain_outbox,
    outbreak_upload,
};
use hotspot_client::{DAY_SECS, UnixSeconds, exposure, net, poster, unix_now};
use hotspot_core::rules::{OutbreakRule, Role};
use hotspot_core::task::{TaskConfig, TaskKind};
use hotspot_core::venue::VenueCategory;
use hotspot_credentials::Day;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::runtime;

/// The visitor's app: check in, keep the diary, report, match alerts.
#[derive(Debug, Args)]
pub struct VisitorArgs {
    /// The diary file (created on first use).
    #[arg(long, env = "HOTSPOT_DIARY", default_value = "hotspot-diary.json")]
    diary: PathBuf,
    /// The credential wallet file (secret, mode 0600; default: the diary's path + `.wallet`).
    #[arg(long, env = "HOTSPOT_WALLET")]
    wallet: Option<PathBuf>,
    /// Upload attempts per report before giving up for now (the rest waits for `sync`).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=20))]
    attempts: u32,
    #[command(subcommand)]
    command: VisitorCommand,
}

#[derive(Debug, Subcommand)]
enum VisitorCommand {
    /// Check in by scanning a payload URL, a typed code, or a PNG/JPEG photo of a poster.
    Scan(ScanArgs),
    /// Upload the reports waiting in the outbox for a task.
    Sync(TaskArgs),
    /// List the check-ins of the last 14 days.
    Diary,
    /// After a positive test: upload the padded outbreak report of the whole diary.
    ReportPositive(ReportArgs),
    /// Download and verify the signed exposure list and match it against the diary, here.
    CheckExposure(ExposureArgs),
}

/// Which task to upload to, and where its leader is.
#[derive(Debug, Args)]
struct TaskArgs {
    /// The task file (public parameters, as the operator publishes them).
    #[arg(long)]
    task: PathBuf,
    /// The leader's gRPC URL.
    #[arg(long, env = "HOTSPOT_LEADER_URL")]
    leader: String,
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
    /// The crowding task file: report this check-in to it (needs --leader, and --issuer with
    /// --enrolment-id unless today's crowding credential is in the wallet).
    #[arg(long, env = "HOTSPOT_CROWDING_TASK", requires = "leader")]
    crowding_task: Option<PathBuf>,
    /// The leader's gRPC URL, for the crowding report.
    #[arg(long, env = "HOTSPOT_LEADER_URL")]
    leader: Option<String>,
    /// The issuer's gRPC URL, to obtain today's crowding credential.
    #[arg(long, env = "HOTSPOT_ISSUER_URL")]
    issuer: Option<String>,
    /// This device's enrolment id, as the app operator provisioned it.
    #[arg(long, env = "HOTSPOT_ENROLMENT_ID")]
    enrolment_id: Option<String>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The one-time diagnosis code from the health authority.
    #[arg(long)]
    code: String,
    #[command(flatten)]
    target: TaskArgs,
    /// The issuer's gRPC URL, to exchange the code for an outbreak credential.
    #[arg(long, env = "HOTSPOT_ISSUER_URL")]
    issuer: String,
    /// Reports per window after padding (default: the task's presentations per window).
    #[arg(long)]
    reports_per_window: Option<usize>,
    /// Exposure time per category in minutes, e.g. `restaurant=120,workplace=720` (default:
    /// the outbreak rules' customer exposure times).
    #[arg(long, value_delimiter = ',')]
    exposure: Vec<String>,
}

#[derive(Debug, Args)]
struct ExposureArgs {
    /// The collector's exposure-list URL, e.g. `http://127.0.0.1:9003/exposure-list`.
    #[arg(long, env = "HOTSPOT_EXPOSURE_URL", required_unless_present = "list")]
    url: Option<String>,
    /// A downloaded exposure list instead of the URL.
    #[arg(long, conflicts_with = "url")]
    list: Option<PathBuf>,
    /// The health authority's public keys (hex) that sign exposure lists.
    #[arg(
        long = "collector-pub",
        env = "HOTSPOT_COLLECTOR_PUB",
        value_delimiter = ',',
        required = true
    )]
    collector_pub: Vec<String>,
}

/// Runs `hotspot visitor ...`.
pub fn run(args: VisitorArgs) -> anyhow::Result<()> {
    let now = unix_now();
    let mut diary = Diary::open(&args.diary, now)?;
    let wallet_path = args.wallet.clone().unwrap_or_else(|| {
        let mut path = args.diary.clone().into_os_string();
        path.push(".wallet");
        PathBuf::from(path)
    });
    let mut wallet = WalletFile::open(wallet_path, now)?;
    wallet.policy = RetryPolicy {
        max_attempts: args.attempts,
        ..RetryPolicy::default()
    };
    match args.command {
        VisitorCommand::Scan(scan_args) => check_in(&mut diary, &mut wallet, scan_args, now),
        VisitorCommand::Sync(target) => {
            let task = load_task(&target.task)?;
            let summary = runtime()?.block_on(upload(&mut diary, &wallet, &target.leader, task))?;
            print_summary(&summary, &diary);
            Ok(())
        }
        VisitorCommand::Diary => {
            print_diary(&diary);
            Ok(())
        }
        VisitorCommand::ReportPositive(report) => {
            report_positive(&mut diary, &mut wallet, report, now)
        }
        VisitorCommand::CheckExposure(exposure_args) => {
            check_exposure(&mut diary, exposure_args, now)
        }
    }
}

fn check_in(
    diary: &mut Diary,
    wallet: &mut WalletFile,
    args: ScanArgs,
    now: UnixSeconds,
) -> anyhow::Result<()> {
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
    let config = ScanConfig {
        url: hotspot_client::payload::UrlConfig { host: args.host },
        keys: trusted_keys(&args.registry_pub, "--registry-pub")?,
        legacy_bits: args.legacy_bits,
        typed_default_minutes: 60,
    };
    let venue = scan(&text, &config, now)?;

    // 3. Record.
    let arrival = args.arrival.unwrap_or(now);
    let (name, code) = (venue.name.clone(), venue.venue_code);
    let id = diary.check_in(venue, arrival, args.departure)?;
    println!(
        "checked in at {} (venue code {code}), diary entry {id}",
        display_name(&name)
    );

    // 4. The crowding report, prepared into the outbox before the first attempt, then sent.
    let (Some(task_path), Some(leader)) = (args.crowding_task, args.leader) else {
        return Ok(());
    };
    let task = load_task(&task_path)?;
    if task.kind != TaskKind::Crowding {
        bail!(
            "--crowding-task {}: not a crowding task",
            task_path.display()
        );
    }
    let checkin = diary
        .checkins()
        .iter()
        .find(|c| c.id == id)
        .context("the check-in just recorded is missing from the diary")?
        .clone();
    let runtime = runtime()?;
    let today = Day::from_unix_seconds(now);
    if !wallet.wallet.has(TaskKind::Crowding, today) {
        let (Some(issuer), Some(enrolment_id)) = (&args.issuer, &args.enrolment_id) else {
            bail!("no crowding credential for today: give --issuer URL and --enrolment-id ID");
        };
        let mut rng = StdRng::from_rng(&mut rand::rng());
        let obtained = runtime.block_on(async {
            let mut client = IssuerClient::connect(issuer).await?;
            client.obtain_crowding(enrolment_id, &mut rng).await
        });
        wallet
            .wallet
            .insert(obtained.context("--issuer: obtaining today's crowding credential")?);
        wallet.save()?;
    }
    let grid = hotspot_client::upload::WindowGrid::of_task(&task);
    let mut report = [crowding_report(
        &checkin,
        &task.id.to_hex(),
        grid,
        &mut rand::rng(),
    )];
    reserve_tickets(&mut wallet.wallet, &task, &mut report).context("crowding report")?;
    wallet.save()?;
    diary.enqueue(report)?;
    diary.mark_crowding_reported(id)?;
    match runtime.block_on(upload(diary, wallet, &leader, task)) {
        Ok(summary) => print_summary(&summary, diary),
        Err(err) => println!(
            "crowding report not sent yet ({err:#}); {} report(s) wait in the outbox for \
             `hotspot visitor sync`",
            diary.outbox().len()
        ),
    }
    Ok(())
}

/// Drains the outbox of `task` to `leader` with the wallet's credentials and retry policy.
async fn upload(
    diary: &mut Diary,
    wallet: &WalletFile,
    leader: &str,
    task: TaskConfig,
) -> anyhow::Result<UploadSummary> {
    let presenter = WalletPresenter(wallet.wallet.clone());
    let uploader = GrpcUploader::connect(leader, task, presenter).await?;
    let summary = drain_outbox(diary, &uploader, wallet.policy, &mut rand::rng()).await?;
    Ok(summary)
}

fn print_summary(summary: &UploadSummary, diary: &Diary) {
    println!(
        "uploaded: {} acknowledged, {} rejected by the leader, {} attempts; {} report(s) left \
         in the outbox",
        summary.acknowledged,
        summary.rejected,
        summary.attempts,
        diary.outbox().len()
    );
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

fn report_positive(
    diary: &mut Diary,
    wallet: &mut WalletFile,
    args: ReportArgs,
    now: UnixSeconds,
) -> anyhow::Result<()> {
    if args.code.trim().is_empty() {
        bail!("--code: the diagnosis code is empty");
    }
    let task = load_task(&args.target.task)?;
    if task.kind != TaskKind::Outbreak {
        bail!(
            "--task {}: not an outbreak task",
            args.target.task.display()
        );
    }
    let reports_per_window = args
        .reports_per_window
        .unwrap_or(task.presentations_per_window as usize);
    if reports_per_window == 0 {
        bail!("--reports-per-window: must be at least 1");
    }
    let spread = SpreadParams {
        grid: hotspot_client::upload::WindowGrid::of_task(&task),
        exposure_minutes: exposure_minutes(&args.exposure)?,
        default_exposure_minutes: 120,
    };
    let padding = PaddingParams::for_task(&task, reports_per_window, now);
    let mut prepared = outbreak_upload(
        diary.checkins(),
        &task.id.to_hex(),
        now,
        &spread,
        padding,
        &mut rand::rng(),
    );

    // The outbreak credential for the diagnosis code, then one presentation per report.
    let runtime = runtime()?;
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let obtained = runtime.block_on(async {
        let mut client = IssuerClient::connect(&args.issuer).await?;
        client.obtain_outbreak(&args.code, &mut rng).await
    });
    wallet
        .wallet
        .insert(obtained.context("--code: exchanging the diagnosis code at the issuer")?);
    reserve_tickets(&mut wallet.wallet, &task, &mut prepared.reports)
        .context("reserving a presentation per report")?;
    wallet.save()?;

    let total = prepared.reports.len();
    diary.enqueue(prepared.reports)?;
    println!(
        "outbreak upload prepared: {total} reports ({} real presences; left out: {} over the \
         per-window limit, {} outside the windows the task still accepts), queued in the \
         diary's outbox with stable report ids",
        prepared.real, prepared.over_limit, prepared.out_of_period
    );
    let summary = runtime.block_on(upload(diary, wallet, &args.target.leader, task))?;
    print_summary(&summary, diary);
    Ok(())
}

fn check_exposure(diary: &mut Diary, args: ExposureArgs, now: UnixSeconds) -> anyhow::Result<()> {
    let keys = trusted_keys(&args.collector_pub, "--collector-pub")?;
    let bytes = match (&args.url, &args.list) {
        (_, Some(path)) => {
            std::fs::read(path).with_context(|| format!("--list {}", path.display()))?
        }
        (Some(url), None) => runtime()?
            .block_on(net::fetch_exposure_list(url))
            .context("--url")?,
        (None, None) => bail!("give --url URL or --list FILE"),
    };
    let list = exposure::verify_list(&bytes, &keys, diary.exposure_version(), now)?;
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
            "MATCH level {}: {} (code {}) from {} for {} min",
            level_name(m.level),
            display_name(&m.venue_name),
            m.venue_code,
            when(m.window_start),
            m.window_secs / 60
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

/// The exposure time per category: the outbreak rules' customer times, then `items`
/// (`category=minutes`) over them.
fn exposure_minutes(items: &[String]) -> anyhow::Result<BTreeMap<VenueCategory, u32>> {
    let rules = OutbreakRule::default_rules();
    let mut minutes: BTreeMap<VenueCategory, u32> = VenueCategory::ALL
        .into_iter()
        .map(|c| {
            let secs = rules.exposure_secs(c, Role::Customer);
            (c, u32::try_from(secs / 60).unwrap_or(u32::MAX))
        })
        .collect();
    for item in items {
        let (name, value) = item
            .split_once('=')
            .context("--exposure: expected category=minutes")?;
        let category: VenueCategory = name.trim().parse().context("--exposure")?;
        let value = value
            .trim()
            .parse()
            .with_context(|| format!("--exposure: minutes of {category}"))?;
        minutes.insert(category, value);
    }
    Ok(minutes)
}

fn trusted_keys(hex_keys: &[String], flag: &str) -> anyhow::Result<TrustedKeys> {
    let keys = hex_keys
        .iter()
        .map(|hex| TrustedKey::from_hex(hex).with_context(|| flag.to_owned()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(TrustedKeys::new(keys))
}

/// The wallet and the file it lives in (secret: written atomically, readable by its owner
/// only), with the upload retry policy the uploads made with it follow.
struct WalletFile {
    path: PathBuf,
    wallet: Wallet,
    policy: RetryPolicy,
}

impl WalletFile {
    fn open(path: PathBuf, now: UnixSeconds) -> anyhow::Result<Self> {
        let mut wallet = match std::fs::read(&path) {
            Ok(bytes) => {
                Wallet::from_bytes(&bytes).with_context(|| format!("wallet {}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Wallet::new(),
            Err(e) => return Err(e).with_context(|| format!("wallet {}", path.display())),
        };
        wallet.prune(Day::from_unix_seconds(now));
        Ok(Self {
            path,
            wallet,
            policy: RetryPolicy::default(),
        })
    }

    fn save(&self) -> anyhow::Result<()> {
        use std::io::Write;

        let context = || format!("writing wallet {}", self.path.display());
        let tmp = self.path.with_extension("wallet-tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).with_context(context)?;
        file.write_all(&self.wallet.to_bytes())
            .with_context(context)?;
        file.sync_all().with_context(context)?;
        std::fs::rename(&tmp, &self.path).with_context(context)
    }
}

fn load_task(path: &Path) -> anyhow::Result<TaskConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--task {}", path.display()))?;
    TaskConfig::from_toml(&text).with_context(|| format!("--task {}", path.display()))
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
