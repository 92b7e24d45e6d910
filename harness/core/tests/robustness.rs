//! Nothing panics on any input: truncations, deletions and insertions of a valid scenario, and
//! plain garbage, all go through parse + validate + render. Every broken input must also yield
//! at least one diagnostic (a parse that silently "succeeds" on garbage is a bug too).

use std::path::Path;

use mic_core::catalog;
use mic_core::diagnostic::render_all;

const VALID: &str = include_str!("../../../scenarios/arm/linux-vm-system-assigned.toml");

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

fn check(text: &str) -> usize {
    match catalog::check_str("fuzz.toml", text.to_string()) {
        Ok(_) => 0,
        Err(diags) => {
            for d in &diags {
                let _ = d.render_short();
            }
            let _ = render_all(&diags, false);
            let _ = render_all(&diags, true);
            diags.len()
        }
    }
}

fn boundaries(s: &str) -> Vec<usize> {
    (0..=s.len()).filter(|i| s.is_char_boundary(*i)).collect()
}

#[test]
fn valid_file_is_valid() {
    assert_eq!(check(VALID), 0);
}

#[test]
fn every_truncation() {
    // A prefix that stops between the start of the grant step and the end of the
    // `denied_without_grant` that proves it is necessary is always wrong (cut value, step
    // without a phase, or a grant never proven necessary); earlier prefixes may be valid.
    let grant = VALID.find("[[step]]\nid = \"grant\"").expect("grant step");
    let denied = VALID
        .find("denied_without_grant")
        .expect("denied_without_grant");
    let denied_end = denied + VALID[denied..].find('}').expect("closing brace") + 1;
    for end in boundaries(VALID) {
        let n = check(&VALID[..end]);
        if end > grant && end < denied_end {
            assert!(n > 0, "truncation at {end} passed:\n{}", &VALID[..end]);
        }
    }
}

#[test]
fn random_deletions_and_insertions() {
    const PIECES: &[&str] = &[
        "${", "}", "$${", "\"", "'", "[", "]", "[[", "]]", "=", "\n", ".", ",", "{", "}", "\\",
        "\\u", "é", "\u{0}", "#", "step", "${vm.", "${token", "-", "\"\"\"", " ", "\t", "\r\n",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let mut s = VALID.to_string();
        for _ in 0..=rng.below(3) {
            let b = boundaries(&s);
            let at = b[rng.below(b.len())];
            if rng.next().is_multiple_of(2) {
                s.insert_str(at, PIECES[rng.below(PIECES.len())]);
            } else {
                let ends: Vec<usize> = b
                    .iter()
                    .copied()
                    .filter(|e| *e >= at && *e <= at + 8)
                    .collect();
                let end = ends[rng.below(ends.len())];
                s.replace_range(at..end, "");
            }
        }
        check(&s);
    }
}

#[test]
fn garbage() {
    let mut rng = Rng(42);
    for len in [0, 1, 2, 5, 17, 100, 1000] {
        for _ in 0..50 {
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0x7f) as u8).collect();
            let s = String::from_utf8_lossy(&bytes).into_owned();
            check(&s);
        }
    }
    for s in [
        "[[step]]",
        "step = 1",
        "step = [1, \"x\", {}]",
        "[step]\nprovision = \"vm\"",
        "format = 1\n[[step]]\ncall = \"\"",
        "format = 1\n[[step]]\ncall = \"GET\"",
        "format = 1\n[[step]]\ncall = \"   \"",
        "format = 1\n[[step]]\nexpect = 3\nprovision = \"x\"",
        "[[step]]\nprovision = \"vm\"\nexpect = { json = 1, json_types = { a = 1 }, headers = [1] }",
        "[[step]]\ncall = \"GET ${\"",
        "[[step]]\ncall = \"GET \\u00e9${a..b}${}${c d}\"",
        "x = \"\"\"\n${a\"\"\"",
        "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ] {
        assert!(check(s) > 0, "{s:?} passed");
    }
}

#[test]
fn catalog_on_this_crate_does_not_panic() {
    // Non-scenario TOML (Cargo.toml) is a pile of diagnostics, not a crash.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let c = catalog::load(&[root.join("Cargo.toml")], root);
    assert!(!c.diagnostics.is_empty());
}
