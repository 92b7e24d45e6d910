//! Parse + classify + static-check the whole 9,400-line export, and the full
//! check (with the stub executor). Plain std timing (`harness = false`).

use mic_docs::{CheckOptions, StubCloud, World, analyse, check_article, static_findings};
use std::time::{Duration, Instant};

fn time<F: FnMut() -> usize>(label: &str, iterations: u32, mut f: F) {
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    let mut n = 0;
    for _ in 0..iterations {
        let start = Instant::now();
        n = std::hint::black_box(f());
        let d = start.elapsed();
        best = best.min(d);
        total += d;
    }
    println!(
        "{label:<48} best {best:>10.2?}  mean {:>10.2?}  ({n} items, {iterations} runs)",
        total / iterations
    );
}

fn main() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/articles/004_68e52737ddb40452.txt");
    let text = std::fs::read_to_string(&path).expect("export in the repo");
    println!("{} lines, {} bytes", text.lines().count(), text.len());
    time("extract + re-join + classify + parse (analyse)", 20, || {
        analyse(&text).1.len()
    });
    time("analyse + static checks", 20, || {
        let (_, blocks) = analyse(&text);
        static_findings(&blocks).len()
    });
    let world = World::new();
    let opts = CheckOptions {
        world: &world,
        executor: &StubCloud,
        coverage: &[],
    };
    time("full check_article (stub executor)", 20, || {
        check_article("004", &text, &opts).blocks.len()
    });
}
