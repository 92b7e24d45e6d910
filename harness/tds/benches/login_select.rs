//! Connect + PRELOGIN + LOGIN7 (RS256 token verified) + one SELECT against
//! the fake, N times, sequentially; prints median and p95 wall time.
//!
//! Plain std timing (no criterion): the point is a rough budget for how much
//! a scenario step that talks to SQL costs, not statistical rigour.
//! `MIC_TDS_BENCH_ITERS` overrides N (default 300).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{DB, connect, start, token, tutorial_setup, vm};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

fn main() {
    let iterations: usize = std::env::var("MIC_TDS_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = start().await;
        tutorial_setup(&server, true).await;
        let token = token(&vm());

        // Warm up (key generation, first connections).
        for _ in 0..10 {
            let mut c = connect(&server, Some(DB), &token).await.expect("login");
            c.simple_query("SELECT * FROM Products")
                .await
                .expect("query")
                .into_first_result()
                .await
                .expect("rows");
        }

        let mut samples = Vec::with_capacity(iterations);
        let mut select_only = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            let mut c = connect(&server, Some(DB), &token).await.expect("login");
            let q = Instant::now();
            let rows = c
                .simple_query("SELECT * FROM Products")
                .await
                .expect("query")
                .into_first_result()
                .await
                .expect("rows");
            let done = Instant::now();
            assert_eq!(rows.len(), 2);
            samples.push(done - started);
            select_only.push(done - q);
            drop(c);
        }
        samples.sort();
        select_only.sort();
        println!("mic-tds login_select: {iterations} iterations (connect + login + SELECT)");
        println!(
            "  total : median {:>9.3?}  p95 {:>9.3?}  min {:>9.3?}  max {:>9.3?}",
            percentile(&samples, 0.5),
            percentile(&samples, 0.95),
            samples[0],
            samples[samples.len() - 1]
        );
        println!(
            "  SELECT: median {:>9.3?}  p95 {:>9.3?}",
            percentile(&select_only, 0.5),
            percentile(&select_only, 0.95)
        );
    });
}
