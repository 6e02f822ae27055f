//! A three-role deployment on loopback, for the demo, the load benchmark and the end-to-end
//! tests: writes fresh keys, one task, one config per role into a folder, and starts each
//! role as a real process of the `hotspot` binary (`serve --role R --config F`). The collector
//! gets a dashboard token (`dashboard.token`) and an exposure-list signing key
//! (`exposure.key`), so its admin port serves the dashboard ([`Cluster::dashboard_url`]).
//!
//! A fourth role, the issuer, hands out the visitors' credentials: the leader, helper and
//! issuer share a credential master secret (`credential.key`); the issuer hashes enrolment ids
//! and diagnosis codes under `issuer-hash.key` and takes diagnosis codes from whoever holds
//! `issuer.token`. [`Cluster::wallets`] enrols simulated visitors and obtains one crowding
//! credential each over gRPC, as a phone would.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};

use hotspot_client::credential::{IssuerClient, Wallet};
use hotspot_client::registry::RegistryKey;
use hotspot_core::envelope::HpkeKeypair;
use hotspot_core::rules::Rules;
use hotspot_core::task::{
    PrivacyParams, SearchMode, SearchParams, TaskConfig, TaskId, decode_hex, encode_hex,
};
use hotspot_server::storage::VenueRecord;

/// What a cluster is set up with.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Window length in seconds.
    pub window_seconds: u64,
    /// Grace period in seconds.
    pub grace_seconds: u64,
    /// Open search's pruning threshold (capped by the rules' smallest alert threshold).
    pub threshold: u64,
    /// The alert rules; their kind is the task's kind.
    pub rules: Rules,
    /// The privacy budget, and whether noise is on.
    pub privacy: PrivacyParams,
    /// The open walk's plan.
    pub search: SearchParams,
    /// The credential limit N per window (outbreak: the padded reports per window).
    pub presentations_per_window: u32,
    /// Search mode.
    pub search_mode: SearchMode,
    /// Venue-code width.
    pub bits: u32,
    /// The collector's venue registry (written as its `[[venues]]`).
    pub venues: Vec<VenueRecord>,
    /// Reports per aggregation job.
    pub job_size: usize,
    /// Collector's background poll (0: only on request).
    pub search_poll_seconds: u64,
}

/// Name of the collector's dashboard token file in the cluster's folder.
pub const DASHBOARD_TOKEN_FILE: &str = "dashboard.token";

/// Name of the collector's registry key file (signs venue payloads) in the cluster's folder.
pub const REGISTRY_KEY_FILE: &str = "registry.key";

/// The roles.
pub const ROLES: [&str; 4] = ["leader", "helper", "collector", "issuer"];

/// The credential master secret shared by the leader, the helper and the issuer.
pub const CREDENTIAL_KEY_FILE: &str = "credential.key";
/// The issuer's key for hashing enrolment ids and diagnosis codes.
pub const ISSUER_HASH_KEY_FILE: &str = "issuer-hash.key";
/// The health authority's bearer token for registering diagnosis codes with the issuer.
pub const ISSUER_TOKEN_FILE: &str = "issuer.token";

/// A prepared folder: configs, keys, ports.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// The folder.
    pub dir: PathBuf,
    /// The task.
    pub task: TaskConfig,
    /// gRPC ports of leader, helper, collector, issuer.
    pub ports: [u16; 4],
    /// Admin ports of leader, helper, collector, issuer.
    pub admin_ports: [u16; 4],
    /// The binary to start.
    pub exe: PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Cluster {
    /// Writes keys, the task (window 0 starts now) and the three configs into `dir`.
    pub fn prepare(dir: &Path, exe: &Path, spec: &ClusterSpec) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut rng = rand::rng();
        let keys: Vec<HpkeKeypair> = (1..=3)
            .map(|id| HpkeKeypair::generate(id, &mut rng))
            .collect();
        let mut task_id = [0u8; 32];
        rng.fill_bytes(&mut task_id);
        let task = TaskConfig {
            id: TaskId(task_id),
            kind: spec.rules.kind(),
            bits: spec.bits,
            start_unix: hotspot_server::now_unix(),
            window_seconds: spec.window_seconds,
            grace_seconds: spec.grace_seconds,
            min_batch_size: 1,
            threshold: spec.threshold,
            search_mode: spec.search_mode,
            presentations_per_window: spec.presentations_per_window,
            leader_keys: vec![keys[0].public()],
            helper_keys: vec![keys[1].public()],
            collector_key: keys[2].public(),
            privacy: spec.privacy.clone(),
            search: spec.search.clone(),
            rules: spec.rules.clone(),
        };
        std::fs::write(dir.join("task.toml"), task.to_toml())?;
        let mut verify = [0u8; 32];
        rng.fill_bytes(&mut verify);
        write_secret(&dir.join("verify.key"), &encode_hex(&verify))?;
        let mut token = [0u8; 24];
        rng.fill_bytes(&mut token);
        write_secret(&dir.join(DASHBOARD_TOKEN_FILE), &encode_hex(&token))?;
        let mut exposure = [0u8; 32];
        rng.fill_bytes(&mut exposure);
        write_secret(&dir.join("exposure.key"), &encode_hex(&exposure))?;
        write_registry_key(&dir.join(REGISTRY_KEY_FILE), &mut rng)?;
        let ports = [free_port()?, free_port()?, free_port()?, free_port()?];
        let admin_ports = [free_port()?, free_port()?, free_port()?, free_port()?];
        write_issuer_files(dir, ports[3], admin_ports[3], &mut rng)?;
        for (i, role) in ROLES[..3].iter().enumerate() {
            write_secret(
                &dir.join(format!("{role}.hpke")),
                &encode_hex(keys[i].secret_bytes().as_ref()),
            )?;
            let mut text = format!(
                "role = \"{role}\"\nlisten = \"127.0.0.1:{}\"\nadmin_listen = \"127.0.0.1:{}\"\n\
                 database = \"{role}.sqlite\"\ntasks = [\"task.toml\"]\n\
                 hpke_key_files = [{{ key_id = {}, path = \"{role}.hpke\" }}]\njob_size = {}\n",
                ports[i],
                admin_ports[i],
                i + 1,
                spec.job_size
            );
            match *role {
                "leader" => {
                    text += &format!(
                        "helper_url = \"http://127.0.0.1:{}\"\nverify_key_file = \"verify.key\"\n",
                        ports[1]
                    )
                }
                "helper" => text += "verify_key_file = \"verify.key\"\n",
                _ => {
                    text += &format!(
                        "leader_url = \"http://127.0.0.1:{}\"\nsearch_poll_seconds = {}\n\
                         dashboard_token_file = \"{DASHBOARD_TOKEN_FILE}\"\nexposure_key_file = \"exposure.key\"\n\
                         registry_key_file = \"{REGISTRY_KEY_FILE}\"\n{}",
                        ports[0],
                        spec.search_poll_seconds,
                        venues_toml(&spec.venues)
                    )
                }
            }
            if i < 2 {
                text += &format!("credential_key_file = \"{CREDENTIAL_KEY_FILE}\"\n");
            }
            std::fs::write(dir.join(format!("{role}.toml")), text)?;
        }
        Ok(Cluster {
            dir: dir.to_path_buf(),
            task,
            ports,
            admin_ports,
            exe: exe.to_path_buf(),
        })
    }

    /// Starts `role` as a process (logs to `<role>.log`) and waits until its port answers.
    pub fn start(&self, role: &str) -> Result<Child> {
        let i = ROLES
            .iter()
            .position(|r| *r == role)
            .context("unknown role")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{role}.log")))?;
        let child = Command::new(&self.exe)
            .args(["serve", "--role", role, "--config"])
            .arg(self.dir.join(format!("{role}.toml")))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        wait_port(self.ports[i])?;
        Ok(child)
    }

    /// The collector's registry key (its public half is what visitor apps trust for posters).
    pub fn registry_key(&self) -> Result<RegistryKey> {
        Ok(RegistryKey::load(&self.dir.join(REGISTRY_KEY_FILE))?)
    }

    /// The public key (hex) of the collector's exposure-list signature.
    pub fn exposure_public_key(&self) -> Result<String> {
        let seed: [u8; 32] =
            decode_hex(std::fs::read_to_string(self.dir.join("exposure.key"))?.trim())
                .and_then(|b| b.try_into().ok())
                .context("exposure.key: expected 64 hex digits")?;
        Ok(RegistryKey::from_secret(&seed).public().to_hex())
    }

    /// The collector's exposure list URL, on its admin port.
    pub fn exposure_list_url(&self) -> String {
        format!("http://127.0.0.1:{}/exposure-list", self.admin_ports[2])
    }

    /// The collector's dashboard, on its admin port.
    pub fn dashboard_url(&self) -> String {
        format!("http://127.0.0.1:{}/dashboard", self.admin_ports[2])
    }

    /// The file holding the collector's dashboard token (a secret: shown to nobody but the
    /// person who logs in).
    pub fn dashboard_token_file(&self) -> PathBuf {
        self.dir.join(DASHBOARD_TOKEN_FILE)
    }

    /// `http://127.0.0.1:<port>` of `role`.
    pub fn url(&self, role: &str) -> String {
        let i = ROLES.iter().position(|r| *r == role).unwrap_or(0);
        format!("http://127.0.0.1:{}", self.ports[i])
    }
}

/// The `[[venues]]` entries of a collector config. Strings are written with Rust's `Debug`
/// quoting, which is a valid TOML basic string for the printable text a registry holds.
fn venues_toml(venues: &[VenueRecord]) -> String {
    venues
        .iter()
        .map(|v| {
            format!(
                "\n[[venues]]\ncode = {}\nname = {:?}\naddress = {:?}\nlat = {:?}\nlon = {:?}\n\
                 category = \"{}\"\ncapacity = {}\ndefault_minutes = {}\n",
                v.code, v.name, v.address, v.lat, v.lon, v.category, v.capacity, v.default_minutes
            )
        })
        .collect()
}

/// A fresh registry key file (a folder prepared again gets a new key).
fn write_registry_key(path: &Path, rng: &mut impl rand::CryptoRng) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("replacing {}", path.display())),
    }
    RegistryKey::generate(rng).save(path)?;
    Ok(())
}

/// The issuer's secrets and config: the credential master secret (shared with leader and
/// helper), its hash key, the health authority's token.
fn write_issuer_files(dir: &Path, port: u16, admin_port: u16, rng: &mut impl Rng) -> Result<()> {
    for file in [CREDENTIAL_KEY_FILE, ISSUER_HASH_KEY_FILE] {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        write_secret(&dir.join(file), &encode_hex(&secret))?;
    }
    let mut token = [0u8; 24];
    rng.fill_bytes(&mut token);
    write_secret(&dir.join(ISSUER_TOKEN_FILE), &encode_hex(&token))?;
    let text = format!(
        "role = \"issuer\"\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\n\
         database = \"issuer.sqlite\"\ncredential_key_file = \"{CREDENTIAL_KEY_FILE}\"\n\
         issuer_hash_key_file = \"{ISSUER_HASH_KEY_FILE}\"\nissuer_token_file = \"{ISSUER_TOKEN_FILE}\"\n"
    );
    std::fs::write(dir.join("issuer.toml"), text)?;
    Ok(())
}

/// Simulated visitors enrolled and holding credentials: how many requests to the issuer run
/// at once.
const ISSUANCE_CONCURRENCY: usize = 8;

impl Cluster {
    /// Rewrites the task (for benches and tests that need other parameters) before the roles
    /// start.
    pub fn rewrite_task(&mut self, change: impl FnOnce(&mut TaskConfig)) -> Result<()> {
        change(&mut self.task);
        std::fs::write(self.dir.join("task.toml"), self.task.to_toml())?;
        Ok(())
    }

    fn secret_file(&self, name: &str) -> Result<String> {
        let text = std::fs::read_to_string(self.dir.join(name))
            .with_context(|| format!("reading {name}"))?;
        Ok(text.trim().to_string())
    }

    /// A 32-byte secret from the hex file `name` in the cluster's directory.
    fn secret32(&self, name: &str) -> Result<[u8; 32]> {
        decode_hex(&self.secret_file(name)?)
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("{name}: expected 64 hex digits"))
    }

    /// The credential master secret (tests derive keys of other days from it).
    pub fn credential_master(&self) -> Result<[u8; 32]> {
        self.secret32(CREDENTIAL_KEY_FILE)
    }

    /// The health authority's bearer token for the issuer.
    pub fn issuer_token(&self) -> Result<String> {
        self.secret_file(ISSUER_TOKEN_FILE)
    }

    /// Provisions enrolment ids in the issuer's database, as `hotspot issuer enrol` does.
    pub fn enrol(&self, ids: &[String]) -> Result<usize> {
        let key = self.secret32(ISSUER_HASH_KEY_FILE)?;
        let store =
            hotspot_server::storage::sqlite::SqliteStore::open(&self.dir.join("issuer.sqlite"))?;
        let hasher = hotspot_server::issuer::IdHasher::new(&key);
        Ok(hotspot_server::issuer::enrol_ids(
            &store,
            &hasher,
            &ids.join("\n"),
        )?)
    }

    /// `n` simulated visitors: each is enrolled under a fresh random id, then obtains today's
    /// crowding credential from the running issuer over gRPC, into a wallet of its own.
    /// `progress` advances once per credential.
    pub async fn wallets(&self, n: usize, progress: Option<ProgressBar>) -> Result<Vec<Wallet>> {
        let ids: Vec<String> = (0..n).map(|_| random_enrolment_id()).collect();
        self.enrol(&ids)?;
        let channel = tonic::transport::Endpoint::from_shared(self.url("issuer"))?
            .connect()
            .await
            .context("connecting to the issuer")?;
        let queue = Arc::new(Mutex::new(ids.into_iter().enumerate().collect::<Vec<_>>()));
        let mut workers = Vec::new();
        for _ in 0..ISSUANCE_CONCURRENCY.min(n) {
            let (queue, progress) = (Arc::clone(&queue), progress.clone());
            let mut issuer = IssuerClient::new(channel.clone());
            workers.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
                let mut done = Vec::new();
                loop {
                    let next = queue.lock().map_err(|_| anyhow!("queue poisoned"))?.pop();
                    let Some((i, id)) = next else {
                        return anyhow::Ok(done);
                    };
                    let mut wallet = Wallet::new();
                    wallet.insert(issuer.obtain_crowding(&id, &mut rng).await?);
                    done.push((i, wallet));
                    if let Some(pb) = &progress {
                        pb.inc(1);
                    }
                }
            }));
        }
        let mut wallets: Vec<Option<Wallet>> = vec![None; n];
        for w in workers {
            for (i, wallet) in w.await?? {
                wallets[i] = Some(wallet);
            }
        }
        wallets
            .into_iter()
            .map(|w| w.context("a visitor got no credential"))
            .collect()
    }
}

/// An enrolment id as an operator might provision it: `device-` and 24 hex digits.
fn random_enrolment_id() -> String {
    let mut raw = [0u8; 12];
    rand::rng().fill_bytes(&mut raw);
    format!("device-{}", encode_hex(&raw))
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Waits up to 20 s for a TCP listener on `port`.
pub fn wait_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on port {port} after 20 s")
}

/// Sends SIGTERM (graceful) and waits; SIGKILL after 10 s.
pub fn stop(mut child: Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
