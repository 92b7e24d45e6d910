//! Fuzz-ish robustness: truncated seed articles and generated garbage never panic.

use mic_docs::{CheckOptions, StubCloud, World, check_article, report};

fn check(text: &str) {
    let w = World::new()
        .with("<SUBSCRIPTION ID>", "s")
        .with("<ACCESS TOKEN>", "t");
    let opts = CheckOptions {
        world: &w,
        executor: &StubCloud,
        coverage: &[],
    };
    let r = check_article("fuzz.md", text, &opts);
    let _ = report::render_text(std::slice::from_ref(&r));
    let _ = report::render_markdown(std::slice::from_ref(&r));
}

fn seeds() -> Vec<String> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/articles");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    v.push(include_str!("data/linux_vm_arm.md").to_string());
    v
}

#[test]
fn truncated_articles_do_not_panic() {
    for text in seeds() {
        let step = (text.len() / 80).max(7);
        let mut cut = 0;
        while cut < text.len() {
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            check(&text[..cut]);
            check(&text[cut..]);
            cut += step;
        }
    }
}

#[test]
fn garbage_does_not_panic() {
    const ALPHABET: &[&str] = &[
        "```",
        "```json\n",
        "\n",
        " ",
        "curl ",
        "'",
        "\"",
        "-H ",
        "Metadata:true",
        "@{",
        "}",
        "(",
        ")",
        "$ArmToken",
        "<SUBSCRIPTION ID>",
        "<",
        ">",
        "Invoke-WebRequest ",
        "-Uri ",
        "az ",
        "vm ",
        "identity ",
        "--",
        "-g ",
        "GET ",
        "HTTP/1.1",
        "http://169.254.169.254/metadata/identity/oauth2/token?",
        "api-version=",
        "&resource=",
        "https://management.azure.com/",
        "{\"a\":",
        "[",
        "]",
        ",",
        ":",
        "\\",
        "`",
        "é",
        "—",
        "    ",
        "# T\n",
        "New-AzVM ",
        "Get-AzureRmUserAssignedIdentity ",
        "-Name ",
        "%2F",
        "=",
        "?",
        "\t",
        "~~~",
        "\u{1f}",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..400 {
        let mut s = String::new();
        let len = usize::try_from(seed % 120).unwrap_or(0);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pick = usize::try_from(seed % 64).unwrap_or(0) % ALPHABET.len();
            s.push_str(ALPHABET[pick]);
        }
        check(&s);
        check(&format!("```\n{s}\n```\n"));
        check(&format!("---\nx: y\n---\n```powershell\n{s}\n```\n"));
    }
}
