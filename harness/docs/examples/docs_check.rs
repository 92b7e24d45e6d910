//! `cargo run -p mic-docs --example docs_check -- [--md|--json] <article>...`
use mic_docs::{CheckOptions, NotExecuted, World, check_article, report};

fn main() {
    let mut format = "text";
    let mut reports = Vec::new();
    let world = World::new();
    let opts = CheckOptions {
        world: &world,
        executor: &NotExecuted,
        coverage: &[],
    };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--md" => format = "md",
            "--json" => format = "json",
            path => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let name = path.rsplit('/').next().unwrap_or(path);
                    reports.push(check_article(name, &text, &opts));
                }
                Err(e) => eprintln!("{path}: {e}"),
            },
        }
    }
    let out = match format {
        "md" => report::render_markdown(&reports),
        "json" => report::render_json(&reports),
        _ => report::render_text(&reports),
    };
    // Ignore a closed pipe (`| head`).
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
}
