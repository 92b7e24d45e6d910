//! Teardown also on Ctrl-C, SIGTERM (a cancelled CI job) and panics.
//!
//! The driver tears each environment down after its steps; what it cannot cover is the
//! process being interrupted or a task panicking. [`guarded`] runs the whole run as a task
//! and, when a signal arrives or the task panics, deletes everything this run's ledger still
//! lists ([`LiveBackend::cleanup_run`]) before returning. A second signal aborts that cleanup
//! (the ledger is then left for `mic sweep`).

use std::future::Future;

use crate::LiveBackend;
use crate::sweep::SweepReport;

/// How a guarded run ended.
#[derive(Debug)]
pub enum Guarded<T> {
    Finished(T),
    /// Interrupted by a signal; the cleanup's report.
    Interrupted {
        signal: &'static str,
        cleanup: SweepReport,
    },
}

/// Run `run` to completion unless interrupted; clean up on a signal or a panic.
///
/// # Panics
/// Re-raises the run's panic after the cleanup.
pub async fn guarded<F>(backend: &LiveBackend, run: F) -> Guarded<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut task = tokio::spawn(run);
    let signal = tokio::select! {
        joined = &mut task => match joined {
            Ok(out) => return Guarded::Finished(out),
            Err(e) if e.is_panic() => {
                backend.progress().log("the run panicked: deleting what this run created");
                let report = backend.cleanup_run().await;
                backend.progress().log(&report.to_string());
                std::panic::resume_unwind(e.into_panic());
            }
            Err(e) => panic!("the run task was cancelled: {e}"),
        },
        s = signal() => s,
    };
    task.abort();
    backend.progress().log(&format!(
        "{signal}: deleting what this run created (again to abort; then run `mic sweep`)"
    ));
    let cleanup = tokio::select! {
        r = backend.cleanup_run() => r,
        s = self::signal() => {
            let mut r = SweepReport::default();
            r.failed.push((backend.ledger_path().display().to_string(), format!("cleanup aborted ({s}): run `mic sweep`")));
            r
        }
    };
    Guarded::Interrupted { signal, cleanup }
}

#[cfg(unix)]
async fn signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted (Ctrl-C)",
        () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => "terminated (SIGTERM)",
    }
}

#[cfg(not(unix))]
async fn signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "interrupted (Ctrl-C)"
}
