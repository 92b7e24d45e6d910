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
        return Err(format!("{} hosts are not shared", scenario.host.kind.name()));
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
                if mentions_fixture && !(read && !deployer) {
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
