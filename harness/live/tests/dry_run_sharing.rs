//! `mic run --backend live --dry-run` shows the sharing plan: the fixtures the run would make
//! (the run's own rule, `runner::shared_fixtures`), their members, the VMs created with and
//! without sharing, and the estimate accordingly.

use std::path::Path;
use std::sync::Arc;

use mic_core::model::{BackendKind, Scenario};
use mic_core::{catalog, runner};
use mic_live::plan;

fn scenarios(areas: &[&str]) -> Vec<Scenario> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    areas
        .iter()
        .flat_map(|a| {
            let cat = catalog::load_dir(&root.join("scenarios").join(a), &root);
            assert!(cat.diagnostics.is_empty(), "{:?}", cat.diagnostics);
            cat.scenarios
        })
        .filter(|s| s.backends.contains(&BackendKind::Live))
        .collect()
}

#[test]
fn the_dry_run_shares_as_the_run_would_and_prices_accordingly() {
    let all = scenarios(&["arm", "imds"]);
    let refs: Vec<&Scenario> = all.iter().collect();
    let sharing = plan::sharing(&refs, None, true);

    // The same fixtures and members as the runner computes for the run.
    let work: Vec<_> = all
        .iter()
        .map(|s| Arc::new(s.clone()))
        .flat_map(|s| runner::trials(&s).into_iter().map(move |t| (s.clone(), t)))
        .collect();
    let fixtures = runner::shared_fixtures(&work);
    assert!(!fixtures.is_empty(), "the suite has shareable trials");
    assert_eq!(sharing.fixtures.len(), fixtures.len());
    for ((f, members), shown) in fixtures.iter().zip(&sharing.fixtures) {
        assert_eq!(shown.name, f.name);
        assert_eq!(shown.hosts, f.hosts);
        let names: Vec<String> = members
            .iter()
            .map(|&i| {
                let (s, t) = &work[i];
                format!("{}::live{}", s.id.value, t.suffix())
            })
            .collect();
        assert_eq!(shown.members, names);
    }
    // VMs: each fixture's hosts once instead of once per member.
    let saved: usize = fixtures.iter().map(|(f, m)| (m.len() - 1) * f.hosts).sum();
    assert!(saved > 0);
    assert_eq!(sharing.vms + saved, sharing.vms_without_sharing);
    let isolated: usize = all
        .iter()
        .map(|s| plan::plan(s, None).vms * runner::trials(s).len())
        .sum();
    assert_eq!(sharing.vms_without_sharing, isolated);
    assert!(sharing.resource_groups < sharing.resource_groups_without_sharing);
    let (with, without) = (sharing.usd.unwrap(), sharing.usd_without_sharing.unwrap());
    assert!(with < without, "{with} vs {without}");
    let fixture_usd: f64 = sharing.fixtures.iter().map(|f| f.usd.unwrap()).sum();
    assert!(fixture_usd > 0.0);

    let text = plan::render(
        &refs,
        Err(&mic_live::LiveConfig::from_map(&std::collections::BTreeMap::new(), None).unwrap_err()),
    );
    for want in [
        "sharing (the run's rule, mic_core::share)".to_string(),
        format!(
            "VMs and scale sets created: {} (without sharing: {})",
            sharing.vms, sharing.vms_without_sharing
        ),
        format!("{} VMs", sharing.vms),
        format!(
            "without sharing: {} resource groups, {} VMs",
            sharing.resource_groups_without_sharing, sharing.vms_without_sharing
        ),
        sharing.fixtures[0].name.clone(),
        sharing.fixtures[0].members[0].clone(),
        "through Kudu".to_string(),
    ] {
        assert!(text.contains(&want), "{want} missing in\n{text}");
    }
    println!(
        "dry-run sharing figure: {} fixtures serve {} trials; VMs {} (without sharing {}), ~${with:.2} (without ~${without:.2})",
        sharing.fixtures.len(),
        sharing
            .fixtures
            .iter()
            .map(|f| f.members.len())
            .sum::<usize>(),
        sharing.vms,
        sharing.vms_without_sharing
    );

    // --no-share: nothing shared, totals as before.
    let off = plan::sharing(&refs, None, false);
    assert!(off.fixtures.is_empty());
    assert_eq!(off.vms, off.vms_without_sharing);
    let text = plan::render_with(
        &refs,
        Err(&mic_live::LiveConfig::from_map(&std::collections::BTreeMap::new(), None).unwrap_err()),
        false,
    );
    assert!(text.contains("sharing: off (--no-share)"), "{text}");
    assert!(
        text.contains(&format!("{} VMs", off.vms_without_sharing)),
        "{text}"
    );
    assert!(!text.contains("without sharing:"), "{text}");
}

#[test]
fn an_isolated_scenario_alone_shares_nothing() {
    let all = scenarios(&["imds"]);
    let one: Vec<&Scenario> = all
        .iter()
        .filter(|s| s.id.value == "imds/app-service-identity")
        .collect();
    assert_eq!(one.len(), 1);
    let s = plan::sharing(&one, None, true);
    assert!(s.fixtures.is_empty());
    assert_eq!((s.vms, s.vms_without_sharing), (0, 0));
    let text = plan::render(
        &one,
        Err(&mic_live::LiveConfig::from_map(&std::collections::BTreeMap::new(), None).unwrap_err()),
    );
    assert!(text.contains("0 fixtures would serve 0 trials"), "{text}");
    assert!(text.contains("web app myapp${run_id}"), "{text}");
}
