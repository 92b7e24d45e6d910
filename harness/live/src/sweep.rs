//! `mic sweep`: delete what interrupted runs left behind.
//!
//! Two sources, because either alone can miss something: resource groups tagged `mic-run`
//! whose `DeleteAfter` has passed (or whose run's ledger is stale), found by listing the
//! subscription; and every id listed in a stale ledger file (a run killed between writing
//! the ledger and tagging, or a role assignment outside the run's groups). Resource groups
//! without the `mic-run` tag are never touched. Deleting a group deletes what it holds, so
//! ledger ids inside a deleted group are not deleted one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::arm::{ArmClient, ArmError, delete_api_version, resource_group_of, resource_type};
use crate::ledger::{Entry, LedgerFile};

/// Tag naming the run that created a resource group.
pub const RUN_TAG: &str = "mic-run";
/// Tag naming the scenario.
pub const SCENARIO_TAG: &str = "mic-scenario";
/// Tag naming the environment (one scenario trial).
pub const ENV_TAG: &str = "mic-env";
/// Tag after which the group may be deleted by anyone (RFC 3339).
pub const DELETE_AFTER_TAG: &str = "DeleteAfter";

/// How `mic sweep` behaves.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// List what would be deleted, delete nothing.
    pub dry_run: bool,
    /// Wait until each deletion finished (otherwise accepted deletions count as done).
    pub wait: bool,
    /// Also delete groups and ledgers of runs that look alive (e.g. a cancelled CI job on
    /// another machine whose `DeleteAfter` is still ahead).
    pub all_runs: bool,
    /// "Now" (tests); default the clock.
    pub now: Option<OffsetDateTime>,
}

/// What a sweep did.
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    pub dry_run: bool,
    /// Deleted (or, in a dry run, would delete), with the reason.
    pub deleted: Vec<(String, String)>,
    pub already_gone: Vec<String>,
    /// Kept, with the reason (a live run's groups).
    pub kept: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
    pub ledgers_removed: Vec<PathBuf>,
}

impl SweepReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        for (id, why) in &self.deleted {
            writeln!(f, "{verb} {id} ({why})")?;
        }
        for id in &self.already_gone {
            writeln!(f, "already gone {id}")?;
        }
        for (id, why) in &self.kept {
            writeln!(f, "kept {id} ({why})")?;
        }
        for (id, why) in &self.failed {
            writeln!(f, "FAILED to delete {id}: {why}")?;
        }
        for p in &self.ledgers_removed {
            writeln!(f, "removed ledger {}", p.display())?;
        }
        write!(
            f,
            "sweep: {} {verb}, {} already gone, {} kept, {} failed",
            self.deleted.len(),
            self.already_gone.len(),
            self.kept.len(),
            self.failed.len()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("could not list the subscription's resource groups: {0}")]
    List(ArmError),
    #[error("could not read the ledger directory {path}: {message}")]
    Ledger { path: String, message: String },
    #[error(transparent)]
    Start(#[from] crate::backend::StartError),
}

/// Sweep with the configuration's credentials and ledger directory.
///
/// # Errors
/// The backend cannot start, the groups cannot be listed, the ledger directory is unreadable.
pub async fn sweep(
    config: &crate::LiveConfig,
    options: &SweepOptions,
) -> Result<SweepReport, SweepError> {
    let client = crate::backend::arm_client(config, None)?;
    sweep_with(
        &client,
        &config.subscription_id,
        &config.ledger_dir,
        None,
        options,
    )
    .await
}

/// Sweep through `client`; `current_run` (the caller's own run) is never swept.
///
/// # Errors
/// As [`sweep`].
pub async fn sweep_with(
    client: &ArmClient,
    subscription: &str,
    ledger_dir: &Path,
    current_run: Option<&str>,
    options: &SweepOptions,
) -> Result<SweepReport, SweepError> {
    let now = options.now.unwrap_or_else(OffsetDateTime::now_utc);
    let mut report = SweepReport {
        dry_run: options.dry_run,
        ..SweepReport::default()
    };
    let ledgers = LedgerFile::read_dir(ledger_dir).map_err(|e| SweepError::Ledger {
        path: ledger_dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut stale: Vec<(LedgerFile, String)> = Vec::new();
    for l in ledgers {
        let run = l.run.clone().unwrap_or_default();
        if current_run.is_some_and(|c| c == run) {
            continue;
        }
        match l.stale_reason(now) {
            Some(why) => stale.push((l, why)),
            None if options.all_runs => stale.push((l, "--all-runs".into())),
            None => {}
        }
    }
    let stale_runs: BTreeMap<String, String> = stale
        .iter()
        .filter_map(|(l, why)| {
            Some((
                l.run.clone()?,
                format!("run {} is over: {why}", l.run.as_deref()?),
            ))
        })
        .collect();

    // 1. Tagged resource groups.
    let mut handled: BTreeSet<String> = BTreeSet::new();
    for (id, tags) in list_tagged_groups(client, subscription)
        .await
        .map_err(SweepError::List)?
    {
        let run = tags.get(RUN_TAG).cloned().unwrap_or_default();
        if current_run.is_some_and(|c| c == run) {
            continue;
        }
        let expiry = tags
            .get(DELETE_AFTER_TAG)
            .and_then(|d| OffsetDateTime::parse(d, &Rfc3339).ok());
        let reason = if let Some(why) = stale_runs.get(&run) {
            Some(why.clone())
        } else if let Some(at) = expiry.filter(|at| *at <= now) {
            Some(format!(
                "DeleteAfter {} has passed",
                at.format(&Rfc3339).unwrap_or_default()
            ))
        } else if expiry.is_none() {
            Some("tagged mic-run without a valid DeleteAfter".into())
        } else if options.all_runs {
            Some("--all-runs".into())
        } else {
            None
        };
        match reason {
            Some(why) => {
                handled.insert(id.to_ascii_lowercase());
                delete_one(client, &id, &why, options, &mut report).await;
            }
            None => report
                .kept
                .push((id, format!("run {run} is active until its DeleteAfter"))),
        }
    }

    // 2. Stale ledgers.
    for (ledger, why) in stale {
        let failed_before = report.failed.len();
        delete_entries(
            client,
            &ledger.entries,
            &why,
            options,
            &mut handled,
            &mut report,
        )
        .await;
        if report.failed.len() == failed_before
            && !options.dry_run
            && std::fs::remove_file(&ledger.path).is_ok()
        {
            report.ledgers_removed.push(ledger.path.clone());
        }
    }
    Ok(report)
}

/// Delete a set of ledger entries: their resource groups, then what lives outside them
/// (newest first). `handled` holds lowercase ids already dealt with.
pub(crate) async fn delete_entries(
    client: &ArmClient,
    entries: &[Entry],
    why: &str,
    options: &SweepOptions,
    handled: &mut BTreeSet<String>,
    report: &mut SweepReport,
) {
    let groups: BTreeSet<String> = entries
        .iter()
        .filter(|e| resource_type(&e.id).is_some_and(|(t, _)| t == "resourceGroups"))
        .map(|e| e.id.to_ascii_lowercase())
        .collect();
    for e in entries
        .iter()
        .filter(|e| groups.contains(&e.id.to_ascii_lowercase()))
    {
        if handled.insert(e.id.to_ascii_lowercase()) {
            delete_one(client, &e.id, why, options, report).await;
        }
    }
    for e in entries.iter().rev() {
        let lower = e.id.to_ascii_lowercase();
        if groups.contains(&lower)
            || resource_group_of(&lower)
                .is_some_and(|rg| groups.contains(&rg) || handled.contains(&rg))
        {
            continue;
        }
        if handled.insert(lower) {
            delete_one(client, &e.id, why, options, report).await;
        }
    }
}

async fn delete_one(
    client: &ArmClient,
    id: &str,
    why: &str,
    options: &SweepOptions,
    report: &mut SweepReport,
) {
    let Some(api) = resource_type(id).and_then(|(t, _)| delete_api_version(&t)) else {
        report.kept.push((
            id.to_string(),
            "unknown resource type: delete it by hand".into(),
        ));
        return;
    };
    if options.dry_run {
        report.deleted.push((id.to_string(), why.to_string()));
        return;
    }
    match delete(client, id, api, options.wait).await {
        Ok(true) => report.deleted.push((id.to_string(), why.to_string())),
        Ok(false) => report.already_gone.push(id.to_string()),
        Err(e) => report.failed.push((id.to_string(), e.to_string())),
    }
}

/// DELETE an id; `Ok(false)` when it did not exist.
///
/// # Errors
/// A refused deletion, or a failed operation when waiting.
pub async fn delete(
    client: &ArmClient,
    id: &str,
    api_version: &str,
    wait: bool,
) -> Result<bool, ArmError> {
    let resp = client.request("DELETE", id, api_version, None).await?;
    match resp.status {
        404 => Ok(false),
        204 if resource_type(id).is_some_and(|(t, _)| {
            t.eq_ignore_ascii_case("Microsoft.Authorization/roleAssignments")
        }) =>
        {
            Ok(false)
        }
        s if (200..300).contains(&s) => {
            if wait {
                client
                    .follow("DELETE", &client.url(id, api_version), resp)
                    .await?;
            }
            Ok(true)
        }
        s => Err(ArmError::Status {
            method: "DELETE".into(),
            url: id.to_string(),
            status: s,
            detail: crate::transport::describe_response(&resp),
        }),
    }
}

/// `(id, tags)` of every resource group tagged `mic-run`.
///
/// # Errors
/// Listing failed.
pub async fn list_tagged_groups(
    client: &ArmClient,
    subscription: &str,
) -> Result<Vec<(String, BTreeMap<String, String>)>, ArmError> {
    let mut out = Vec::new();
    let mut next = Some(client.url(
        &format!(
            "/subscriptions/{subscription}/resourcegroups?%24filter=tagName%20eq%20%27{RUN_TAG}%27"
        ),
        "2021-04-01",
    ));
    while let Some(url) = next.take() {
        let resp = client.request("GET", &url, "", None).await?;
        if !resp.is_success() {
            return Err(ArmError::Status {
                method: "GET".into(),
                url: crate::transport::redact_url(&url),
                status: resp.status,
                detail: crate::transport::describe_response(&resp),
            });
        }
        let body = resp.json().unwrap_or(Value::Null);
        for g in body
            .get("value")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = g.get("id").and_then(Value::as_str) else {
                continue;
            };
            let tags: BTreeMap<String, String> = g
                .get("tags")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            if tags.contains_key(RUN_TAG) {
                out.push((id.to_string(), tags));
            }
        }
        next = body
            .get("nextLink")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    Ok(out)
}
