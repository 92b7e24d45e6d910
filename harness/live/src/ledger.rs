//! The ledger: which ARM ids a run is about to create, written *before* each creation.
//!
//! One JSON-lines file per run (`{dir}/{run_id}.jsonl`). The first line describes the run
//! (process id, host, `DeleteAfter`); each `create` line is written and synced before the
//! request that creates the resource is sent, so a run killed at any point leaves a ledger
//! that names everything it may have created. A successful teardown releases its
//! environment's lines; a finished run with nothing left deletes its file. A file whose
//! process is gone, or whose `DeleteAfter` passed, is *stale*: `mic sweep` deletes what it
//! lists. Only ids are written: never a secret.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One line of a ledger file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Line {
    Run {
        run: String,
        pid: u32,
        host: String,
        started: String,
        delete_after: String,
    },
    Create {
        env: String,
        scenario: String,
        id: String,
        at: String,
    },
}

/// A ledger file's content.
#[derive(Debug, Clone, Default)]
pub struct LedgerFile {
    pub path: PathBuf,
    pub run: Option<String>,
    pub pid: Option<u32>,
    pub host: Option<String>,
    pub delete_after: Option<OffsetDateTime>,
    /// (env, scenario, id) in creation order.
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub env: String,
    pub scenario: String,
    pub id: String,
}

impl LedgerFile {
    /// Read a ledger file; a torn last line (a kill mid-write) is skipped.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn read(path: &Path) -> io::Result<Self> {
        let text = fs::read_to_string(path)?;
        let mut out = Self {
            path: path.to_path_buf(),
            ..Self::default()
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Line>(line) {
                Ok(Line::Run {
                    run,
                    pid,
                    host,
                    delete_after,
                    ..
                }) => {
                    out.run = Some(run);
                    out.pid = Some(pid);
                    out.host = Some(host);
                    out.delete_after = OffsetDateTime::parse(&delete_after, &Rfc3339).ok();
                }
                Ok(Line::Create {
                    env, scenario, id, ..
                }) => out.entries.push(Entry { env, scenario, id }),
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// Every ledger file in `dir` (none when the directory does not exist).
    ///
    /// # Errors
    /// The directory exists but cannot be read.
    pub fn read_dir(dir: &Path) -> io::Result<Vec<Self>> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for e in entries {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "jsonl") {
                out.push(Self::read(&path)?);
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Why this ledger's run is over (so its resources may be swept), or `None` while it may
    /// still be running.
    pub fn stale_reason(&self, now: OffsetDateTime) -> Option<String> {
        if let Some(at) = self.delete_after.filter(|at| *at <= now) {
            return Some(format!(
                "its DeleteAfter {} has passed",
                at.format(&Rfc3339).unwrap_or_default()
            ));
        }
        match (self.pid, &self.host) {
            (Some(pid), Some(host)) if *host == hostname() => {
                (!process_alive(pid)).then(|| format!("its process {pid} is gone"))
            }
            (None, _) => Some("it has no run header".into()),
            _ => None,
        }
    }
}

/// The ledger of the running process.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    run_id: String,
    lock: Mutex<()>,
}

impl Ledger {
    /// Create (or continue) `{dir}/{run_id}.jsonl` and write the run header.
    ///
    /// # Errors
    /// The directory or file cannot be written.
    pub fn open(dir: &Path, run_id: &str, ttl: Duration) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(format!("{run_id}.jsonl"));
        let ledger = Self {
            path,
            run_id: run_id.to_string(),
            lock: Mutex::new(()),
        };
        if !ledger.path.exists() {
            let now = OffsetDateTime::now_utc();
            ledger.append(&Line::Run {
                run: run_id.to_string(),
                pid: std::process::id(),
                host: hostname(),
                started: now.format(&Rfc3339).unwrap_or_default(),
                delete_after: delete_after(now, ttl),
            })?;
        }
        Ok(ledger)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    fn append(&self, line: &Line) -> io::Result<()> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut text = serde_json::to_string(line).map_err(io::Error::other)?;
        text.push('\n');
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }

    /// Record an id about to be created (synced to disk before returning).
    ///
    /// # Errors
    /// The ledger cannot be written (the creation must then not proceed).
    pub fn record(&self, env: &str, scenario: &str, id: &str) -> io::Result<()> {
        self.append(&Line::Create {
            env: env.into(),
            scenario: scenario.into(),
            id: id.into(),
            at: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
        })
    }

    /// The entries of one environment.
    ///
    /// # Errors
    /// The ledger cannot be read.
    pub fn entries_of(&self, env: &str) -> io::Result<Vec<Entry>> {
        Ok(self
            .read()?
            .entries
            .into_iter()
            .filter(|e| e.env == env)
            .collect())
    }

    /// The whole file.
    ///
    /// # Errors
    /// The ledger cannot be read.
    pub fn read(&self) -> io::Result<LedgerFile> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        LedgerFile::read(&self.path)
    }

    /// Drop an environment's lines after its resources are confirmed gone.
    ///
    /// # Errors
    /// The ledger cannot be rewritten.
    pub fn release(&self, env: &str) -> io::Result<()> {
        self.rewrite(|l| !matches!(l, Line::Create { env: e, .. } if e == env))
    }

    /// Drop the lines of these ids (sweep of the current run).
    ///
    /// # Errors
    /// The ledger cannot be rewritten.
    pub fn release_ids(&self, ids: &[String]) -> io::Result<()> {
        self.rewrite(|l| !matches!(l, Line::Create { id, .. } if ids.iter().any(|i| i.eq_ignore_ascii_case(id))))
    }

    fn rewrite(&self, keep: impl Fn(&Line) -> bool) -> io::Result<()> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let text = fs::read_to_string(&self.path)?;
        let mut out = String::new();
        for line in text.lines() {
            match serde_json::from_str::<Line>(line) {
                Ok(l) if !keep(&l) => {}
                Ok(_) => {
                    out.push_str(line);
                    out.push('\n');
                }
                Err(_) => {}
            }
        }
        let tmp = self.path.with_extension("jsonl.tmp");
        fs::write(&tmp, out)?;
        fs::rename(&tmp, &self.path)
    }

    /// At the end of a run: delete the file when no entry is left. Returns whether it was
    /// deleted (entries left mean something could not be torn down: `mic sweep` will).
    ///
    /// # Errors
    /// The ledger cannot be read or deleted.
    pub fn finish(&self) -> io::Result<bool> {
        let file = self.read()?;
        if file.entries.is_empty() {
            fs::remove_file(&self.path)?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// `DeleteAfter` value: RFC 3339 UTC, whole seconds.
pub fn delete_after(now: OffsetDateTime, ttl: Duration) -> String {
    let at = (now + ttl).replace_nanosecond(0).unwrap_or(now + ttl);
    at.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether a process runs (Linux `/proc`; elsewhere assumed alive: such ledgers go stale by
/// their `DeleteAfter`, or with `mic sweep --force`).
pub(crate) fn process_alive(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    if pid == std::process::id() {
        return true;
    }
    // A zombie (killed, not yet reaped) is gone for our purposes.
    match fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
