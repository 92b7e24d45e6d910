//! Debug helper: `cargo run -p mic-docs --example dump_blocks -- <article> <from-line> <to-line>`
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).unwrap_or_default();
    let from: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let to: usize = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let (_, blocks) = mic_docs::analyse(&text);
    for a in blocks
        .iter()
        .filter(|a| a.block.end_line >= from && a.block.start_line <= to)
    {
        println!(
            "== L{}-{} {:?} {} ({})",
            a.block.start_line, a.block.end_line, a.class.kind, a.class.detail, a.class.reason
        );
        for l in &a.logical {
            println!("  [L{}-{}] {}", l.start_line, l.end_line, l.text);
        }
        for op in &a.ops {
            println!(
                "  op {} {} body={:?} issues={:?}",
                op.method, op.url, op.body, op.issues
            );
        }
        for e in &a.parse_errors {
            println!("  parse error {e:?}");
        }
    }
}
