//! `mic`: run Azure managed-identity tutorials as executable scenarios.
//!
//! Exit codes: 0 success, 1 a scenario failed (the cloud behaved unexpectedly),
//! 2 a scenario file is wrong (diagnostics; nothing ran).

mod docs;
mod docs_live;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use mic_backends::FakeBackend;
use mic_core::backend::Backend;
use mic_core::driver::{self, Trial};
use mic_core::model::Scenario;
use mic_core::{catalog, diagnostic, report, runner, snapshot};
use mic_fake::{FakeCloud, FakeConfig};

/// `print!` that ends the process quietly when stdout is closed (`mic list | head`)
/// instead of panicking on a broken pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = write!(stdout, $($arg)*).and_then(|()| stdout.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{ out!($($arg)*); out!("\n"); }};
}

mod live;

#[derive(Parser)]
#[command(
    name = "mic",
    version,
    about = "Run the managed-identity tutorials as executable scenarios against a fake Azure cloud (or live Azure)",
    after_help = "Start with `mic run` (every scenario on the embedded fake cloud) or `mic check`."
)]
struct Cli {
    /// Directory holding the scenario files.
    #[arg(long, global = true, default_value = "scenarios")]
    scenarios: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (all of them on the fake backend by default) and print a table.
    Run(RunArgs),
    /// Validate scenario files; report every problem as path:line:col (exit 2 on problems).
    Check {
        /// Files or directories (default: the scenarios directory).
        paths: Vec<PathBuf>,
    },
    /// List the scenarios and their trials.
    List,
    /// Start a fake cloud and print its endpoints until Ctrl-C.
    Serve(ServeArgs),
    /// Delete what interrupted live runs left behind (tagged past `DeleteAfter`, or in a stale ledger).
    Sweep {
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait until each deletion has finished.
        #[arg(long)]
        wait: bool,
        /// Also sweep runs that still look alive.
        #[arg(long)]
        all_runs: bool,
    },
    /// Check the examples in docs articles (`mic docs check ARTICLE...`, `mic docs coverage`).
    Docs {
        #[command(subcommand)]
        command: docs::DocsCommand,
    },
    /// Measure per-scenario and whole-suite time on the fake backend.
    Bench {
        /// Runs per scenario (the median is reported).
        #[arg(long, default_value_t = 20)]
        iterations: usize,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario id or id prefix (`arm/`); repeatable. Default: all.
    #[arg(long = "scenario", short = 's')]
    scenario: Vec<String>,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = BackendArg::Fake)]
    backend: BackendArg,
    /// Which trials: the scenario as written, the grant-necessity trial, or both.
    #[arg(long, value_enum, default_value_t = TrialArg::All)]
    trial: TrialArg,
    /// Also write a report in this format.
    #[arg(long, value_enum)]
    report: Option<ReportArg>,
    /// Report file (default: reports/mic.json or reports/junit.xml).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Write snapshots for runs that differ or have none (instead of failing on a difference).
    #[arg(long)]
    update_snapshots: bool,
    /// Simulated role-propagation delay on the fake backend, in milliseconds.
    #[arg(long, default_value_t = 0)]
    propagation_delay_ms: u64,
    /// Print the plan (live: the resources it would create) and run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write a Markdown report of the snapshots this run differs from (the drift report).
    #[arg(long)]
    drift_report: Option<PathBuf>,
    /// Run only shard I of N (`--shard 2/4`), split stably by scenario id.
    #[arg(long)]
    shard: Option<mic_live::shard::Shard>,
    /// Live: every trial creates its own VM and identities (by default trials share them
    /// where that cannot change an outcome; see the README).
    #[arg(long)]
    no_share: bool,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Simulated delay before a new role assignment takes effect, in milliseconds.
    #[arg(long, default_value_t = 0)]
    propagation_delay_ms: u64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// How long long-running operations stay in progress, in milliseconds.
    #[arg(long, default_value_t = 0)]
    lro_delay_ms: u64,
    /// How long a VM or scale-set create takes, in milliseconds (default: --lro-delay-ms).
    #[arg(long)]
    vm_create_ms: Option<u64>,
    /// How long a Run Command takes at least, in milliseconds.
    #[arg(long, default_value_t = 0)]
    run_command_ms: u64,
    /// Print the environment for `mic run --backend live` against this fake cloud as
    /// `NAME=value` lines (then `# ready`) instead of the description. The client secret is
    /// left out unless --print-credentials is given.
    #[arg(long)]
    print_env: bool,
    /// With --print-env: also print AZURE_CLIENT_SECRET (fake-only credentials, for tests).
    #[arg(long)]
    print_credentials: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Fake,
    Live,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TrialArg {
    All,
    Normal,
    WithoutGrant,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportArg {
    Json,
    Junit,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    if let Command::Docs { command } = cli.command {
        // Articles can be checked without a scenario directory (coverage is then empty).
        let dir = resolve_scenarios_dir(&cli.scenarios).unwrap_or(cli.scenarios);
        return docs::run(command, &dir).await;
    }
    let dir = resolve_scenarios_dir(&cli.scenarios)?;
    match cli.command {
        Command::Check { paths } => Ok(check(&dir, &paths)),
        Command::List => {
            let Some(scenarios) = load(&dir)? else {
                return Ok(ExitCode::from(2));
            };
            for s in &scenarios {
                let trials = if s.has_grants() {
                    "as written, without grant"
                } else {
                    "as written"
                };
                outln!(
                    "{:<48} {:<8} {} [{}]",
                    s.id.value,
                    s.host.os.name(),
                    s.title,
                    trials
                );
            }
            outln!("{} scenarios", scenarios.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run(&dir, args).await,
        Command::Serve(args) => serve(&args).await,
        Command::Sweep {
            dry_run,
            wait,
            all_runs,
        } => live::sweep(dry_run, wait, all_runs).await,
        Command::Bench { iterations } => bench(&dir, iterations).await,
        Command::Docs { .. } => unreachable!("handled above"),
    }
}

/// `scenarios/` relative to the current directory, else the repository's own.
fn resolve_scenarios_dir(dir: &Path) -> Result<PathBuf> {
    if dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    if dir.is_relative() && repo.is_dir() {
        return Ok(repo);
    }
    bail!(
        "scenario directory `{}` does not exist (run from the repository root or pass --scenarios DIR)",
        dir.display()
    )
}

fn display_root(dir: &Path) -> PathBuf {
    dir.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn snapshot_root(dir: &Path) -> PathBuf {
    display_root(dir).join("snapshots")
}

/// Load and validate every scenario; print diagnostics and return None when any file is wrong.
fn load(dir: &Path) -> Result<Option<Vec<Scenario>>> {
    let cat = catalog::load_dir(dir, &display_root(dir));
    if !cat.diagnostics.is_empty() {
        eprint!(
            "{}",
            diagnostic::render_all(&cat.diagnostics, std::io::stderr().is_terminal())
        );
        return Ok(None);
    }
    if cat.scenarios.is_empty() {
        bail!("no scenario files (*.toml) under {}", dir.display());
    }
    Ok(Some(cat.scenarios))
}

fn check(dir: &Path, paths: &[PathBuf]) -> ExitCode {
    let root = std::env::current_dir().unwrap_or_else(|_| display_root(dir));
    let targets: Vec<PathBuf> = if paths.is_empty() {
        vec![dir.to_path_buf()]
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for t in &targets {
        if t.is_dir() {
            files.extend(catalog::discover(t));
        } else {
            files.push(t.clone());
        }
    }
    let cat = catalog::load(&files, &root);
    if cat.diagnostics.is_empty() {
        outln!("{} scenario files checked, no problems", files.len());
        ExitCode::SUCCESS
    } else {
        eprint!(
            "{}",
            diagnostic::render_all(&cat.diagnostics, std::io::stderr().is_terminal())
        );
        ExitCode::from(2)
    }
}

fn fake_backend(args: &RunArgs) -> Arc<dyn Backend> {
    Arc::new(FakeBackend::new(FakeConfig {
        propagation_delay: Duration::from_millis(args.propagation_delay_ms),
        ..FakeConfig::default()
    }))
}

async fn run(dir: &Path, args: RunArgs) -> Result<ExitCode> {
    let Some(scenarios) = load(dir)? else {
        return Ok(ExitCode::from(2));
    };
    let selected: Vec<Arc<Scenario>> = scenarios
        .into_iter()
        .filter(|s| {
            args.scenario.is_empty()
                || args
                    .scenario
                    .iter()
                    .any(|want| s.id.value == *want || s.id.value.starts_with(want.as_str()))
        })
        .map(Arc::new)
        .collect();
    if selected.is_empty() {
        bail!("no scenario matches {:?} (see `mic list`)", args.scenario);
    }
    let selected = match &args.shard {
        Some(shard) => shard.select(selected, |s| s.id.value.as_str()),
        None => selected,
    };
    if args.dry_run {
        return Ok(match args.backend {
            BackendArg::Live => live::dry_run(&selected, !args.no_share),
            BackendArg::Fake => {
                for s in &selected {
                    let trials: Vec<&str> = runner::trials(s)
                        .iter()
                        .map(|t| {
                            if *t == Trial::Normal {
                                "as written"
                            } else {
                                "without grant"
                            }
                        })
                        .collect();
                    outln!("{:<48} {}", s.id.value, trials.join(", "));
                }
                ExitCode::SUCCESS
            }
        });
    }
    let work: Vec<(Arc<Scenario>, Trial)> = selected
        .iter()
        .flat_map(|s| runner::trials(s).into_iter().map(move |t| (s.clone(), t)))
        .filter(|(_, t)| match args.trial {
            TrialArg::All => true,
            TrialArg::Normal => *t == Trial::Normal,
            TrialArg::WithoutGrant => *t == Trial::WithoutGrant,
        })
        .collect();
    let snaps = snapshot_root(dir);
    if matches!(args.backend, BackendArg::Live) {
        // Live runs only verify snapshots: the fake backend is where they are written.
        if args.update_snapshots {
            bail!(
                "--update-snapshots is refused on the live backend: snapshots are verify-only there"
            );
        }
        let options = runner::RunOptions {
            concurrency: args.concurrency,
            share: !args.no_share,
        };
        return live::run(work, options, &snaps, args.drift_report.as_deref()).await;
    }
    let mut rep = runner::run_all(fake_backend(&args), work, args.concurrency, Some(&snaps)).await;
    if args.update_snapshots {
        for r in &mut rep.results {
            if let (Some(body), true) = (&r.outcome.snapshot, r.outcome.passed())
                && !matches!(r.snapshot, Some(snapshot::Comparison::Matches))
            {
                let path = snapshot::path(&snaps, &r.outcome.scenario_id, r.outcome.trial);
                snapshot::write(&path, "snapshot", body)
                    .with_context(|| format!("writing {}", path.display()))?;
                outln!("wrote {}", path.display());
                r.snapshot = Some(snapshot::Comparison::Matches);
            }
        }
    }
    if let Some(path) = &args.drift_report {
        write_file(path, &report::drift_markdown(&rep))?;
    }
    let json_to_stdout = matches!(args.report, Some(ReportArg::Json)) && args.out.is_none();
    if json_to_stdout {
        outln!("{}", serde_json::to_string_pretty(&report::json(&rep))?);
    } else {
        out!("{}", report::console(&rep));
    }
    if let Some(kind) = args.report {
        let (default, text) = match kind {
            ReportArg::Json => (
                "reports/mic.json",
                serde_json::to_string_pretty(&report::json(&rep))?,
            ),
            ReportArg::Junit => ("reports/junit.xml", report::junit(&rep)),
        };
        if !json_to_stdout {
            let path = args.out.clone().unwrap_or_else(|| PathBuf::from(default));
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            outln!("report written to {}", path.display());
        }
    }
    Ok(if rep.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let ms = Duration::from_millis;
    let cloud = FakeCloud::start(FakeConfig {
        propagation_delay: ms(args.propagation_delay_ms),
        latency: ms(args.latency_ms),
        lro_delay: ms(args.lro_delay_ms),
        lro_delays: args
            .vm_create_ms
            .map(|v| {
                [
                    "Microsoft.Compute/virtualMachines",
                    "Microsoft.Compute/virtualMachineScaleSets",
                ]
                .map(|t| (t.to_string(), ms(v)))
                .to_vec()
            })
            .unwrap_or_default(),
        run_command_delay: ms(args.run_command_ms),
        ..FakeConfig::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.print_env {
        for (k, v) in live::fake_env(&cloud, args.print_credentials) {
            outln!("{k}={v}");
        }
        outln!("# ready");
    } else {
        outln!("{}", cloud.describe());
        if args.print_credentials {
            outln!(
                "  deployer secret: {} (fake only)",
                cloud.deployer().client_secret
            );
        } else {
            outln!(
                "  deployer secret: not shown; add --print-credentials (fake only) or use --print-env"
            );
        }
        outln!("Press Ctrl-C to stop.");
    }
    tokio::signal::ctrl_c().await?;
    cloud.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Write a report file, creating its directory.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

async fn bench(dir: &Path, iterations: usize) -> Result<ExitCode> {
    let Some(scenarios) = load(dir)? else {
        return Ok(ExitCode::from(2));
    };
    let backend: Arc<dyn Backend> = Arc::new(FakeBackend::default());
    let iterations = iterations.max(1);
    if cfg!(debug_assertions) {
        outln!(
            "note: this is a debug build; measure with `cargo run --release -p mic-cli -- bench`"
        );
    }
    // Warm up: the process-wide signing key and connection setup.
    let _ = driver::run(backend.as_ref(), &scenarios[0], Trial::Normal).await;
    outln!(
        "{:<48} {:>10} {:>10}",
        "scenario (as written, sequential)",
        "median",
        "max"
    );
    let mut medians = Vec::new();
    for s in &scenarios {
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let o = driver::run(backend.as_ref(), s, Trial::Normal).await;
            if !o.passed() {
                bail!(
                    "{} failed during the benchmark:\n{}",
                    s.id.value,
                    o.failure_report().unwrap_or_default()
                );
            }
            times.push(o.duration);
        }
        let max = times.iter().max().copied().unwrap_or_default();
        let m = median(&mut times);
        medians.push(m);
        outln!(
            "{:<48} {:>8.2}ms {:>8.2}ms",
            s.id.value,
            m.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    let all: Vec<Arc<Scenario>> = scenarios.into_iter().map(Arc::new).collect();
    let mut suite_times = Vec::with_capacity(iterations);
    let mut trials = 0;
    for _ in 0..iterations {
        let work: Vec<(Arc<Scenario>, Trial)> = all
            .iter()
            .flat_map(|s| runner::trials(s).into_iter().map(move |t| (s.clone(), t)))
            .collect();
        trials = work.len();
        let started = Instant::now();
        let rep = runner::run_all(backend.clone(), work, 8, None).await;
        if rep.failed() > 0 {
            bail!(
                "the suite failed during the benchmark:\n{}",
                report::console(&rep)
            );
        }
        suite_times.push(started.elapsed());
    }
    let per = median(&mut medians);
    let suite = median(&mut suite_times);
    outln!("\nmedian scenario: {:.2} ms", per.as_secs_f64() * 1e3);
    outln!(
        "whole suite ({trials} trials, concurrency 8): median {:.1} ms over {iterations} runs",
        suite.as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}
