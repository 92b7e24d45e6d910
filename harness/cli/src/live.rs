//! `mic run --backend live`, `--dry-run` and `mic sweep`: the CLI side of the live backend
//! (`mic-live`). Configuration comes only from the environment; nothing secret is printed.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use mic_core::backend::Backend;
use mic_core::driver::Trial;
use mic_core::model::{Os, Scenario};
use mic_core::{report, runner};
use mic_live::progress::Progress;
use mic_live::{LiveBackend, LiveConfig, LiveOptions, guard, plan, sweep};

/// Print what a live run would create, with the fixtures its trials would share (`share`:
/// not `--no-share`); works with an incomplete configuration too.
pub fn dry_run(scenarios: &[Arc<Scenario>], share: bool) -> ExitCode {
    let config = LiveConfig::from_env();
    let refs: Vec<&Scenario> = scenarios.iter().map(AsRef::as_ref).collect();
    out!("{}", plan::render_with(&refs, config.as_ref(), share));
    if config.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// Run on live Azure: verify-only snapshots, teardown on Ctrl-C and panics, cost report.
pub async fn run(
    work: Vec<(Arc<Scenario>, Trial)>,
    options: runner::RunOptions,
    snapshots: &Path,
    drift_report: Option<&Path>,
) -> Result<ExitCode> {
    let config = match LiveConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: the live backend is not configured:\n{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let sizes = (config.linux_vm_size.clone(), config.windows_vm_size.clone());
    // Shared fixtures are environments too: they count as units of progress.
    let fixtures = if options.share {
        runner::shared_fixtures(&work).len()
    } else {
        0
    };
    let progress = Progress::auto((work.len() + fixtures) as u64);
    let backend = LiveBackend::new(
        config,
        LiveOptions {
            progress: progress.clone(),
            ..LiveOptions::default()
        },
    )?;
    let shared: Arc<dyn Backend> = Arc::new(backend.clone());
    let oses: Vec<(String, Os)> = work
        .iter()
        .map(|(s, _)| (s.id.value.clone(), s.host.os))
        .collect();
    let snapshots = snapshots.to_path_buf();
    match guard::guarded(&backend, async move {
        runner::run_all_with(shared, work, options, Some(&snapshots)).await
    })
    .await
    {
        guard::Guarded::Finished(rep) => {
            if let Some(path) = drift_report {
                crate::write_file(path, &report::drift_markdown(&rep))?;
            }
            out!("{}", report::console(&rep));
            let mut costs: Vec<_> = rep
                .results
                .iter()
                .map(|r| {
                    let os = oses
                        .iter()
                        .find(|(id, _)| *id == r.outcome.scenario_id)
                        .map_or(Os::Linux, |(_, o)| *o);
                    let size = if os == Os::Windows {
                        &sizes.1
                    } else {
                        &sizes.0
                    };
                    mic_live::report::scenario_report(&r.outcome, size, os)
                })
                .collect();
            costs.extend(rep.fixtures.iter().map(|f| {
                let size = if f.os == Os::Windows {
                    &sizes.1
                } else {
                    &sizes.0
                };
                mic_live::report::fixture_report(f, size)
            }));
            out!("{}", mic_live::report::render(&costs));
            out!(
                "VMs and scale sets created: {} (without sharing: {}{})\n",
                rep.hosts_created(),
                rep.hosts_without_sharing(),
                if options.share { "" } else { "; --no-share" }
            );
            if !backend.finish() {
                eprintln!("some resources may be left behind: run `mic sweep`");
            }
            Ok(if rep.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        guard::Guarded::Interrupted { signal, cleanup } => {
            eprintln!("interrupted by {signal}; cleaned up:\n{cleanup}");
            Ok(ExitCode::from(130))
        }
    }
}

/// `mic sweep`: delete what interrupted runs left behind.
pub async fn sweep(dry_run: bool, wait: bool, all_runs: bool) -> Result<ExitCode> {
    let config = match LiveConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: the live backend is not configured:\n{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let rep = sweep::sweep(
        &config,
        &sweep::SweepOptions {
            dry_run,
            wait,
            all_runs,
            now: None,
        },
    )
    .await?;
    outln!("{rep}");
    Ok(if rep.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The environment that points `mic run --backend live` and `mic sweep` at a fake cloud
/// (`mic serve --print-env`); the fake deployer's secret only when `with_secret`.
pub fn fake_env(cloud: &mic_fake::FakeCloud, with_secret: bool) -> Vec<(&'static str, String)> {
    let d = cloud.deployer();
    let mut env = vec![
        ("AZURE_TENANT_ID", cloud.tenant_id()),
        ("AZURE_SUBSCRIPTION_ID", cloud.subscription_id()),
        ("AZURE_LOCATION", cloud.location()),
        ("AZURE_CLIENT_ID", d.client_id),
        ("MIC_LIVE_AUTH", "client-secret".to_string()),
        ("MIC_LIVE_ARM_ENDPOINT", cloud.arm_url()),
        (
            "MIC_LIVE_ARM_AUDIENCE",
            "https://management.azure.com/".to_string(),
        ),
        ("AZURE_AUTHORITY_HOST", cloud.login_url()),
        ("MIC_LIVE_IN_HOST", "run-command".to_string()),
    ];
    if with_secret {
        env.push(("AZURE_CLIENT_SECRET", d.client_secret));
    }
    env
}
