//! When trials may share one host (VM / scale set) and its user-assigned identities.
//!
//! On live Azure a VM costs about a minute and money to create, and many scenarios create the
//! same one (`myVM` in `myResourceGroup-${run_id}`). A trial may use a *shared fixture* (the
//! resource groups, user-assigned identities and host, created once per run) instead of its
//! own when that provably cannot change its outcome. The rule, decided from the steps alone:
//!
//! 1. The host is a VM or scale set (not an App Service site) and the scenario is not tagged
//!    `isolated` (the opt-out).
//! 2. The fixture is every `resource_group`, `user_assigned_identity`, `vm` and `vmss` step.
//!    Those steps refer only to each other and to builtins, carry no expectation and are not
//!    snapshotted. Trials share a fixture only when these definitions are identical (with the
//!    `[host]` defaults they use), so one creation serves all of them.
//! 3. Nothing mutates the fixture: no `vm_identity` / `vmss_identity` step, and a call that
//!    mentions a fixture resource is a `GET`/`HEAD` made with the identity's token (the
//!    identity's reads are bounded by RBAC, which rule 4 keeps private; the deployer sees
//!    everything, including other trials' resources).
//! 4. Every grant is at a scope private to the trial: a `role_assignment` scope, the vault of a
//!    `key_vault_access_policy`, the account of an `adls_acl`, the server of a
//!    `sql_contained_user` names a resource the trial itself created. Directory-wide grants
//!    (`graph_app_role`, `graph_group_member`) are never shared.
//! 5. Every other resource the trial creates has a name of its own (a field other than
//!    `resource_group` mentions `${run_id}` or another private resource), so trials sharing
//!    a resource group never collide; and `${run_id}` appears in no grant, token or call step
//!    (with a fixture it would no longer name the fixture's resources).
//! 6. Principals that were granted something are never reused by a trial that must be denied:
//!    trials fall into two pools, and the pool is part of the fixture's key. A positive trial
//!    that grants (a grant step, or a private resource created with a fixture principal in
//!    its definition) uses the *granting* pool; grant-necessity trials and trials that grant
//!    nothing use the *clean* pool, whose principals never receive any grant. On live Azure
//!    revocation is slow and IMDS caches tokens, so this holds for the whole run.
//!
//! Anything else runs isolated, as every trial did before.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::driver::Trial;
use crate::model::{
    FieldValue, GrantKind, HostKind, Phase, ProvisionKind, Scenario, Step, StepKind, Template,
};

/// The scenario tag that keeps a scenario's trials isolated.
pub const OPT_OUT_TAG: &str = "isolated";

/// Which principals a trial may share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    /// Positive trials that grant their principals something (at private scopes).
    Granting,
    /// Trials that grant nothing (all grant-necessity trials among them).
    Clean,
}

impl Pool {
    pub fn name(self) -> &'static str {
        match self {
            Pool::Granting => "granting",
            Pool::Clean => "clean",
        }
    }
}

/// What a trial would take from a shared fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixturePlan {
    /// Equal keys: the same fixture serves both trials.
    pub key: String,
    /// `shared-<pool>-<hash>`: the fixture's display name.
    pub name: String,
    pub pool: Pool,
    /// Ids of the steps the fixture provides.
    pub steps: BTreeSet<String>,
    /// VMs / scale sets in the fixture.
    pub hosts: usize,
    /// The canonical definition (what the key hashes).
    pub definition: String,
}

/// Why a trial runs isolated.
pub type Isolated = String;

fn is_fixture_kind(kind: &StepKind) -> bool {
    matches!(
        kind,
        StepKind::Provision(
            ProvisionKind::ResourceGroup
                | ProvisionKind::UserAssignedIdentity
                | ProvisionKind::Vm
                | ProvisionKind::Vmss
        )
    )
}

fn step_templates(step: &Step) -> Vec<&Template> {
    let mut out: Vec<&Template> = step
        .fields
        .map
        .values()
        .flat_map(|f| f.value.value.templates())
        .collect();
    if let StepKind::Call { url, .. } = &step.kind.value {
        out.push(url);
    }
    for e in [&step.expect, &step.denied_without_grant]
        .into_iter()
        .flatten()
    {
        out.extend(e.templates());
    }
    out
}

/// Roots of every `${...}` reference in templates.
fn roots<'a>(templates: impl IntoIterator<Item = &'a Template>) -> BTreeSet<&'a str> {
    templates
        .into_iter()
        .flat_map(Template::references)
        .map(|r| r.root.as_str())
        .collect()
}

fn field_roots<'a>(step: &'a Step, name: &str) -> BTreeSet<&'a str> {
    roots(
        step.fields
            .get(name)
            .map(|v| v.value.templates())
            .unwrap_or_default(),
    )
}

fn canon(v: &FieldValue, out: &mut String) {
    match v {
        FieldValue::Str(t) => {
            let _ = write!(out, "{:?}", t.raw);
        }
        FieldValue::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        FieldValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        FieldValue::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        FieldValue::List(items) => {
            out.push('[');
            for i in items {
                canon(&i.value, out);
                out.push(',');
            }
            out.push(']');
        }
        FieldValue::Table(map) => {
            out.push('{');
            for (k, v) in map {
                let _ = write!(out, "{k:?}=");
                canon(&v.value, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

/// FNV-1a, 64 bits: a short stable name for a definition.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The fixture a trial may share, or why it runs isolated.
///
/// # Errors
/// The reason the trial must run isolated (shown in the run report).
#[allow(clippy::too_many_lines)] // one rule after the other, as the module documents them
pub fn plan(scenario: &Scenario, trial: Trial) -> Result<FixturePlan, Isolated> {
    if scenario.tags.iter().any(|t| t == OPT_OUT_TAG) {
        return Err(format!("tagged `{OPT_OUT_TAG}`"));
    }
    if !matches!(scenario.host.kind, HostKind::Vm | HostKind::Vmss) {
        return Err(format!(
            "{} hosts are not shared",
            scenario.host.kind.name()
        ));
    }
    // The steps this trial runs (the grant-necessity trial runs no grant).
    let active: Vec<&Step> = scenario
        .steps
        .iter()
        .filter(|s| !(trial == Trial::WithoutGrant && s.phase() == Phase::Grant))
        .collect();
    let fixture: BTreeSet<&str> = active
        .iter()
        .filter(|s| is_fixture_kind(&s.kind.value))
        .map(|s| s.id.value.as_str())
        .collect();
    let is_step = |root: &str| scenario.step(root).is_some();
    let private: BTreeSet<&str> = active
        .iter()
        .filter(|s| s.phase() == Phase::Provision && !fixture.contains(s.id.value.as_str()))
        .map(|s| s.id.value.as_str())
        .collect();
    let mut hosts = 0;
    let mut granting = false;
    for step in &active {
        let id = step.id.value.as_str();
        let refs = roots(step_templates(step));
        let mentions_fixture = refs.iter().any(|r| fixture.contains(r));
        match &step.kind.value {
            k if is_fixture_kind(k) => {
                if matches!(
                    k,
                    StepKind::Provision(ProvisionKind::Vm | ProvisionKind::Vmss)
                ) {
                    hosts += 1;
                }
                if step.expect.is_some() || step.denied_without_grant.is_some() {
                    return Err(format!("step `{id}` of the fixture has an expectation"));
                }
                if step.snapshot == Some(true) {
                    return Err(format!("step `{id}` of the fixture is snapshotted"));
                }
                if let Some(r) = refs.iter().find(|r| is_step(r) && !fixture.contains(*r)) {
                    return Err(format!(
                        "step `{id}` of the fixture refers to `{r}`, which is not part of it"
                    ));
                }
            }
            StepKind::Provision(ProvisionKind::VmIdentity | ProvisionKind::VmssIdentity) => {
                return Err(format!("step `{id}` changes the identities of the host"));
            }
            StepKind::Provision(_) => {
                let own_name = step
                    .fields
                    .map
                    .keys()
                    .filter(|k| k.as_str() != "resource_group")
                    .flat_map(|k| field_roots(step, k))
                    .any(|r| r == "run_id" || private.contains(r));
                if !own_name {
                    return Err(format!(
                        "step `{id}` creates a resource without `${{run_id}}` in its name"
                    ));
                }
                // A private resource defined with a fixture principal grants it something.
                if step
                    .fields
                    .map
                    .keys()
                    .filter(|k| k.as_str() != "resource_group")
                    .flat_map(|k| field_roots(step, k))
                    .any(|r| fixture.contains(r))
                {
                    granting = true;
                }
            }
            StepKind::Grant(kind) => {
                granting = true;
                let target = match kind {
                    GrantKind::RoleAssignment => "scope",
                    GrantKind::KeyVaultAccessPolicy => "vault",
                    GrantKind::AdlsAcl => "account",
                    GrantKind::SqlContainedUser => "server",
                    GrantKind::GraphAppRole | GrantKind::GraphGroupMember => {
                        return Err(format!("step `{id}` grants directory-wide"));
                    }
                };
                if !field_roots(step, target)
                    .iter()
                    .any(|r| private.contains(r))
                {
                    return Err(format!(
                        "step `{id}` grants at a scope the trial did not create (`{target}`)"
                    ));
                }
            }
            StepKind::FetchToken(_) => {}
            StepKind::Call { method, .. } => {
                let read = matches!(method.as_str(), "GET" | "HEAD");
                let deployer = step.fields.bool("as_deployer") == Some(true)
                    || step.fields.get("as_deployer_for").is_some();
                if mentions_fixture && (deployer || !read) {
                    return Err(format!(
                        "step `{id}` ({method}{}) touches a shared resource",
                        if deployer { " as the deployer" } else { "" }
                    ));
                }
            }
        }
        if !is_fixture_kind(&step.kind.value)
            && step.phase() != Phase::Provision
            && refs.contains("run_id")
        {
            return Err(format!("step `{id}` uses `${{run_id}}`"));
        }
    }
    if hosts == 0 {
        return Err("no VM or scale set to share".into());
    }
    let pool = if trial == Trial::Normal && granting {
        Pool::Granting
    } else {
        Pool::Clean
    };
    let h = &scenario.host;
    let mut definition = format!(
        "pool={};host={}/{}/{:?}/system={}/users={:?}\n",
        pool.name(),
        h.kind.name(),
        h.os.name(),
        h.name,
        h.system_assigned,
        h.user_assigned
    );
    for step in active
        .iter()
        .filter(|s| fixture.contains(s.id.value.as_str()))
    {
        let _ = write!(definition, "{:?}:{}", step.id.value, step.kind.value.key());
        for (k, f) in &step.fields.map {
            let _ = write!(definition, " {k}=");
            canon(&f.value.value, &mut definition);
        }
        definition.push('\n');
    }
    let hash = format!("{:016x}", fnv(&definition));
    Ok(FixturePlan {
        name: format!("shared-{}-{}", pool.name(), &hash[..8]),
        key: hash,
        pool,
        steps: fixture.into_iter().map(str::to_string).collect(),
        hosts,
        definition,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const HEAD: &str = r#"format = 1
id = "t/x"
title = "t"
[article]
file = "004_68e52737ddb40452.txt"
[host]
kind = "vm"
os = "linux"
name = "myVM"
system_assigned = true

[[step]]
id = "rg"
provision = "resource_group"
name = "myResourceGroup-${run_id}"

[[step]]
id = "vm"
provision = "vm"
resource_group = "${rg.name}"
"#;

    const TOKEN: &str = r#"
[[step]]
id = "token"
fetch_token = "imds"
resource = "https://management.azure.com/"
"#;

    const ACCOUNT: &str = r#"
[[step]]
id = "account"
provision = "storage_account"
name = "acct${run_id}"
resource_group = "${rg.name}"
"#;

    fn grant(scope: &str) -> String {
        format!(
            r#"
[[step]]
id = "grant"
grant = "role_assignment"
role = "Reader"
principal = "${{vm.identity.principal_id}}"
scope = "{scope}"
"#
        )
    }

    fn call(line: &str, extra: &str) -> String {
        format!(
            r#"
[[step]]
id = "call"
call = "{line}"
headers = {{ Authorization = "Bearer ${{token.access_token}}" }}
{extra}
denied_without_grant = {{ status = 403 }}
"#
        )
    }

    fn scenario(body: &str) -> Scenario {
        let text = format!("{HEAD}{body}");
        crate::parse::parse_str("scenarios/t/x.toml", text).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn plan_of(body: &str, trial: Trial) -> Result<FixturePlan, Isolated> {
        plan(&scenario(body), trial)
    }

    #[rstest]
    #[case::token_only(TOKEN.to_string(), Trial::Normal, Ok(Pool::Clean))]
    #[case::grant_at_own_storage_account(
        format!("{ACCOUNT}{}{TOKEN}{}", grant("${account.id}"), call("GET ${arm}${account.id}?api-version=2017-06-01", "")),
        Trial::Normal,
        Ok(Pool::Granting)
    )]
    #[case::its_grant_necessity_trial_uses_the_clean_pool(
        format!("{ACCOUNT}{}{TOKEN}{}", grant("${account.id}"), call("GET ${arm}${account.id}?api-version=2017-06-01", "")),
        Trial::WithoutGrant,
        Ok(Pool::Clean)
    )]
    #[case::reader_on_the_resource_group(
        format!("{}{TOKEN}{}", grant("${rg.id}"), call("GET ${arm}${rg.id}?api-version=2016-09-01", "")),
        Trial::Normal,
        Err("grants at a scope")
    )]
    #[case::reader_on_the_subscription(
        format!("{}{TOKEN}", grant("/subscriptions/${subscription_id}")),
        Trial::Normal,
        Err("grants at a scope")
    )]
    #[case::without_the_group_grant_the_denied_read_shares(
        format!("{}{TOKEN}{}", grant("${rg.id}"), call("GET ${arm}${rg.id}?api-version=2016-09-01", "")),
        Trial::WithoutGrant,
        Ok(Pool::Clean)
    )]
    #[case::vm_identity_assign(
        r#"
[[step]]
id = "msi"
provision = "user_assigned_identity"
name = "msi"
resource_group = "${rg.name}"

[[step]]
id = "assign"
provision = "vm_identity"
vm = "${vm.name}"
resource_group = "${rg.name}"
assign = ["${msi.id}"]
"#.to_string(),
        Trial::Normal,
        Err("changes the identities")
    )]
    #[case::patch_of_the_vm_as_deployer(
        format!("{TOKEN}{}", call("PATCH ${arm}${vm.id}?api-version=2018-06-01", "as_deployer = true")),
        Trial::Normal,
        Err("touches a shared resource")
    )]
    #[case::deployer_read_of_the_vm(
        format!("{TOKEN}{}", call("GET ${arm}${vm.id}?api-version=2018-06-01", "as_deployer = true")),
        Trial::Normal,
        Err("as the deployer")
    )]
    #[case::private_resource_without_run_id(
        r#"
[[step]]
id = "account"
provision = "storage_account"
name = "fixedname"
resource_group = "${rg.name}"
"#.to_string(),
        Trial::Normal,
        Err("without `${run_id}`")
    )]
    #[case::run_id_in_a_call(
        format!("{TOKEN}{}", call("GET ${arm}/subscriptions/${subscription_id}/resourceGroups/myResourceGroup-${run_id}?api-version=2016-09-01", "")),
        Trial::Normal,
        Err("uses `${run_id}`")
    )]
    #[case::directory_wide_grant(
        r#"
[[step]]
id = "grant"
grant = "graph_app_role"
principal = "${vm.identity.principal_id}"
role = "Directory.Read.All"
"#.to_string(),
        Trial::Normal,
        Err("directory-wide")
    )]
    fn the_sharing_rule(
        #[case] body: String,
        #[case] trial: Trial,
        #[case] want: Result<Pool, &str>,
    ) {
        let got = plan_of(&body, trial);
        match (&got, want) {
            (Ok(p), Ok(pool)) => assert_eq!(p.pool, pool),
            (Err(why), Err(reason)) => assert!(why.contains(reason), "{why}"),
            _ => panic!("{got:?}, want {want:?}"),
        }
        if let Ok(p) = got {
            assert_eq!(p.hosts, 1);
            assert!(p.steps.contains("rg") && p.steps.contains("vm"), "{p:?}");
            assert!(!p.steps.contains("account"), "{p:?}");
        }
    }

    #[test]
    fn a_grant_necessity_trial_never_shares_with_a_granting_positive_trial() {
        let granting = format!(
            "{ACCOUNT}{}{TOKEN}{}",
            grant("${account.id}"),
            call("GET ${arm}${account.id}?api-version=2017-06-01", "")
        );
        let positive = plan_of(&granting, Trial::Normal).unwrap();
        let necessity = plan_of(&granting, Trial::WithoutGrant).unwrap();
        let clean = plan_of(TOKEN, Trial::Normal).unwrap();
        assert_ne!(positive.key, necessity.key);
        assert_ne!(positive.key, clean.key);
        // The same definition in the clean pool: the necessity trial and a trial that grants
        // nothing share.
        assert_eq!(necessity.key, clean.key);
        // And two positive trials granting at their own accounts share the granting pool.
        let other = format!(
            "{ACCOUNT}{}{TOKEN}",
            grant("${account.id}/blobServices/default")
        );
        assert_eq!(plan_of(&other, Trial::Normal).unwrap().key, positive.key);
    }

    #[test]
    fn different_definitions_do_not_share() {
        let a = plan_of(TOKEN, Trial::Normal).unwrap();
        let windows = scenario(TOKEN);
        let mut windows = windows.clone();
        windows.host.os = crate::model::Os::Windows;
        assert_ne!(plan(&windows, Trial::Normal).unwrap().key, a.key);
        let mut tagged = scenario(TOKEN);
        tagged.tags.push(OPT_OUT_TAG.into());
        assert!(plan(&tagged, Trial::Normal).is_err());
    }

    #[test]
    fn every_scenario_of_the_suite_gets_a_verdict() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cat = crate::catalog::load_dir(&root.join("scenarios"), &root);
        let shared: Vec<String> = cat
            .scenarios
            .iter()
            .flat_map(|s| {
                crate::runner::trials(s).into_iter().filter_map(move |t| {
                    plan(s, t)
                        .ok()
                        .map(|p| format!("{}{} {}", s.id.value, t.suffix(), p.name))
                })
            })
            .collect();
        // The IMDS scenarios on the tutorial's plain VM share one.
        for id in ["imds/acquire-token-http", "imds/unknown-resource_rejected"] {
            assert!(
                shared.iter().any(|s| s.starts_with(&format!("{id} "))),
                "{shared:#?}"
            );
        }
        // Reader on the resource group as written: isolated.
        assert!(
            !shared
                .iter()
                .any(|s| s.starts_with("arm/linux-vm-system-assigned "))
        );
        assert!(
            !shared
                .iter()
                .any(|s| s.starts_with("arm/user-assigned-removed"))
        );
    }
}
