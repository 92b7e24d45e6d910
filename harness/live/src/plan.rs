//! `mic run --backend live --dry-run`: what each scenario would create, and an estimate.
//!
//! The plan reads the scenario's steps (no request is sent): each provision step becomes
//! the resources it would create (a VM brings its virtual network and NIC), grants become
//! role assignments, in-host steps say how they would run. Names are shown as written, with
//! `${run_id}` standing for the per-trial id. Each trial (the scenario as written, and its
//! grant-necessity variant) gets its own resources, except where trials would share a
//! fixture (resource groups, identities, VM) by the run's own rule ([`mic_core::share`]):
//! [`sharing`] lists those fixtures with their members, the VMs created with and without
//! sharing and the estimate accordingly (a fixture's VM priced once).

use std::fmt::Write as _;

use mic_core::model::{GrantKind, Os, ProvisionKind, Scenario, StepKind};
use mic_core::runner;

use crate::config::LiveConfig;
use crate::cost::CostEstimate;

/// Typical minutes a VM exists per trial (create, steps through Run Command, delete).
pub const LINUX_VM_MINUTES: f64 = 15.0;
pub const WINDOWS_VM_MINUTES: f64 = 25.0;

/// One resource or action of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    /// 1-based step number and id.
    pub step: String,
    /// `create`, `update`, `grant`, `in-host`, `call`.
    pub action: &'static str,
    pub what: String,
}

/// One scenario's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario_id: String,
    pub trials: usize,
    pub items: Vec<PlanItem>,
    pub resource_groups: usize,
    pub vms: usize,
    pub cost: CostEstimate,
}

fn field(step: &mic_core::model::Step, name: &str) -> Option<String> {
    step.fields.template(name).map(|t| t.raw.clone())
}

fn list(step: &mic_core::model::Step, name: &str) -> Vec<String> {
    step.fields
        .templates(name)
        .into_iter()
        .map(|t| t.raw.clone())
        .collect()
}

/// The plan of one scenario; `config` supplies sizes and the in-host mode when present.
pub fn plan(scenario: &Scenario, config: Option<&LiveConfig>) -> Plan {
    let windows = scenario.host.os == Os::Windows;
    let size = match (config, windows) {
        (Some(c), false) => c.linux_vm_size.clone(),
        (Some(c), true) => c.windows_vm_size.clone(),
        (None, false) => "Standard_B1s".into(),
        (None, true) => "Standard_B2s".into(),
    };
    let image = if windows {
        "Windows Server 2019 Datacenter"
    } else {
        "Ubuntu 22.04 LTS"
    };
    let in_host = match config.map(|c| c.in_host) {
        _ if scenario.host.kind == mic_core::model::HostKind::AppService => {
            if windows {
                "through Kudu (POST https://<site>.scm.azurewebsites.net/api/command, PowerShell)"
            } else {
                "through Kudu (POST https://<site>.scm.azurewebsites.net/api/command, bash + curl)"
            }
        }
        Some(crate::config::InHostMode::Local) => "locally (mic runs on the VM)",
        _ => {
            if windows {
                "through Run Command (RunPowerShellScript, Invoke-WebRequest)"
            } else {
                "through Run Command (RunShellScript, curl)"
            }
        }
    };
    let mut items = Vec::new();
    let (mut groups, mut vms) = (0, 0);
    for step in &scenario.steps {
        let label = format!("{} {}", step.index + 1, step.id.value);
        let mut push = |action, what: String| {
            items.push(PlanItem {
                step: label.clone(),
                action,
                what,
            });
        };
        let rg = field(step, "resource_group").unwrap_or_default();
        match &step.kind.value {
            StepKind::Provision(kind) => match kind {
                ProvisionKind::ResourceGroup => {
                    groups += 1;
                    push(
                        "create",
                        format!(
                            "resource group {} (tags mic-run, mic-scenario, mic-env, DeleteAfter)",
                            field(step, "name").unwrap_or_default()
                        ),
                    );
                }
                ProvisionKind::UserAssignedIdentity => {
                    push(
                        "create",
                        format!(
                            "user-assigned identity {} in {rg}",
                            field(step, "name").unwrap_or_default()
                        ),
                    );
                }
                ProvisionKind::Vm | ProvisionKind::Vmss => {
                    vms += 1;
                    let name = field(step, "name").unwrap_or_else(|| scenario.host.name.clone());
                    let system = step
                        .fields
                        .bool("system_assigned")
                        .unwrap_or(scenario.host.system_assigned);
                    let users = list(step, "user_assigned");
                    let identity = match (system, users.is_empty()) {
                        (true, true) => "system-assigned".to_string(),
                        (s, false) => format!(
                            "{}user-assigned {}",
                            if s { "system-assigned + " } else { "" },
                            users.join(", ")
                        ),
                        (false, true) => "none".to_string(),
                    };
                    push("create", format!("virtual network {name}-vnet in {rg}"));
                    if *kind == ProvisionKind::Vm {
                        push("create", format!("network interface {name}-nic in {rg}"));
                        push(
                            "create",
                            format!("VM {name} in {rg}: {size}, {image}, identity {identity}"),
                        );
                    } else {
                        push(
                            "create",
                            format!(
                                "scale set {name} in {rg}: 1 x {size}, {image}, identity {identity}"
                            ),
                        );
                    }
                }
                ProvisionKind::VmIdentity | ProvisionKind::VmssIdentity => {
                    let target = field(step, "vm")
                        .or_else(|| field(step, "vmss"))
                        .unwrap_or_default();
                    let mut what = format!("identity of {target} in {rg}");
                    for (k, label) in [("assign", "assign"), ("remove", "remove")] {
                        let l = list(step, k);
                        if !l.is_empty() {
                            let _ = write!(what, "; {label} {}", l.join(", "));
                        }
                    }
                    push("update", what);
                }
                ProvisionKind::StorageAccount => push(
                    "create",
                    format!(
                        "storage account {} in {rg} ({})",
                        field(step, "name").unwrap_or_default(),
                        field(step, "sku").unwrap_or_else(|| "Standard_LRS".into())
                    ),
                ),
                ProvisionKind::AppService => push(
                    "create",
                    format!(
                        "web app {} in {rg} (in-host steps through its Kudu site; the deployer needs Microsoft.Web/sites/publish/Action)",
                        field(step, "name").unwrap_or_else(|| scenario.host.name.clone())
                    ),
                ),
                // Data-plane resources (vaults, accounts, servers...): named by their kind.
                #[allow(unreachable_patterns)]
                other => push(
                    "create",
                    format!(
                        "{} {} in {rg}",
                        other.key().replace('_', " "),
                        field(step, "name").unwrap_or_default()
                    ),
                ),
            },
            StepKind::Grant(GrantKind::RoleAssignment) => push(
                "grant",
                format!(
                    "role assignment {} for {} at {}",
                    field(step, "role").unwrap_or_default(),
                    field(step, "principal").unwrap_or_default(),
                    field(step, "scope").unwrap_or_default()
                ),
            ),
            #[allow(unreachable_patterns)]
            StepKind::Grant(other) => push(
                "grant",
                format!(
                    "{} for {}",
                    other.key().replace('_', " "),
                    field(step, "principal")
                        .or_else(|| field(step, "name"))
                        .unwrap_or_default()
                ),
            ),
            StepKind::FetchToken(source) => push(
                "in-host",
                format!(
                    "{} token request on {} {in_host}",
                    source.key(),
                    scenario.host.name
                ),
            ),
            StepKind::Call { method, url } => push("call", format!("{method} {}", url.raw)),
        }
    }
    let trials = runner::trials(scenario).len();
    let minutes = if windows {
        WINDOWS_VM_MINUTES
    } else {
        LINUX_VM_MINUTES
    };
    #[allow(clippy::cast_precision_loss)]
    let vm_minutes = (vms * trials) as f64 * minutes;
    Plan {
        scenario_id: scenario.id.value.clone(),
        trials,
        items,
        resource_groups: groups,
        vms,
        cost: CostEstimate::new(&size, windows, vm_minutes),
    }
}

/// One fixture trials would share (the run's rule: [`mic_core::share`] through
/// [`runner::shared_fixtures`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SharedFixture {
    /// `shared-<pool>-<hash>`, as the run names it.
    pub name: String,
    pub pool: &'static str,
    /// VMs and scale sets it holds.
    pub hosts: usize,
    /// Resource groups it holds.
    pub resource_groups: usize,
    /// The trials it would serve, as the run names them (`<id>::live[::without-grant]`).
    pub members: Vec<String>,
    /// The estimated cost of its VMs, priced once (`None`: size unpriced).
    pub usd: Option<f64>,
}

/// What sharing would save over the selected scenarios, all their trials.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharingPlan {
    pub fixtures: Vec<SharedFixture>,
    /// VMs and scale sets created with sharing / without.
    pub vms: usize,
    pub vms_without_sharing: usize,
    pub resource_groups: usize,
    pub resource_groups_without_sharing: usize,
    /// Estimated cost with sharing / without (`None` when a size is unpriced).
    pub usd: Option<f64>,
    pub usd_without_sharing: Option<f64>,
}

/// The sharing a live run of `scenarios` would do (`share`: `false` for `--no-share`).
pub fn sharing(scenarios: &[&Scenario], config: Option<&LiveConfig>, share: bool) -> SharingPlan {
    let work: Vec<(std::sync::Arc<Scenario>, mic_core::driver::Trial)> = scenarios
        .iter()
        .flat_map(|s| {
            let s = std::sync::Arc::new((*s).clone());
            runner::trials(&s).into_iter().map(move |t| (s.clone(), t))
        })
        .collect();
    let plans: std::collections::BTreeMap<&str, Plan> = scenarios
        .iter()
        .map(|s| (s.id.value.as_str(), plan(s, config)))
        .collect();
    let mut out = SharingPlan::default();
    let mut usd = Some(0.0);
    for p in plans.values() {
        out.vms_without_sharing += p.vms * p.trials;
        out.resource_groups_without_sharing += p.resource_groups * p.trials;
        usd = usd.zip(p.cost.usd).map(|(a, b)| a + b);
    }
    out.usd_without_sharing = usd;
    out.vms = out.vms_without_sharing;
    out.resource_groups = out.resource_groups_without_sharing;
    out.usd = usd;
    if !share {
        return out;
    }
    for (fixture, members) in runner::shared_fixtures(&work) {
        let first = &work[members[0]].0;
        let p = &plans[first.id.value.as_str()];
        let groups = first
            .steps
            .iter()
            .filter(|st| {
                fixture.steps.contains(&st.id.value)
                    && matches!(
                        st.kind.value,
                        StepKind::Provision(ProvisionKind::ResourceGroup)
                    )
            })
            .count();
        // One trial's VM-minutes price one VM of this scenario.
        #[allow(clippy::cast_precision_loss)]
        let per_host = p
            .cost
            .usd
            .filter(|_| p.vms > 0)
            .map(|u| u / (p.vms * p.trials) as f64);
        #[allow(clippy::cast_precision_loss)]
        let fixture_usd = per_host.map(|u| u * fixture.hosts as f64);
        let saved = members.len() - 1;
        out.vms -= saved * fixture.hosts;
        out.resource_groups -= saved * groups;
        #[allow(clippy::cast_precision_loss)]
        {
            out.usd = out
                .usd
                .zip(fixture_usd)
                .map(|(total, f)| total - f * saved as f64);
        }
        out.fixtures.push(SharedFixture {
            name: fixture.name.clone(),
            pool: fixture.pool.name(),
            hosts: fixture.hosts,
            resource_groups: groups,
            members: members
                .iter()
                .map(|&i| {
                    let (s, t) = &work[i];
                    format!("{}::live{}", s.id.value, t.suffix())
                })
                .collect(),
            usd: fixture_usd,
        });
    }
    out
}

fn usd_text(usd: Option<f64>) -> String {
    usd.map_or_else(|| "price unknown".to_string(), |u| format!("~${u:.2}"))
}

/// The sharing section of the dry run.
pub fn render_sharing(plan: &SharingPlan, share: bool) -> String {
    let mut out = String::new();
    if !share {
        let _ = writeln!(
            out,
            "\nsharing: off (--no-share): every trial creates its own resource groups, identities and VMs"
        );
        return out;
    }
    let served: usize = plan.fixtures.iter().map(|f| f.members.len()).sum();
    let _ = writeln!(
        out,
        "\nsharing (the run's rule, mic_core::share): {} fixture{} would serve {served} trials",
        plan.fixtures.len(),
        if plan.fixtures.len() == 1 { "" } else { "s" }
    );
    for f in &plan.fixtures {
        let _ = writeln!(
            out,
            "  {} ({} pool): {} VM{}, {} resource group{}, created once ({}), shared by {} trials:",
            f.name,
            f.pool,
            f.hosts,
            if f.hosts == 1 { "" } else { "s" },
            f.resource_groups,
            if f.resource_groups == 1 { "" } else { "s" },
            f.usd
                .map_or_else(|| "price unknown".to_string(), |u| format!("~${u:.4}")),
            f.members.len()
        );
        for m in &f.members {
            let _ = writeln!(out, "    {m}");
        }
    }
    let _ = writeln!(
        out,
        "VMs and scale sets created: {} (without sharing: {})",
        plan.vms, plan.vms_without_sharing
    );
    let _ = writeln!(
        out,
        "resource groups created: {} (without sharing: {})",
        plan.resource_groups, plan.resource_groups_without_sharing
    );
    let _ = writeln!(
        out,
        "estimated VM cost: {} (without sharing: {})",
        usd_text(plan.usd),
        usd_text(plan.usd_without_sharing)
    );
    out
}

/// The whole dry run as text: configuration (or its problems), then each scenario's plan,
/// then the sharing plan (as `mic run --backend live` would share, i.e. without `--no-share`).
pub fn render(scenarios: &[&Scenario], config: Result<&LiveConfig, &crate::ConfigError>) -> String {
    render_with(scenarios, config, true)
}

/// [`render`] with sharing on or off (`--no-share`).
pub fn render_with(
    scenarios: &[&Scenario],
    config: Result<&LiveConfig, &crate::ConfigError>,
    share: bool,
) -> String {
    let mut out = String::from("live backend dry run: nothing will be created\n");
    match config {
        Ok(c) => {
            for l in c.summary().lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  (a real run would stop here)");
            for l in e.to_string().lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
    }
    let config = config.ok();
    let (mut groups, mut vms, mut trials, mut usd, mut unknown) = (0, 0, 0, 0.0, false);
    for s in scenarios {
        let p = plan(s, config);
        let _ = writeln!(
            out,
            "\n{} ({} trial{})",
            p.scenario_id,
            p.trials,
            if p.trials == 1 { "" } else { "s" }
        );
        let width = p.items.iter().map(|i| i.step.len()).max().unwrap_or(0);
        for i in &p.items {
            let _ = writeln!(out, "  {:width$}  {:7} {}", i.step, i.action, i.what);
        }
        let _ = writeln!(out, "  estimate: {}", p.cost);
        groups += p.resource_groups * p.trials;
        vms += p.vms * p.trials;
        trials += p.trials;
        match p.cost.usd {
            Some(u) => usd += u,
            None => unknown = true,
        }
    }
    let sharing = sharing(scenarios, config, share);
    out.push_str(&render_sharing(&sharing, share));
    let _ = writeln!(
        out,
        "\ntotal: {} scenarios, {trials} trials, {} resource groups, {} VMs, {}{}",
        scenarios.len(),
        sharing.resource_groups,
        sharing.vms,
        usd_text(sharing.usd),
        if unknown {
            " (some sizes unpriced)"
        } else {
            ""
        }
    );
    if share && sharing.vms != vms {
        let _ = writeln!(
            out,
            "       without sharing: {groups} resource groups, {vms} VMs, ~${usd:.2}"
        );
    }
    out
}
