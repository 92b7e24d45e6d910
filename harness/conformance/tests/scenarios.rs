//! The conformance suite: one trial per scenario x backend (x grant-necessity), named
//! `area/name::backend` (`::without-grant`), each checked against its snapshot in
//! `snapshots/` with insta. A backend that cannot run here (live, offline) makes its trials
//! *ignored*, never silently passed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial as TestTrial};
use mic_backends::FakeBackend;
use mic_core::driver::{self, Trial};
use mic_core::model::{BackendKind, Scenario};
use mic_core::{catalog, diagnostic, runner, snapshot};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn run_trial(rt: &tokio::runtime::Runtime, root: &Path, scenario: &Scenario, trial: Trial) -> Result<(), Failed> {
    let backend = FakeBackend::default();
    let outcome = rt.block_on(driver::run(&backend, scenario, trial));
    if let Some(report) = outcome.failure_report() {
        return Err(report.into());
    }
    let body = outcome.snapshot.clone().unwrap_or_default();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot::dir(&root.join("snapshots"), &scenario.id.value));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    if trial == Trial::WithoutGrant {
        settings.set_snapshot_suffix("without-grant");
    }
    let name = scenario.name().to_string();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name, body));
    }))
    .map_err(|_| Failed::from(format!(
        "{} differs from its snapshot; review with `cargo insta review`, rerun with `{}`",
        outcome.trial_name(),
        outcome.rerun_command()
    )))
}

fn main() {
    let args = Arguments::from_args();
    let root = workspace_root();
    let cat = catalog::load_dir(&root.join("scenarios"), &root);
    let mut trials = Vec::new();
    if !cat.diagnostics.is_empty() {
        let text = diagnostic::render_all(&cat.diagnostics, false);
        trials.push(TestTrial::test("catalog::diagnostics", move || Err(text.clone().into())));
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime"),
    );
    let root = Arc::new(root);
    for scenario in cat.scenarios.into_iter().map(Arc::new) {
        for backend in BackendKind::ALL {
            for trial in runner::trials(&scenario) {
                let name = format!("{}::{}{}", scenario.id.value, backend, trial.suffix());
                if !scenario.backends.contains(&backend) {
                    continue;
                }
                match backend {
                    BackendKind::Fake => {
                        let area = scenario.area().to_string();
                        let (rt, root, scenario) = (rt.clone(), root.clone(), scenario.clone());
                        trials.push(
                            TestTrial::test(name, move || run_trial(&rt, &root, &scenario, trial))
                                .with_kind(area),
                        );
                    }
                    BackendKind::Live => {
                        // The live backend needs Azure credentials and network; offline these
                        // trials are ignored (and the nightly workflow runs them).
                        trials.push(TestTrial::test(name, || Ok(())).with_ignored_flag(true).with_kind("live"));
                    }
                }
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
