//! mic-live: the live Azure backend for mic.
//!
//! Same driver, same requests as the fake backend; this crate supplies what differs on
//! Azure: configuration and deployer credentials from the environment, an ARM transport
//! that rides out throttling and transient failures, in-VM execution through Run Command
//! (or locally on the VM), leak control (tags, a ledger written before every creation,
//! teardown on signals and panics, `mic sweep`), a dry-run plan, cost and time reports,
//! progress, and sharding.
//!
//! # API for the CLI
//!
//! ```ignore
//! use mic_live::{LiveBackend, LiveConfig, LiveOptions, guard, plan, progress::Progress, report, shard::Shard, sweep};
//!
//! // Configuration: every missing/invalid variable at once (exit 2 with `{err}`).
//! let config = LiveConfig::from_env();
//!
//! // `mic run --backend live --dry-run`: prints even when the configuration is incomplete.
//! print!("{}", plan::render(&scenarios, config.as_ref()));
//!
//! // `--shard 2/4` (also usable with the fake backend):
//! let shard: Shard = "2/4".parse()?;
//! let selected = shard.select(scenarios, |s| s.id.value.as_str());
//!
//! // `mic run --backend live`:
//! let config = config?;
//! let progress = Progress::auto(work.len() as u64);      // bars on a TTY, lines in CI
//! let backend = LiveBackend::new(config, LiveOptions { progress: progress.clone(), ..Default::default() })?;
//! let b: Arc<dyn Backend> = Arc::new(backend.clone());
//! match guard::guarded(&backend, runner::run_all(b, work, concurrency, Some(&snaps))).await {
//!     guard::Guarded::Finished(rep) => {
//!         // Environments report their own start/teardown; verdicts go through `log`.
//!         for r in &rep.results { progress.log(&format!("{}: {}", r.outcome.trial_name(), verdict(r))); }
//!         print!("{}", report::render(&rep.results.iter().map(|r| report::scenario_report(&r.outcome, size, os)).collect::<Vec<_>>()));
//!         if !backend.finish() { eprintln!("resources left: run `mic sweep`"); }
//!     }
//!     guard::Guarded::Interrupted { signal, cleanup } => { eprintln!("{signal}\n{cleanup}"); exit(130) }
//! }
//!
//! // `mic sweep [--dry-run] [--wait] [--all-runs]`:
//! let rep = sweep::sweep(&LiveConfig::from_env()?, &sweep::SweepOptions { wait: true, ..Default::default() }).await?;
//! println!("{rep}");  // exit 1 when !rep.ok()
//! ```
//!
//! Environment variables: [`config::VARIABLES`] (names, whether required, help text).
//! Snapshots on live runs are verify-only: the CLI must not write them.
//!
//! # Offline testing against the fake cloud
//!
//! Point `MIC_LIVE_ARM_ENDPOINT` and `AZURE_AUTHORITY_HOST` at the fake cloud (http is
//! accepted for loopback), set `MIC_LIVE_ARM_AUDIENCE=https://management.azure.com/` (the
//! fake issues and accepts ARM's real audience, not its loopback URL), give the fake deployer's `AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`,
//! and set `MIC_LIVE_IN_HOST=run-command`: in-host steps then go through the fake ARM's Run
//! Command (see [`runcommand`] for the request marker the fake reads and the frame it
//! prints). In-host steps on App Service sites go through the site's Kudu (SCM) command API
//! ([`kudu`]); the fake cloud serves a Kudu per site, named `scm:<site>`.

pub mod arm;
pub mod backend;
pub mod config;
pub mod cost;
pub mod credential;
pub mod guard;
pub mod kudu;
pub mod ledger;
pub mod plan;
pub mod progress;
pub mod report;
pub mod runcommand;
pub mod shard;
pub mod sweep;
pub mod transport;

pub use backend::{LiveBackend, LiveEnvironment, LiveOptions, StartError};
pub use config::{ConfigError, LiveConfig};
