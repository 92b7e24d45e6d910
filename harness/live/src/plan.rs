//! `mic run --backend live --dry-run`: what each scenario would create, and an estimate.
//!
//! The plan reads the scenario's steps (no request is sent): each provision step becomes
//! the resources it would create (a VM brings its virtual network and NIC), grants become
//! role assignments, in-host steps say how they would run. Names are shown as written, with
//! `${run_id}` standing for the per-trial id. Each trial (the scenario as written, and its
//! grant-necessity variant) gets its own resources.

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
                        "web app {} in {rg} (in-host steps on App Service are not supported live)",
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

/// The whole dry run as text: configuration (or its problems), then each scenario's plan.
pub fn render(scenarios: &[&Scenario], config: Result<&LiveConfig, &crate::ConfigError>) -> String {
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
    let _ = writeln!(
        out,
        "\ntotal: {} scenarios, {trials} trials, {groups} resource groups, {vms} VMs, ~${usd:.2}{}",
        scenarios.len(),
        if unknown {
            " (some sizes unpriced)"
        } else {
            ""
        }
    );
    out
}
