//! Per-scenario progress: a live run takes minutes.
//!
//! On a terminal, one spinner per running scenario (indicatif) under an overall bar; in CI
//! (not a terminal, or `CI` set), plain timestamped lines that read well in a log. The
//! environment reports what it is doing (creating a VM, Run Command, waiting for an
//! operation, tearing down); the CLI reports verdicts through [`Progress::scenario_finished`].
//! Lines carry ids and resource names only: never a token or a query string.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::transport::LogSink;

/// The progress reporter (cheap to clone; all clones report to the same place).
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner.mode {
            Mode::Bars { .. } => "Progress(bars)",
            Mode::Lines { .. } => "Progress(lines)",
            Mode::Quiet => "Progress(quiet)",
        })
    }
}

struct Inner {
    mode: Mode,
    started: Instant,
}

enum Mode {
    Bars {
        multi: MultiProgress,
        total: ProgressBar,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
    Lines {
        sink: LogSink,
    },
    Quiet,
}

impl Progress {
    /// Bars on a terminal, plain lines on stderr otherwise (and whenever `CI` is set).
    pub fn auto(total_scenarios: u64) -> Self {
        if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            Self::bars(total_scenarios)
        } else {
            Self::lines(Arc::new(|l: &str| eprintln!("{l}")))
        }
    }

    /// indicatif bars on stderr.
    pub fn bars(total_scenarios: u64) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(total_scenarios));
        total.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} scenarios {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self::with(Mode::Bars {
            multi,
            total,
            bars: Mutex::new(HashMap::new()),
        })
    }

    /// Plain lines to `sink`.
    pub fn lines(sink: LogSink) -> Self {
        Self::with(Mode::Lines { sink })
    }

    /// Nothing.
    pub fn quiet() -> Self {
        Self::with(Mode::Quiet)
    }

    fn with(mode: Mode) -> Self {
        Self {
            inner: Arc::new(Inner {
                mode,
                started: Instant::now(),
            }),
        }
    }

    fn line(&self, sink: &LogSink, key: &str, what: &str) {
        let t = self.inner.started.elapsed();
        sink(&format!(
            "[{:>4}:{:02}] {key}: {what}",
            t.as_secs() / 60,
            t.as_secs() % 60
        ));
    }

    pub fn scenario_started(&self, key: &str) {
        match &self.inner.mode {
            Mode::Bars { multi, bars, .. } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix} {wide_msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(key.to_string());
                bar.set_message("starting");
                bar.enable_steady_tick(Duration::from_millis(200));
                lock(bars).insert(key.to_string(), bar);
            }
            Mode::Lines { sink } => self.line(sink, key, "started"),
            Mode::Quiet => {}
        }
    }

    pub fn activity(&self, key: &str, what: &str) {
        match &self.inner.mode {
            Mode::Bars { bars, .. } => {
                if let Some(b) = lock(bars).get(key) {
                    b.set_message(what.to_string());
                }
            }
            Mode::Lines { sink } => self.line(sink, key, what),
            Mode::Quiet => {}
        }
    }

    /// `outcome`: `passed`, `FAILED ...`, `torn down`...
    pub fn scenario_finished(&self, key: &str, outcome: &str) {
        match &self.inner.mode {
            Mode::Bars { multi, total, bars } => {
                if let Some(b) = lock(bars).remove(key) {
                    b.finish_and_clear();
                    multi.remove(&b);
                }
                total.inc(1);
                let _ = multi.println(format!("{key}: {outcome}"));
            }
            Mode::Lines { sink } => self.line(sink, key, outcome),
            Mode::Quiet => {}
        }
    }

    /// A message not tied to a scenario (retries, warnings).
    pub fn log(&self, line: &str) {
        match &self.inner.mode {
            Mode::Bars { multi, .. } => {
                let _ = multi.println(line);
            }
            Mode::Lines { sink } => self.line(sink, "mic-live", line),
            Mode::Quiet => {}
        }
    }

    /// This reporter as a log sink (for the transport's retry messages).
    pub fn sink(&self) -> LogSink {
        let me = self.clone();
        Arc::new(move |l: &str| me.log(l))
    }

    /// Clear the bars at the end of a run.
    pub fn finish(&self) {
        if let Mode::Bars { total, .. } = &self.inner.mode {
            total.finish();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
