//! The embedded backend: one SQLite file per server, WAL journal, `synchronous = FULL` (a
//! commit is on disk when it returns), versioned migrations and a schema-version check at
//! start.
//!
//! Migrations are numbered; `schema_version` holds the highest one applied. A file written by
//! a newer build (a higher version than [`SCHEMA_VERSION`]) is refused rather than guessed at.

mod dashboard;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use hotspot_core::envelope::{HpkeCiphertext, ReportEnvelope, ReportId};
use hotspot_core::task::{SearchMode, TaskId};
use hotspot_core::venue::VenueCategory;

use super::{
    AlertRow, BatchKey, BatchSummary, FinishedJob, Issuance, IssuanceRefusal, IssuerStore, JobKey,
    LevelAggregates, PutOutcome, ReleaseRecord, ReportVerdict, Store, StoreError, Tag,
    TaggedReport, VenueRecord,
};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE reports (
    task BLOB NOT NULL,
    window INTEGER NOT NULL,
    report_id BLOB NOT NULL,
    public_share BLOB NOT NULL,
    leader_share BLOB NOT NULL,
    helper_share BLOB NOT NULL,
    presentation BLOB NOT NULL,
    PRIMARY KEY (task, report_id)
) WITHOUT ROWID;
CREATE INDEX reports_by_batch ON reports (task, window, report_id);
CREATE TABLE level_params (
    task BLOB NOT NULL, window INTEGER NOT NULL, level INTEGER NOT NULL,
    agg_param BLOB NOT NULL,
    PRIMARY KEY (task, window, level)
);
CREATE TABLE jobs (
    task BLOB NOT NULL, window INTEGER NOT NULL, level INTEGER NOT NULL, job INTEGER NOT NULL,
    request_digest BLOB NOT NULL,
    helper_message BLOB NOT NULL,
    aggregate BLOB NOT NULL,
    PRIMARY KEY (task, window, level, job)
);
CREATE TABLE report_levels (
    task BLOB NOT NULL, window INTEGER NOT NULL, level INTEGER NOT NULL,
    report_id BLOB NOT NULL, job INTEGER NOT NULL, accepted INTEGER NOT NULL,
    PRIMARY KEY (task, window, level, report_id)
) WITHOUT ROWID;
CREATE TABLE rejected (
    task BLOB NOT NULL, window INTEGER NOT NULL, report_id BLOB NOT NULL,
    level INTEGER NOT NULL, reason INTEGER NOT NULL,
    PRIMARY KEY (task, window, report_id)
) WITHOUT ROWID;
CREATE TABLE alerts (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    task BLOB NOT NULL, window INTEGER NOT NULL, venue_code INTEGER NOT NULL,
    count INTEGER NOT NULL, rule TEXT NOT NULL, level TEXT NOT NULL, created INTEGER NOT NULL
);
CREATE TABLE searches (
    task BLOB NOT NULL, window INTEGER NOT NULL, finished INTEGER NOT NULL,
    PRIMARY KEY (task, window)
);
"#,
    r#"
CREATE TABLE presentation_tags (
    task BLOB NOT NULL, window INTEGER NOT NULL, tag BLOB NOT NULL, report_id BLOB NOT NULL,
    PRIMARY KEY (task, window, tag)
) WITHOUT ROWID;
CREATE UNIQUE INDEX presentation_tags_by_report ON presentation_tags (task, window, report_id);
CREATE TABLE enrolments (
    id_hash BLOB PRIMARY KEY, enrolled INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE crowding_issuances (
    id_hash BLOB NOT NULL, day INTEGER NOT NULL,
    request_digest BLOB NOT NULL, response BLOB NOT NULL,
    PRIMARY KEY (id_hash, day)
) WITHOUT ROWID;
CREATE TABLE diagnosis_codes (
    code_hash BLOB PRIMARY KEY, registered INTEGER NOT NULL, expires INTEGER NOT NULL,
    request_digest BLOB, response BLOB
) WITHOUT ROWID;
"#,
    // 3: the collector's venue registry. Codes are stored as the i64 with the same bits.
    r#"
CREATE TABLE venues (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL, address TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
    category INTEGER NOT NULL, capacity INTEGER NOT NULL, default_minutes INTEGER NOT NULL,
    registered INTEGER NOT NULL
);
"#,
    // 4: the collector's webhook outbox (storage/sqlite/dashboard.rs).
    dashboard::MIGRATION,
    // 5: the search's uncertainty per alert and summary per batch; the privacy accountant's
    // record of releases (every role).
    r#"
ALTER TABLE alerts ADD COLUMN stddev REAL NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN mode TEXT NOT NULL DEFAULT 'registry';
ALTER TABLE searches ADD COLUMN noise INTEGER NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN accepted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN alerts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN rho_spent REAL NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN rho_left REAL NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN epsilon_spent REAL NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN epsilon_left REAL NOT NULL DEFAULT 0;
ALTER TABLE searches ADD COLUMN delta REAL NOT NULL DEFAULT 0;
CREATE TABLE releases (
    task BLOB NOT NULL, window INTEGER NOT NULL, level INTEGER NOT NULL,
    rho REAL NOT NULL, accepted INTEGER NOT NULL, checksum BLOB NOT NULL, share BLOB NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (task, window, level)
);
"#,
    // 6: reports move to a rowid table. A report is about 2.8 KB; in the WITHOUT ROWID table
    // of version 1 every row spilled into overflow pages (such tables keep only about a
    // quarter of a page in the tree), placed at random by the report id, so an upload
    // dirtied several pages. Rows are now appended in upload order, one page each, and the
    // report id is unique through an index.
    r#"
CREATE TABLE reports_by_rowid (
    task BLOB NOT NULL,
    window INTEGER NOT NULL,
    report_id BLOB NOT NULL,
    public_share BLOB NOT NULL,
    leader_share BLOB NOT NULL,
    helper_share BLOB NOT NULL,
    presentation BLOB NOT NULL,
    UNIQUE (task, report_id)
);
INSERT INTO reports_by_rowid (task, window, report_id, public_share, leader_share,
    helper_share, presentation)
    SELECT task, window, report_id, public_share, leader_share, helper_share, presentation
    FROM reports ORDER BY task, window, report_id;
DROP TABLE reports;
ALTER TABLE reports_by_rowid RENAME TO reports;
CREATE INDEX reports_by_batch ON reports (task, window, report_id);
"#,
];

/// Page cache per database, KiB. Larger caches cost time at every commit, smaller ones
/// re-read index pages. The commit cost: a b-tree page split renumbers pages through the
/// lock page's number (at 1 GiB) as a temporary, so the cache's highest page number sits far
/// past the end of the file, and at commit SQLite then scans every cached page to drop those
/// past the end (about 0.4 ms per commit at 64 MiB). 16 MiB made no measurable difference to
/// the upload rate (docs/benchmarks.md).
const CACHE_KIB: i64 = 64 * 1024;

/// A SQLite database file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, sets WAL and full sync, checks the
    /// schema version and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        // A page cache that holds a day's report indexes of a city (the default 2 MB made
        // every upload re-read index pages from the file).
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        current_version(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls
        // back), so a poisoned lock is safe to take over.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(db)?;
    let v: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .map_err(db)?;
    Ok(v.unwrap_or(0))
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = current_version(conn)?;
    if !(0..=SCHEMA_VERSION).contains(&found) {
        return Err(StoreError::SchemaVersion {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(sql).map_err(db)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
    }
    Ok(())
}

/// Stored form of a sealed share: key id (4 bytes BE), encapsulated key length (2 bytes BE),
/// the encapsulated key, the payload.
fn encode_ct(ct: &HpkeCiphertext) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + ct.enc.len() + ct.payload.len());
    out.extend_from_slice(&ct.key_id.to_be_bytes());
    out.extend_from_slice(&(ct.enc.len() as u16).to_be_bytes());
    out.extend_from_slice(&ct.enc);
    out.extend_from_slice(&ct.payload);
    out
}

fn decode_ct(bytes: &[u8]) -> Result<HpkeCiphertext, StoreError> {
    let bad = || StoreError::Corrupt("reports");
    let key_id = u32::from_be_bytes(
        bytes
            .get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let enc_len = u16::from_be_bytes(
        bytes
            .get(4..6)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let enc_end = 6 + usize::from(enc_len);
    Ok(HpkeCiphertext {
        key_id,
        enc: bytes.get(6..enc_end).ok_or_else(bad)?.to_vec(),
        payload: bytes.get(enc_end..).ok_or_else(bad)?.to_vec(),
    })
}

fn task_of(bytes: Vec<u8>, table: &'static str) -> Result<TaskId, StoreError> {
    TaskId::from_slice(&bytes).ok_or(StoreError::Corrupt(table))
}

fn id_of(bytes: &[u8], table: &'static str) -> Result<ReportId, StoreError> {
    ReportId::from_slice(bytes).ok_or(StoreError::Corrupt(table))
}

fn w(window: u64) -> i64 {
    // Windows are counted from the task start; i64 covers any window a clock can reach.
    window as i64
}

impl Store for SqliteStore {
    fn put_reports(&self, reports: &[TaggedReport]) -> Result<Vec<PutOutcome>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut out = Vec::with_capacity(reports.len());
        {
            // The tag first: in the common case a report costs the tag and the report insert.
            // A report whose id is known is a duplicate, not a reused tag, either way.
            let mut tag = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO presentation_tags (task, window, tag, report_id) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(db)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO reports (task, window, report_id, public_share, \
                     leader_share, helper_share, presentation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db)?;
            let mut known = tx
                .prepare_cached("SELECT 1 FROM reports WHERE task = ?1 AND report_id = ?2")
                .map_err(db)?;
            let mut untag = tx
                .prepare_cached(
                    "DELETE FROM presentation_tags WHERE task = ?1 AND window = ?2 AND tag = ?3",
                )
                .map_err(db)?;
            for TaggedReport { report: r, tag: t } in reports {
                let (task, id) = (&r.task_id.0[..], &r.report_id.0[..]);
                if tag
                    .execute(params![task, w(r.window), &t[..], id])
                    .map_err(db)?
                    == 0
                {
                    out.push(if known.exists(params![task, id]).map_err(db)? {
                        PutOutcome::Duplicate
                    } else {
                        PutOutcome::TagReused
                    });
                    continue;
                }
                let stored = insert
                    .execute(params![
                        task,
                        w(r.window),
                        id,
                        r.public_share,
                        encode_ct(&r.leader_share),
                        encode_ct(&r.helper_share),
                        r.presentation,
                    ])
                    .map_err(db)?;
                if stored == 0 {
                    // A resent report: the tag just taken goes back.
                    untag
                        .execute(params![task, w(r.window), &t[..]])
                        .map_err(db)?;
                    out.push(PutOutcome::Duplicate);
                    continue;
                }
                out.push(PutOutcome::Stored);
            }
        }
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn report_count(&self, batch: BatchKey) -> Result<u64, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT COUNT(*) FROM reports WHERE task = ?1 AND window = ?2",
            params![&batch.task.0[..], w(batch.window)],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(db)
    }

    fn batches(&self, task: TaskId) -> Result<Vec<(u64, u64)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT window, COUNT(*) FROM reports WHERE task = ?1 GROUP BY window ORDER BY window")
            .map_err(db)?;
        let rows = stmt
            .query_map([&task.0[..]], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn eligible_reports(
        &self,
        batch: BatchKey,
        level: u32,
    ) -> Result<Vec<ReportEnvelope>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare(
                "SELECT r.report_id, r.public_share, r.leader_share, r.helper_share, r.presentation \
                 FROM reports r WHERE r.task = ?1 AND r.window = ?2 AND NOT EXISTS ( \
                   SELECT 1 FROM rejected x WHERE x.task = r.task AND x.window = r.window \
                   AND x.report_id = r.report_id AND x.level < ?3) \
                 ORDER BY r.report_id",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(params![&batch.task.0[..], w(batch.window), level], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, public_share, leader, helper, presentation) = row.map_err(db)?;
            out.push(ReportEnvelope {
                task_id: batch.task,
                window: batch.window,
                report_id: id_of(&id, "reports")?,
                public_share,
                leader_share: decode_ct(&leader)?,
                helper_share: decode_ct(&helper)?,
                presentation,
            });
        }
        Ok(out)
    }

    fn bind_level_param(
        &self,
        batch: BatchKey,
        level: u32,
        agg_param: &[u8],
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let key = params![&batch.task.0[..], w(batch.window), level];
        let stored: Option<Vec<u8>> = tx
            .query_row(
                "SELECT agg_param FROM level_params WHERE task = ?1 AND window = ?2 AND level = ?3",
                key,
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        match stored {
            Some(p) if p != agg_param => return Err(StoreError::Conflict("level parameter")),
            Some(_) => {}
            None => {
                tx.execute(
                    "INSERT INTO level_params (task, window, level, agg_param) VALUES (?1, ?2, ?3, ?4)",
                    params![&batch.task.0[..], w(batch.window), level, agg_param],
                )
                .map_err(db)?;
            }
        }
        let lower = {
            let mut stmt = tx
                .prepare(
                    "SELECT agg_param FROM level_params WHERE task = ?1 AND window = ?2 \
                     AND level < ?3 ORDER BY level",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(key, |r| r.get::<_, Vec<u8>>(0))
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)?
        };
        tx.commit().map_err(db)?;
        Ok(lower)
    }

    fn finished_job(&self, job: JobKey) -> Result<Option<FinishedJob>, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT request_digest, helper_message, aggregate FROM jobs \
             WHERE task = ?1 AND window = ?2 AND level = ?3 AND job = ?4",
            params![
                &job.batch.task.0[..],
                w(job.batch.window),
                job.level,
                job.job as i64
            ],
            |r| {
                Ok(FinishedJob {
                    request_digest: r.get(0)?,
                    helper_message: r.get(1)?,
                    aggregate: r.get(2)?,
                })
            },
        )
        .optional()
        .map_err(db)
    }

    fn report_status(
        &self,
        job: JobKey,
        ids: &[ReportId],
    ) -> Result<(Vec<ReportId>, Vec<ReportId>), StoreError> {
        let conn = self.lock();
        let mut at_level = conn
            .prepare_cached(
                "SELECT job FROM report_levels WHERE task = ?1 AND window = ?2 AND level = ?3 \
                 AND report_id = ?4",
            )
            .map_err(db)?;
        let mut rejected = conn
            .prepare_cached(
                "SELECT 1 FROM rejected WHERE task = ?1 AND window = ?2 AND report_id = ?3 \
                 AND level < ?4",
            )
            .map_err(db)?;
        let (mut replayed, mut out) = (Vec::new(), Vec::new());
        let (task, window) = (&job.batch.task.0[..], w(job.batch.window));
        for id in ids {
            let other: Option<i64> = at_level
                .query_row(params![task, window, job.level, &id.0[..]], |r| r.get(0))
                .optional()
                .map_err(db)?;
            if other.is_some_and(|j| j != job.job as i64) {
                replayed.push(*id);
            }
            let gone = rejected
                .query_row(params![task, window, &id.0[..], job.level], |_| Ok(()))
                .optional()
                .map_err(db)?;
            if gone.is_some() {
                out.push(*id);
            }
        }
        Ok((replayed, out))
    }

    fn commit_job(
        &self,
        job: JobKey,
        finished: &FinishedJob,
        verdicts: &[ReportVerdict],
        new_tags: &[(ReportId, Tag)],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let (task, window) = (&job.batch.task.0[..], w(job.batch.window));
        tx.execute(
            "INSERT INTO jobs (task, window, level, job, request_digest, helper_message, aggregate) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                task,
                window,
                job.level,
                job.job as i64,
                finished.request_digest,
                finished.helper_message,
                finished.aggregate
            ],
        )
        .map_err(db)?;
        {
            let mut level = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO report_levels (task, window, level, report_id, job, accepted) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(db)?;
            let mut reject = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO rejected (task, window, report_id, level, reason) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(db)?;
            for (id, verdict) in verdicts {
                level
                    .execute(params![
                        task,
                        window,
                        job.level,
                        &id.0[..],
                        job.job as i64,
                        verdict.is_none()
                    ])
                    .map_err(db)?;
                if let Some(reason) = verdict {
                    reject
                        .execute(params![task, window, &id.0[..], job.level, reason])
                        .map_err(db)?;
                }
            }
            // The caller checked these tags against the store and its own pending jobs; a
            // clash here means a second writer, and the transaction is refused as a whole.
            let mut tag = tx
                .prepare_cached(
                    "INSERT INTO presentation_tags (task, window, tag, report_id) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .map_err(db)?;
            for (id, t) in new_tags {
                if tag
                    .execute(params![task, window, &t[..], &id.0[..]])
                    .map_err(db)?
                    == 0
                {
                    return Err(StoreError::Conflict("presentation tag"));
                }
            }
        }
        tx.commit().map_err(db)
    }

    fn tagged_reports(&self, batch: BatchKey, ids: &[ReportId]) -> Result<Vec<bool>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT 1 FROM presentation_tags WHERE task = ?1 AND window = ?2 AND report_id = ?3",
            )
            .map_err(db)?;
        let (task, window) = (&batch.task.0[..], w(batch.window));
        ids.iter()
            .map(|id| stmt.exists(params![task, window, &id.0[..]]).map_err(db))
            .collect()
    }

    fn tag_owners(
        &self,
        batch: BatchKey,
        tags: &[Tag],
    ) -> Result<Vec<Option<ReportId>>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT report_id FROM presentation_tags WHERE task = ?1 AND window = ?2 AND tag = ?3",
            )
            .map_err(db)?;
        let (task, window) = (&batch.task.0[..], w(batch.window));
        tags.iter()
            .map(|t| {
                let owner: Option<Vec<u8>> = stmt
                    .query_row(params![task, window, &t[..]], |r| r.get(0))
                    .optional()
                    .map_err(db)?;
                owner.map(|o| id_of(&o, "presentation_tags")).transpose()
            })
            .collect()
    }

    fn level_aggregates(&self, batch: BatchKey, level: u32) -> Result<LevelAggregates, StoreError> {
        let conn = self.lock();
        let key = params![&batch.task.0[..], w(batch.window), level];
        let mut out = LevelAggregates::default();
        let mut stmt = conn
            .prepare("SELECT aggregate FROM jobs WHERE task = ?1 AND window = ?2 AND level = ?3 ORDER BY job")
            .map_err(db)?;
        out.shares = stmt
            .query_map(key, |r| r.get::<_, Vec<u8>>(0))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let mut stmt = conn
            .prepare(
                "SELECT report_id FROM report_levels WHERE task = ?1 AND window = ?2 AND level = ?3 \
                 AND accepted = 1",
            )
            .map_err(db)?;
        let ids = stmt
            .query_map(key, |r| r.get::<_, Vec<u8>>(0))
            .map_err(db)?;
        for id in ids {
            let id = id_of(&id.map_err(db)?, "report_levels")?;
            out.accepted += 1;
            out.checksum.iter_mut().zip(id.0).for_each(|(c, b)| *c ^= b);
        }
        Ok(out)
    }

    fn rejected_count(&self, batch: BatchKey) -> Result<u64, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT COUNT(*) FROM rejected WHERE task = ?1 AND window = ?2",
            params![&batch.task.0[..], w(batch.window)],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(db)
    }

    fn record_release(&self, r: &ReleaseRecord) -> Result<ReleaseRecord, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT OR IGNORE INTO releases (task, window, level, rho, accepted, checksum, share, \
             created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                &r.batch.task.0[..],
                w(r.batch.window),
                r.level,
                r.rho,
                r.accepted as i64,
                r.checksum,
                r.share,
                now_unix()
            ],
        )
        .map_err(db)?;
        let stored =
            select_release(&tx, r.batch, r.level)?.ok_or(StoreError::Corrupt("releases"))?;
        tx.commit().map_err(db)?;
        Ok(stored)
    }

    fn release(&self, batch: BatchKey, level: u32) -> Result<Option<ReleaseRecord>, StoreError> {
        select_release(&self.lock(), batch, level)
    }

    fn release_charges(
        &self,
        task: TaskId,
        windows: std::ops::Range<u64>,
    ) -> Result<Vec<(u64, f64)>, StoreError> {
        let Some(last) = windows
            .end
            .checked_sub(1)
            .filter(|&last| last >= windows.start)
        else {
            return Ok(Vec::new());
        };
        // No stored window exceeds i64::MAX, so clamping the bounds there loses no row.
        let clamp = |window: u64| w(window.min(i64::MAX as u64));
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT window, rho FROM releases WHERE task = ?1 AND window BETWEEN ?2 AND ?3 \
                 ORDER BY window, level",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map(
                params![&task.0[..], clamp(windows.start), clamp(last)],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, f64>(1)?)),
            )
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn record_search(
        &self,
        summary: &BatchSummary,
        alerts: &[AlertRow],
    ) -> Result<Vec<AlertRow>, StoreError> {
        let batch = summary.batch;
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let key = params![&batch.task.0[..], w(batch.window)];
        let done: Option<i64> = tx
            .query_row(
                "SELECT finished FROM searches WHERE task = ?1 AND window = ?2",
                key,
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if done.is_none() {
            let now = now_unix();
            let s = summary;
            tx.execute(
                "INSERT INTO searches (task, window, finished, mode, noise, accepted, rejected, \
                 alerts, rho_spent, rho_left, epsilon_spent, epsilon_left, delta) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    &batch.task.0[..],
                    w(batch.window),
                    now,
                    s.mode.name(),
                    s.noise,
                    s.accepted as i64,
                    s.rejected as i64,
                    alerts.len() as i64,
                    s.rho_spent,
                    s.rho_left,
                    s.epsilon_spent,
                    s.epsilon_left,
                    s.delta
                ],
            )
            .map_err(db)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO alerts (task, window, venue_code, count, rule, level, created, \
                     stddev) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(db)?;
            for a in alerts {
                insert
                    .execute(params![
                        &batch.task.0[..],
                        w(batch.window),
                        a.venue_code as i64,
                        a.count,
                        a.rule,
                        a.level,
                        now,
                        a.stddev
                    ])
                    .map_err(db)?;
            }
        }
        let stored = select_alerts(&tx, "WHERE task = ?1 AND window = ?2 ORDER BY cursor", key)?;
        tx.commit().map_err(db)?;
        Ok(stored)
    }

    fn searched(&self, batch: BatchKey) -> Result<bool, StoreError> {
        let conn = self.lock();
        conn.query_row(
            "SELECT 1 FROM searches WHERE task = ?1 AND window = ?2",
            params![&batch.task.0[..], w(batch.window)],
            |_| Ok(()),
        )
        .optional()
        .map(|x| x.is_some())
        .map_err(db)
    }

    fn search_record(
        &self,
        batch: BatchKey,
    ) -> Result<Option<(BatchSummary, Vec<AlertRow>)>, StoreError> {
        let conn = self.lock();
        let key = params![&batch.task.0[..], w(batch.window)];
        let Some(summary) = select_summaries(&conn, "WHERE task = ?1 AND window = ?2", key)?.pop()
        else {
            return Ok(None);
        };
        let alerts = select_alerts(
            &conn,
            "WHERE task = ?1 AND window = ?2 ORDER BY cursor",
            key,
        )?;
        Ok(Some((summary, alerts)))
    }

    fn batch_summaries(&self) -> Result<Vec<BatchSummary>, StoreError> {
        let conn = self.lock();
        select_summaries(&conn, "ORDER BY finished DESC, window DESC", [])
    }

    fn alerts_after(&self, cursor: u64, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        let conn = self.lock();
        select_alerts(
            &conn,
            "WHERE cursor > ?1 ORDER BY cursor LIMIT ?2",
            params![cursor as i64, limit as i64],
        )
    }

    fn put_venue(&self, v: &VenueRecord) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO venues (code, name, address, lat, lon, category, capacity, \
             default_minutes, registered) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, address = excluded.address, \
             lat = excluded.lat, lon = excluded.lon, category = excluded.category, \
             capacity = excluded.capacity, default_minutes = excluded.default_minutes",
            params![
                v.code as i64,
                v.name,
                v.address,
                v.lat,
                v.lon,
                v.category.code(),
                v.capacity,
                v.default_minutes,
                v.registered_unix as i64
            ],
        )
        .map_err(db)?;
        Ok(())
    }

    fn venues(&self) -> Result<Vec<VenueRecord>, StoreError> {
        let conn = self.lock();
        let mut venues = select_venues(&conn, "", [])?;
        venues.sort_unstable_by_key(|v| v.code);
        Ok(venues)
    }

    fn venue(&self, code: u64) -> Result<Option<VenueRecord>, StoreError> {
        let conn = self.lock();
        Ok(select_venues(&conn, "WHERE code = ?1", [code as i64])?.pop())
    }
}

fn select_venues(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<VenueRecord>, StoreError> {
    let sql = format!(
        "SELECT code, name, address, lat, lon, category, capacity, default_minutes, registered \
         FROM venues {filter}"
    );
    let mut stmt = conn.prepare(&sql).map_err(db)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, u32>(6)?,
                r.get::<_, u32>(7)?,
                r.get::<_, i64>(8)?,
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let (code, name, address, lat, lon, category, capacity, default_minutes, registered) =
            row.map_err(db)?;
        out.push(VenueRecord {
            code: code as u64,
            name,
            address,
            lat,
            lon,
            category: VenueCategory::from_code(category).ok_or(StoreError::Corrupt("venues"))?,
            capacity,
            default_minutes,
            registered_unix: registered as u64,
        });
    }
    Ok(out)
}

impl IssuerStore for SqliteStore {
    fn enrol(&self, id_hashes: &[[u8; 32]], now_unix: i64) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO enrolments (id_hash, enrolled) VALUES (?1, ?2)",
                )
                .map_err(db)?;
            for hash in id_hashes {
                added += insert.execute(params![&hash[..], now_unix]).map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(added)
    }

    fn crowding_issuance(
        &self,
        id_hash: &[u8; 32],
        day: u32,
        request_digest: &[u8; 32],
        response: Option<&[u8]>,
    ) -> Result<Issuance, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        let enrolled = tx
            .prepare_cached("SELECT 1 FROM enrolments WHERE id_hash = ?1")
            .and_then(|mut s| s.exists([&id_hash[..]]))
            .map_err(db)?;
        if !enrolled {
            return Ok(Issuance::Refused(IssuanceRefusal::NotEnrolled));
        }
        let stored: Option<(Vec<u8>, Vec<u8>)> = tx
            .query_row(
                "SELECT request_digest, response FROM crowding_issuances \
                 WHERE id_hash = ?1 AND day = ?2",
                params![&id_hash[..], day],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db)?;
        let outcome = match stored {
            Some((digest, stored)) if digest[..] == request_digest[..] => Issuance::Repeat(stored),
            Some(_) => Issuance::Refused(IssuanceRefusal::AlreadyIssued),
            None => {
                if let Some(response) = response {
                    tx.execute(
                        "INSERT INTO crowding_issuances (id_hash, day, request_digest, response) \
                         VALUES (?1, ?2, ?3, ?4)",
                        params![&id_hash[..], day, &request_digest[..], response],
                    )
                    .map_err(db)?;
                }
                Issuance::Fresh
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn register_code(
        &self,
        code_hash: &[u8; 32],
        now_unix: i64,
        expires_unix: i64,
    ) -> Result<bool, StoreError> {
        let conn = self.lock();
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO diagnosis_codes (code_hash, registered, expires) \
                 VALUES (?1, ?2, ?3)",
                params![&code_hash[..], now_unix, expires_unix],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn outbreak_issuance(
        &self,
        code_hash: &[u8; 32],
        now_unix: i64,
        request_digest: &[u8; 32],
        response: Option<&[u8]>,
    ) -> Result<Issuance, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        type Row = (i64, Option<Vec<u8>>, Option<Vec<u8>>);
        let row: Option<Row> = tx
            .query_row(
                "SELECT expires, request_digest, response FROM diagnosis_codes WHERE code_hash = ?1",
                [&code_hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(db)?;
        let outcome = match row {
            None => Issuance::Refused(IssuanceRefusal::UnknownCode),
            Some((_, Some(digest), Some(stored))) if digest[..] == request_digest[..] => {
                Issuance::Repeat(stored)
            }
            Some((_, Some(_), _)) => Issuance::Refused(IssuanceRefusal::Used),
            Some((expires, None, _)) if now_unix >= expires => {
                Issuance::Refused(IssuanceRefusal::Expired)
            }
            Some((_, None, _)) => {
                if let Some(response) = response {
                    tx.execute(
                        "UPDATE diagnosis_codes SET request_digest = ?2, response = ?3 \
                         WHERE code_hash = ?1 AND request_digest IS NULL",
                        params![&code_hash[..], &request_digest[..], response],
                    )
                    .map_err(db)?;
                }
                Issuance::Fresh
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn prune_issuer(&self, before_day: u32, before_unix: i64) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db)?;
        tx.execute(
            "DELETE FROM crowding_issuances WHERE day < ?1",
            [before_day],
        )
        .map_err(db)?;
        tx.execute(
            "DELETE FROM diagnosis_codes WHERE expires < ?1",
            [before_unix],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }
}

fn select_alerts(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<AlertRow>, StoreError> {
    let sql = format!(
        "SELECT cursor, task, window, venue_code, count, rule, level, created, stddev \
         FROM alerts {filter}"
    );
    let mut stmt = conn.prepare(&sql).map_err(db)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, f64>(8)?,
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let (cursor, task, window, venue, count, rule, level, created, stddev) = row.map_err(db)?;
        out.push(AlertRow {
            cursor: cursor as u64,
            batch: BatchKey {
                task: task_of(task, "alerts")?,
                window: window as u64,
            },
            venue_code: venue as u64,
            count,
            stddev,
            rule,
            level,
            created_unix: created,
        });
    }
    Ok(out)
}

fn select_summaries(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<BatchSummary>, StoreError> {
    let sql = format!(
        "SELECT task, window, finished, mode, noise, accepted, rejected, alerts, rho_spent, \
         rho_left, epsilon_spent, epsilon_left, delta FROM searches {filter}"
    );
    let mut stmt = conn.prepare(&sql).map_err(db)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                (
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, bool>(4)?,
                ),
                (
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ),
                (
                    r.get::<_, f64>(8)?,
                    r.get::<_, f64>(9)?,
                    r.get::<_, f64>(10)?,
                    r.get::<_, f64>(11)?,
                    r.get::<_, f64>(12)?,
                ),
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let ((task, window, finished, mode, noise), (accepted, rejected, alerts), budget) =
            row.map_err(db)?;
        let (rho_spent, rho_left, epsilon_spent, epsilon_left, delta) = budget;
        let mode = SearchMode::parse(&mode).ok_or(StoreError::Corrupt("searches"))?;
        out.push(BatchSummary {
            batch: BatchKey {
                task: task_of(task, "searches")?,
                window: window as u64,
            },
            mode,
            noise,
            accepted: accepted as u64,
            rejected: rejected as u64,
            alerts: alerts as u64,
            rho_spent,
            rho_left,
            epsilon_spent,
            epsilon_left,
            delta,
            finished_unix: finished,
        });
    }
    Ok(out)
}

fn select_release(
    conn: &Connection,
    batch: BatchKey,
    level: u32,
) -> Result<Option<ReleaseRecord>, StoreError> {
    conn.query_row(
        "SELECT rho, accepted, checksum, share FROM releases \
         WHERE task = ?1 AND window = ?2 AND level = ?3",
        params![&batch.task.0[..], w(batch.window), level],
        |r| {
            Ok(ReleaseRecord {
                batch,
                level,
                rho: r.get(0)?,
                accepted: r.get::<_, i64>(1)? as u64,
                checksum: r.get(2)?,
                share: r.get(3)?,
            })
        },
    )
    .optional()
    .map_err(db)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report(id: u8, window: u64) -> ReportEnvelope {
        let ct = HpkeCiphertext {
            key_id: 1,
            enc: vec![9; 32],
            payload: vec![id; 20],
        };
        ReportEnvelope {
            task_id: TaskId([1; 32]),
            window,
            report_id: ReportId([id; 16]),
            public_share: vec![id; 10],
            leader_share: ct.clone(),
            helper_share: ct,
            presentation: vec![],
        }
    }

    /// A report tagged with its id byte (distinct reports, distinct tags).
    fn tagged(id: u8, window: u64) -> TaggedReport {
        TaggedReport {
            report: report(id, window),
            tag: [id; 32],
        }
    }

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hotspot-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("db.sqlite")
    }

    #[test]
    fn duplicate_report_is_stored_once() {
        let store = SqliteStore::open(&temp_db("dup")).unwrap();
        let out = store
            .put_reports(&[tagged(1, 0), tagged(1, 0), tagged(2, 0)])
            .unwrap();
        assert_eq!(
            out,
            vec![
                PutOutcome::Stored,
                PutOutcome::Duplicate,
                PutOutcome::Stored
            ]
        );
        let batch = BatchKey {
            task: TaskId([1; 32]),
            window: 0,
        };
        assert_eq!(store.report_count(batch).unwrap(), 2);
        assert_eq!(store.eligible_reports(batch, 0).unwrap()[0], report(1, 0));
    }

    #[test]
    fn reused_tag_stores_nothing_but_a_resent_report_is_a_duplicate() {
        let store = SqliteStore::open(&temp_db("tags")).unwrap();
        let batch = |window| BatchKey {
            task: TaskId([1; 32]),
            window,
        };
        store.put_reports(&[tagged(1, 0)]).unwrap();
        let mut clash = tagged(2, 0);
        clash.tag = [1; 32];
        // Same tag in another window is another context: fine.
        let mut elsewhere = tagged(3, 1);
        elsewhere.tag = [1; 32];
        let out = store
            .put_reports(&[tagged(1, 0), clash.clone(), elsewhere])
            .unwrap();
        assert_eq!(
            out,
            vec![
                PutOutcome::Duplicate,
                PutOutcome::TagReused,
                PutOutcome::Stored
            ]
        );
        assert_eq!(store.report_count(batch(0)).unwrap(), 1);
        // Two reports with one tag in the same group: the second is refused.
        let (mut a, mut b) = (tagged(4, 0), tagged(5, 0));
        (a.tag, b.tag) = ([9; 32], [9; 32]);
        assert_eq!(
            store.put_reports(&[a, b]).unwrap(),
            vec![PutOutcome::Stored, PutOutcome::TagReused]
        );
        assert_eq!(
            store.tag_owners(batch(0), &[[1; 32], [2; 32]]).unwrap(),
            vec![Some(ReportId([1; 16])), None]
        );
        assert_eq!(
            store
                .tagged_reports(batch(0), &[ReportId([1; 16]), ReportId([2; 16])])
                .unwrap(),
            vec![true, false]
        );
    }

    #[test]
    fn job_records_new_tags_and_refuses_a_clash() {
        let store = SqliteStore::open(&temp_db("jobtags")).unwrap();
        let batch = BatchKey {
            task: TaskId([1; 32]),
            window: 0,
        };
        let job = |n| JobKey {
            batch,
            level: 0,
            job: n,
        };
        let finished = FinishedJob {
            request_digest: vec![1],
            helper_message: vec![],
            aggregate: vec![7],
        };
        let ids = [ReportId([1; 16]), ReportId([2; 16])];
        store
            .commit_job(job(0), &finished, &[(ids[0], None)], &[(ids[0], [5; 32])])
            .unwrap();
        assert_eq!(
            store.tag_owners(batch, &[[5; 32]]).unwrap(),
            vec![Some(ids[0])]
        );
        let err = store
            .commit_job(job(1), &finished, &[(ids[1], None)], &[(ids[1], [5; 32])])
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert!(store.finished_job(job(1)).unwrap().is_none());
    }

    #[test]
    fn crowding_issuance_is_once_per_enrolment_and_day_and_repeatable() {
        let store = SqliteStore::open(&temp_db("issue")).unwrap();
        let (id, other) = ([1u8; 32], [2u8; 32]);
        assert_eq!(store.enrol(&[id, id], 0).unwrap(), 1);
        assert_eq!(
            store.crowding_issuance(&other, 5, &[0; 32], None).unwrap(),
            Issuance::Refused(IssuanceRefusal::NotEnrolled)
        );
        // A pre-check records nothing; the answer with a response does.
        assert_eq!(
            store.crowding_issuance(&id, 5, &[7; 32], None).unwrap(),
            Issuance::Fresh
        );
        assert_eq!(
            store
                .crowding_issuance(&id, 5, &[7; 32], Some(b"resp"))
                .unwrap(),
            Issuance::Fresh
        );
        assert_eq!(
            store.crowding_issuance(&id, 5, &[7; 32], None).unwrap(),
            Issuance::Repeat(b"resp".to_vec())
        );
        assert_eq!(
            store
                .crowding_issuance(&id, 5, &[8; 32], Some(b"other"))
                .unwrap(),
            Issuance::Refused(IssuanceRefusal::AlreadyIssued)
        );
        assert_eq!(
            store.crowding_issuance(&id, 6, &[8; 32], None).unwrap(),
            Issuance::Fresh
        );
        store.prune_issuer(6, 0).unwrap();
        assert_eq!(
            store.crowding_issuance(&id, 5, &[8; 32], None).unwrap(),
            Issuance::Fresh
        );
    }

    #[test]
    fn diagnosis_code_is_single_use_and_expires() {
        let store = SqliteStore::open(&temp_db("codes")).unwrap();
        let (code, late) = ([1u8; 32], [2u8; 32]);
        assert!(store.register_code(&code, 0, 100).unwrap());
        assert!(!store.register_code(&code, 0, 500).unwrap());
        assert!(store.register_code(&late, 0, 100).unwrap());
        assert_eq!(
            store
                .outbreak_issuance(&[3; 32], 10, &[0; 32], None)
                .unwrap(),
            Issuance::Refused(IssuanceRefusal::UnknownCode)
        );
        assert_eq!(
            store.outbreak_issuance(&late, 100, &[0; 32], None).unwrap(),
            Issuance::Refused(IssuanceRefusal::Expired)
        );
        assert_eq!(
            store
                .outbreak_issuance(&code, 10, &[7; 32], Some(b"resp"))
                .unwrap(),
            Issuance::Fresh
        );
        assert_eq!(
            store.outbreak_issuance(&code, 20, &[7; 32], None).unwrap(),
            Issuance::Repeat(b"resp".to_vec())
        );
        assert_eq!(
            store
                .outbreak_issuance(&code, 20, &[8; 32], Some(b"x"))
                .unwrap(),
            Issuance::Refused(IssuanceRefusal::Used)
        );
    }

    #[test]
    fn newer_schema_version_is_refused() {
        let path = temp_db("schema");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute("INSERT INTO schema_version (version) VALUES (99)", [])
            .unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaVersion { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn rejected_report_leaves_later_levels() {
        let store = SqliteStore::open(&temp_db("reject")).unwrap();
        store.put_reports(&[tagged(1, 0), tagged(2, 0)]).unwrap();
        let batch = BatchKey {
            task: TaskId([1; 32]),
            window: 0,
        };
        let job = JobKey {
            batch,
            level: 3,
            job: 0,
        };
        let finished = FinishedJob {
            request_digest: vec![1],
            helper_message: vec![],
            aggregate: vec![7],
        };
        store
            .commit_job(
                job,
                &finished,
                &[(ReportId([1; 16]), Some(3)), (ReportId([2; 16]), None)],
                &[],
            )
            .unwrap();
        assert_eq!(store.eligible_reports(batch, 3).unwrap().len(), 2);
        assert_eq!(store.eligible_reports(batch, 4).unwrap().len(), 1);
        let agg = store.level_aggregates(batch, 3).unwrap();
        assert_eq!((agg.accepted, agg.checksum), (1, [2; 16]));
        let other = JobKey { job: 1, ..job };
        let (replayed, gone) = store.report_status(other, &[ReportId([2; 16])]).unwrap();
        assert_eq!(replayed, vec![ReportId([2; 16])]);
        assert!(gone.is_empty());
    }

    fn venue(code: u64, name: &str, registered_unix: u64) -> VenueRecord {
        VenueRecord {
            code,
            name: name.into(),
            address: "1 Main St".into(),
            lat: 48.5,
            lon: -2.25,
            category: VenueCategory::Restaurant,
            capacity: 40,
            default_minutes: 90,
            registered_unix,
        }
    }

    #[test]
    fn venues_are_upserted_and_keep_their_first_registration() {
        let path = temp_db("venues");
        let store = SqliteStore::open(&path).unwrap();
        // A 64-bit code above i64::MAX survives the round trip and sorts as unsigned.
        let big = u64::MAX - 5;
        store.put_venue(&venue(big, "Late", 100)).unwrap();
        store.put_venue(&venue(7, "Nord", 100)).unwrap();
        let mut renamed = venue(7, "Nord & Sud", 200);
        renamed.category = VenueCategory::Bar;
        renamed.capacity = 55;
        store.put_venue(&renamed).unwrap();
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        let all = store.venues().unwrap();
        assert_eq!(all.iter().map(|v| v.code).collect::<Vec<_>>(), vec![7, big]);
        let nord = store.venue(7).unwrap().unwrap();
        assert_eq!(
            nord,
            VenueRecord {
                registered_unix: 100,
                ..renamed
            }
        );
        assert_eq!(store.venue(big).unwrap().unwrap().name, "Late");
        assert_eq!(store.venue(8).unwrap(), None);
    }

    #[test]
    fn a_venue_row_with_an_unknown_category_is_corrupt() {
        let path = temp_db("venues-corrupt");
        let store = SqliteStore::open(&path).unwrap();
        store.put_venue(&venue(9, "Nord", 1)).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE venues SET category = 99", []).unwrap();
        assert!(matches!(store.venues(), Err(StoreError::Corrupt("venues"))));
        assert!(matches!(store.venue(9), Err(StoreError::Corrupt("venues"))));
    }

    #[test]
    fn a_version_1_file_is_migrated() {
        let path = temp_db("migrate");
        {
            let mut conn = Connection::open(&path).unwrap();
            current_version(&conn).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[0]).unwrap();
            tx.execute("INSERT INTO schema_version (version) VALUES (1)", [])
                .unwrap();
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store.put_venue(&venue(3, "Nord", 1)).unwrap();
    }

    #[test]
    fn version_5_reports_survive_the_move_to_a_rowid_table() {
        let path = temp_db("migrate-6");
        {
            let mut conn = Connection::open(&path).unwrap();
            current_version(&conn).unwrap();
            let tx = conn.transaction().unwrap();
            for (i, sql) in MIGRATIONS[..5].iter().enumerate() {
                tx.execute_batch(sql).unwrap();
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [i as i64 + 1],
                )
                .unwrap();
            }
            for id in [3u8, 1, 2] {
                let r = report(id, 0);
                tx.execute(
                    "INSERT INTO reports (task, window, report_id, public_share, leader_share, \
                     helper_share, presentation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        &r.task_id.0[..],
                        0i64,
                        &r.report_id.0[..],
                        r.public_share,
                        encode_ct(&r.leader_share),
                        encode_ct(&r.helper_share),
                        r.presentation,
                    ],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let batch = BatchKey {
            task: TaskId([1; 32]),
            window: 0,
        };
        let kept = store.eligible_reports(batch, 0).unwrap();
        assert_eq!(kept, vec![report(1, 0), report(2, 0), report(3, 0)]);
        // The report id stays unique: a resent report is still a duplicate.
        assert_eq!(
            store.put_reports(&[tagged(2, 0), tagged(4, 0)]).unwrap(),
            vec![PutOutcome::Duplicate, PutOutcome::Stored]
        );
        assert_eq!(store.report_count(batch).unwrap(), 4);
    }

    #[test]
    fn alert_log_keeps_first_search_and_resumes_after_cursor() {
        let store = SqliteStore::open(&temp_db("alerts")).unwrap();
        let batch = BatchKey {
            task: TaskId([1; 32]),
            window: 0,
        };
        let alert = |venue| AlertRow {
            cursor: 0,
            batch,
            venue_code: venue,
            count: 9,
            stddev: 5.5,
            rule: "crowding".into(),
            level: "crowding".into(),
            created_unix: 0,
        };
        let first = store
            .record_search(&summary(batch), &[alert(5), alert(6)])
            .unwrap();
        let again = store.record_search(&summary(batch), &[alert(7)]).unwrap();
        assert_eq!(first, again);
        assert_eq!(first[1].stddev, 5.5);
        let after = store.alerts_after(first[0].cursor, 10).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].venue_code, 6);
    }

    fn summary(batch: BatchKey) -> BatchSummary {
        BatchSummary {
            batch,
            mode: SearchMode::Open,
            noise: true,
            accepted: 40,
            rejected: 2,
            alerts: 0,
            rho_spent: 0.015,
            rho_left: 0.3,
            epsilon_spent: 1.0,
            epsilon_left: 4.4,
            delta: 1e-9,
            finished_unix: 0,
        }
    }

    #[test]
    fn a_search_keeps_its_first_summary() {
        let store = SqliteStore::open(&temp_db("summary")).unwrap();
        let batch = |window| BatchKey {
            task: TaskId([1; 32]),
            window,
        };
        assert_eq!(store.search_record(batch(3)).unwrap(), None);
        store.record_search(&summary(batch(3)), &[]).unwrap();
        let later = BatchSummary {
            accepted: 99,
            ..summary(batch(3))
        };
        store.record_search(&later, &[]).unwrap();
        store.record_search(&summary(batch(4)), &[]).unwrap();
        let (stored, alerts) = store.search_record(batch(3)).unwrap().unwrap();
        assert!(alerts.is_empty());
        assert_eq!(
            stored,
            BatchSummary {
                finished_unix: stored.finished_unix,
                ..summary(batch(3))
            }
        );
        assert!(stored.finished_unix > 0);
        let all = store.batch_summaries().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].batch.window, 4);
        assert!(store.searched(batch(4)).unwrap());
    }

    #[test]
    fn a_release_is_recorded_once_and_charged() {
        let store = SqliteStore::open(&temp_db("releases")).unwrap();
        let batch = BatchKey {
            task: TaskId([1; 32]),
            window: 5,
        };
        let release = ReleaseRecord {
            batch,
            level: 7,
            rho: 0.01,
            accepted: 3,
            checksum: vec![1; 16],
            share: vec![9; 24],
        };
        assert_eq!(store.record_release(&release).unwrap(), release);
        let other = ReleaseRecord {
            rho: 0.02,
            share: vec![8; 24],
            ..release.clone()
        };
        assert_eq!(store.record_release(&other).unwrap(), release);
        store
            .record_release(&ReleaseRecord {
                level: 15,
                ..release.clone()
            })
            .unwrap();
        assert_eq!(store.release(batch, 7).unwrap(), Some(release));
        assert_eq!(store.release(batch, 8).unwrap(), None);
        assert_eq!(
            store.release_charges(TaskId([1; 32]), 0..24).unwrap(),
            vec![(5, 0.01), (5, 0.01)]
        );
        assert!(
            store
                .release_charges(TaskId([2; 32]), 0..24)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn release_charges_are_read_for_the_windows_asked() {
        let store = SqliteStore::open(&temp_db("charges-by-day")).unwrap();
        let task = TaskId([1; 32]);
        for window in [0, 23, 24, 47, 48, u64::MAX >> 1] {
            store
                .record_release(&ReleaseRecord {
                    batch: BatchKey { task, window },
                    level: 0,
                    rho: 0.01,
                    accepted: 1,
                    checksum: vec![0; 16],
                    share: vec![0; 8],
                })
                .unwrap();
        }
        let windows = |range| -> Vec<u64> {
            let charges = store.release_charges(task, range).unwrap();
            charges.into_iter().map(|(w, _)| w).collect()
        };
        assert_eq!(windows(0..24), [0, 23]);
        assert_eq!(windows(24..48), [24, 47]);
        assert_eq!(windows(25..47), Vec::<u64>::new());
        assert_eq!(windows(5..5), Vec::<u64>::new());
        // The highest storable window is found by a range that runs past it.
        assert_eq!(windows(48..u64::MAX), [48, u64::MAX >> 1]);
    }
}
