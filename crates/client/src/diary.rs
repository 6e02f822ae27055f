//! The visitor's local check-in diary: the only place a person's visit history exists.
//!
//! DESIGN.md section 3, step 2: a check-in is (venue, arrival, departure or the venue's
//! default duration). The diary keeps check-ins for [`RETENTION_DAYS`] days after departure
//! and forgets older ones whenever it is opened or written. It also holds the upload outbox
//! (reports prepared with their report ids but not yet acknowledged), so a retry after a crash
//! or a lost connection resends the same ids and the leader counts each report once.
//!
//! Storage: one versioned JSON file that this library owns. Every change is written to a
//! temporary file beside it, flushed to disk (`fsync`), renamed over the old file, and the
//! directory is flushed too, so a crash leaves either the old or the new diary, never a torn
//! one. A file with an unknown version is refused, never overwritten.
//!
//! Known limit: one process at a time. A phone app has one; the CLI is run by one user. There
//! is no file lock yet (documented in docs/client.md).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::scan::ScannedVenue;
use crate::upload::PreparedReport;
use crate::{DAY_SECS, UnixSeconds};

/// Days a check-in is kept after its departure (the incubation window health authorities use).
pub const RETENTION_DAYS: u64 = 14;
/// The file format version this build reads and writes.
pub const DIARY_VERSION: u32 = 1;
/// Longest stay accepted, in seconds (a day; longer stays are separate check-ins).
pub const MAX_STAY_SECS: u64 = DAY_SECS;

/// One check-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckIn {
    /// Local id, unique within this diary.
    pub id: u64,
    /// The venue as scanned.
    pub venue: ScannedVenue,
    /// Arrival (Unix seconds).
    pub arrival: UnixSeconds,
    /// Departure (Unix seconds), after arrival.
    pub departure: UnixSeconds,
    /// Whether the crowding report for this check-in was prepared.
    pub crowding_reported: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct DiaryFile {
    version: u32,
    next_id: u64,
    checkins: Vec<CheckIn>,
    outbox: Vec<PreparedReport>,
    /// Version of the newest exposure list verified (0: none); older lists are refused.
    #[serde(default)]
    exposure_version: u64,
}

/// What can go wrong with the diary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiaryError {
    /// Reading or writing the file failed.
    #[error("diary {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a diary this build understands; it is left untouched.
    #[error("diary {path} is unreadable: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A check-in's times are impossible.
    #[error("invalid check-in: {0}")]
    InvalidStay(&'static str),
    /// No check-in has this id.
    #[error("no check-in with id {0}")]
    NoSuchCheckIn(u64),
}

/// The diary, loaded; every mutation is persisted before it returns.
#[derive(Debug)]
pub struct Diary {
    path: PathBuf,
    file: DiaryFile,
}

impl Diary {
    /// Opens the diary at `path`, creating an empty one if none exists, and forgets check-ins
    /// older than the retention period at `now`.
    pub fn open(path: &Path, now: UnixSeconds) -> Result<Self, DiaryError> {
        let file = match fs::read(path) {
            Ok(bytes) => parse(path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DiaryFile {
                version: DIARY_VERSION,
                next_id: 1,
                ..DiaryFile::default()
            },
            Err(source) => return Err(io_error(path, source)),
        };
        let mut diary = Self {
            path: path.to_path_buf(),
            file,
        };
        if diary.purge(now) > 0 || !path.exists() {
            diary.save()?;
        }
        Ok(diary)
    }

    /// The check-ins, oldest first.
    pub fn checkins(&self) -> &[CheckIn] {
        &self.file.checkins
    }

    /// Records a check-in; `departure` defaults to arrival plus the venue's default duration.
    pub fn check_in(
        &mut self,
        venue: ScannedVenue,
        arrival: UnixSeconds,
        departure: Option<UnixSeconds>,
    ) -> Result<u64, DiaryError> {
        let departure = departure.unwrap_or(arrival + u64::from(venue.default_minutes.max(1)) * 60);
        check_stay(arrival, departure)?;
        let id = self.file.next_id;
        self.file.next_id += 1;
        self.file.checkins.push(CheckIn {
            id,
            venue,
            arrival,
            departure,
            crowding_reported: false,
        });
        self.file.checkins.sort_by_key(|c| (c.arrival, c.id));
        self.save()?;
        Ok(id)
    }

    /// Sets the departure of check-in `id` (the visitor tapped "check out").
    pub fn check_out(&mut self, id: u64, departure: UnixSeconds) -> Result<(), DiaryError> {
        let checkin = self.find(id)?;
        check_stay(checkin.arrival, departure)?;
        checkin.departure = departure;
        self.save()
    }

    /// Marks the crowding report of check-in `id` as prepared.
    pub fn mark_crowding_reported(&mut self, id: u64) -> Result<(), DiaryError> {
        self.find(id)?.crowding_reported = true;
        self.save()
    }

    /// Forgets check-ins that left more than [`RETENTION_DAYS`] days before `now`; returns how
    /// many. The caller persists (every public mutation does).
    fn purge(&mut self, now: UnixSeconds) -> usize {
        let horizon = now.saturating_sub(RETENTION_DAYS * DAY_SECS);
        let before = self.file.checkins.len();
        self.file.checkins.retain(|c| c.departure >= horizon);
        before - self.file.checkins.len()
    }

    /// Forgets old check-ins now and persists.
    pub fn expire(&mut self, now: UnixSeconds) -> Result<usize, DiaryError> {
        let purged = self.purge(now);
        if purged > 0 {
            self.save()?;
        }
        Ok(purged)
    }

    /// Reports prepared and not yet acknowledged, in upload order.
    pub fn outbox(&self) -> &[PreparedReport] {
        &self.file.outbox
    }

    /// Appends prepared reports to the outbox, durably, before any of them is sent.
    pub fn enqueue(
        &mut self,
        reports: impl IntoIterator<Item = PreparedReport>,
    ) -> Result<(), DiaryError> {
        self.file.outbox.extend(reports);
        self.save()
    }

    /// Removes the reports with these ids from the outbox (acknowledged or given up).
    pub fn remove_from_outbox(&mut self, ids: &[[u8; 16]]) -> Result<(), DiaryError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.file.outbox.retain(|r| !ids.contains(&r.report_id));
        self.save()
    }

    /// The version of the newest exposure list this diary has accepted (0: none yet).
    pub fn exposure_version(&self) -> u64 {
        self.file.exposure_version
    }

    /// Records that the exposure list `version` was verified and matched; it never goes down.
    pub fn set_exposure_version(&mut self, version: u64) -> Result<(), DiaryError> {
        if version > self.file.exposure_version {
            self.file.exposure_version = version;
            self.save()?;
        }
        Ok(())
    }

    fn find(&mut self, id: u64) -> Result<&mut CheckIn, DiaryError> {
        self.file
            .checkins
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or(DiaryError::NoSuchCheckIn(id))
    }

    /// Writes the file atomically: temporary file, fsync, rename, fsync of the directory.
    fn save(&self) -> Result<(), DiaryError> {
        let io = |source| io_error(&self.path, source);
        let bytes = serde_json::to_vec_pretty(&self.file).map_err(|e| DiaryError::Corrupt {
            path: display(&self.path),
            reason: e.to_string(),
        })?;
        let tmp = self.path.with_extension("tmp");
        let mut file = fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<DiaryFile, DiaryError> {
    let corrupt = |reason: String| DiaryError::Corrupt {
        path: display(path),
        reason,
    };
    let file: DiaryFile = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.version != DIARY_VERSION {
        return Err(corrupt(format!("unknown version {}", file.version)));
    }
    Ok(file)
}

fn check_stay(arrival: UnixSeconds, departure: UnixSeconds) -> Result<(), DiaryError> {
    if departure <= arrival {
        return Err(DiaryError::InvalidStay("departure must be after arrival"));
    }
    if departure - arrival > MAX_STAY_SECS {
        return Err(DiaryError::InvalidStay("a stay lasts at most 24 hours"));
    }
    Ok(())
}

fn io_error(path: &Path, source: std::io::Error) -> DiaryError {
    DiaryError::Io {
        path: display(path),
        source,
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
pub(crate) mod tests;
