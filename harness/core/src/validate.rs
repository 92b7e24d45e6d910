//! Semantic checks over a parsed [`Scenario`]: everything the parser cannot see by looking at
//! one key at a time.
//!
//! Steps run in file order and bind outputs that later steps use through `${id.output}`; the
//! checks here make sure every reference names a step that has *already run*, an output that
//! step's kind actually produces, and that a grant is proven necessary (a scenario that grants
//! a role must say how some call fails without it, or it proves nothing about the article's
//! claim that the role is needed). All problems are reported at once, sorted by position.

use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, list_names, suggest};
use crate::model::{Phase, Reference, Scenario, Span, Step, StepKind, Template};
use crate::roles;
use crate::schema::{self, BUILTIN_PATHS, BUILTINS};

/// Check one scenario.
pub fn validate(scenario: &Scenario) -> Vec<Diagnostic> {
    validate_with(scenario, &[])
}

/// Check one scenario that was parsed leniently: references to the `unresolved` steps (whose
/// kind could not be parsed, already reported) are not reported again.
pub fn validate_with(scenario: &Scenario, unresolved: &[(usize, String)]) -> Vec<Diagnostic> {
    let mut v = Validator {
        s: scenario,
        unresolved,
        ids: HashMap::new(),
        diags: Vec::new(),
    };
    v.step_ids();
    for step in &scenario.steps {
        v.step_references(step);
        v.step_id_fields(step);
        v.role(step);
    }
    v.grant_necessity();
    v.diags.sort_by_key(|d| d.span.start);
    v.diags
}

/// Duplicate scenario ids across files: the second and later uses are reported, pointing back
/// at the first.
pub fn duplicate_scenario_ids<'a>(
    scenarios: impl IntoIterator<Item = &'a Scenario>,
) -> Vec<Diagnostic> {
    let mut first: HashMap<&str, &Scenario> = HashMap::new();
    let mut out = Vec::new();
    for s in scenarios {
        if s.id.value.is_empty() {
            continue;
        }
        if let Some(prev) = first.get(s.id.value.as_str()) {
            out.push(
                Diagnostic::new(
                    "E0208",
                    format!("duplicate scenario id `{}`", s.id.value),
                    &s.file,
                    s.id.span,
                    "this id is already used",
                )
                .with_secondary_in(&prev.file, prev.id.span, "first used here")
                .with_help(format!(
                    "scenario ids must be unique across the suite; name this one after its file, e.g. `{}`",
                    id_from_path(&s.file.path)
                )),
            );
        } else {
            first.insert(&s.id.value, s);
        }
    }
    out
}

/// `area/name` from `.../area/name.toml`.
fn id_from_path(path: &std::path::Path) -> String {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("name");
    let area = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .unwrap_or("area");
    format!("{area}/{name}")
}

fn qualified(kind: &StepKind) -> String {
    match kind {
        StepKind::Call { .. } => "call".to_string(),
        k => format!("{} = \"{}\"", k.phase().key(), k.key()),
    }
}

struct Validator<'a> {
    s: &'a Scenario,
    unresolved: &'a [(usize, String)],
    /// First step with each id.
    ids: HashMap<&'a str, &'a Step>,
    diags: Vec<Diagnostic>,
}

impl<'a> Validator<'a> {
    fn diag(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn new_diag(
        &self,
        code: &'static str,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(code, message, &self.s.file, span, label)
    }

    fn step_ids(&mut self) {
        let s = self.s;
        for step in &s.steps {
            let id = step.id.value.as_str();
            if let Some(first) = self.ids.get(id) {
                let d = self
                    .new_diag(
                        "E0201",
                        format!("duplicate step id `{id}`"),
                        step.id.span,
                        format!("step {} reuses this id", step.index + 1),
                    )
                    .with_secondary(
                        first.id.span,
                        format!("first used by step {}", first.index + 1),
                    )
                    .with_help(format!(
                        "give each step its own `id`, otherwise references such as `${{{id}.id}}` would be ambiguous"
                    ));
                self.diag(d);
            } else {
                self.ids.insert(id, step);
            }
            if let Some((b, _)) = BUILTINS.iter().find(|(b, _)| *b == id) {
                let d = self
                    .new_diag(
                        "E0210",
                        format!("step id `{id}` shadows the builtin `${{{b}}}`"),
                        step.id.span,
                        "same name as a builtin",
                    )
                    .with_help("rename the step; references to this name resolve to the builtin");
                self.diag(d);
            }
        }
    }

    fn step_templates(step: &'a Step) -> Vec<&'a Template> {
        let mut out = Vec::new();
        if let StepKind::Call { url, .. } = &step.kind.value {
            out.push(url);
        }
        for (name, f) in &step.fields.map {
            // `token` and `host` name steps and are checked in `step_id_fields`.
            if name == "token" || name == "host" {
                continue;
            }
            out.extend(f.value.value.templates());
        }
        for e in [&step.expect, &step.denied_without_grant]
            .into_iter()
            .flatten()
        {
            out.extend(e.templates());
        }
        out
    }

    fn step_references(&mut self, step: &'a Step) {
        for t in Self::step_templates(step) {
            for r in t.references() {
                self.reference(step, r);
            }
        }
    }

    /// Span of the root name inside a reference (the whole reference when escapes make the
    /// source text differ from the name).
    fn root_span(r: &Reference) -> Span {
        if r.span.end - r.span.start == r.dotted().len() {
            Span::new(r.span.start, r.span.start + r.root.len())
        } else {
            r.span
        }
    }

    fn path_span(r: &Reference) -> Span {
        if r.span.end - r.span.start == r.dotted().len() && !r.path.is_empty() {
            Span::new(r.span.start + r.root.len() + 1, r.span.end)
        } else {
            r.span
        }
    }

    fn reference(&mut self, step: &'a Step, r: &Reference) {
        let root = r.root.as_str();
        if BUILTINS.iter().any(|(b, _)| *b == root) {
            self.builtin(r);
            return;
        }
        if let Some(target) = self.ids.get(root).copied() {
            if target.index >= step.index {
                self.later(step, target, r.span, Self::root_span(r), root);
                return;
            }
            let spec = schema::kind_spec(&target.kind.value);
            if !spec.has_output(&r.path) {
                let q = qualified(&target.kind.value);
                let names = spec.output_names();
                let path = r.path.join(".");
                let d = if r.path.is_empty() {
                    self.new_diag(
                        "E0205",
                        format!("`${{{root}}}` needs an output name"),
                        r.span,
                        format!("step `{root}` is a `{q}` step"),
                    )
                    .with_help(format!(
                        "name one of its outputs, e.g. `${{{root}.{}}}`",
                        names.first().map_or("id", String::as_str)
                    ))
                } else {
                    let d = self.new_diag(
                        "E0205",
                        format!("unknown output `{path}` of step `{root}`"),
                        Self::path_span(r),
                        format!("`{q}` steps have no output `{path}`"),
                    );
                    match suggest(&path, names.iter().map(String::as_str)) {
                        Some(s) => d.with_help(format!("did you mean `${{{root}.{s}}}`?")),
                        None => d.with_note(format!(
                            "outputs of `{q}` steps are {}",
                            list_names(names.iter().map(String::as_str))
                        )),
                    }
                };
                self.diag(d);
            }
            return;
        }
        if self.unresolved.iter().any(|(_, id)| id == root) {
            return;
        }
        let mut candidates: Vec<&str> = self.ids.keys().copied().collect();
        candidates.sort_unstable();
        candidates.extend(BUILTINS.iter().map(|(b, _)| *b));
        let d = self.new_diag(
            "E0202",
            format!("unknown step or builtin `{root}`"),
            Self::root_span(r),
            "no step or builtin has this name",
        );
        let d = match suggest(root, candidates.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_note(format!(
                "steps are {}; builtins are {}",
                list_names(self.s.steps.iter().map(|s| s.id.value.as_str())),
                list_names(BUILTINS.iter().map(|(b, _)| *b))
            )),
        };
        self.diag(d);
    }

    /// A reference from `step` to `target`, which runs at the same time or later.
    fn later(&mut self, step: &Step, target: &Step, _whole: Span, span: Span, root: &str) {
        let (n, m) = (step.index + 1, target.index + 1);
        let d = if target.index == step.index {
            self.new_diag(
                "E0203",
                format!("step `{root}` refers to its own output"),
                span,
                "a step's outputs exist only after it runs",
            )
            .with_help("use an output of an earlier step")
        } else if target.phase() == Phase::FetchToken {
            self.new_diag(
                "E0204",
                format!("token `{root}` is used before it is fetched"),
                span,
                format!("used here, in step {n}"),
            )
            .with_secondary(
                target.kind.span,
                format!("fetched by step {m}, after this one"),
            )
            .with_help(format!(
                "move the `fetch_token` step `{root}` before step {n}; steps run in file order"
            ))
        } else {
            self.new_diag(
                "E0203",
                format!("`{root}` is defined by step {m}, after this one"),
                span,
                format!("used here, in step {n}"),
            )
            .with_secondary(target.kind.span, format!("step {m} runs after step {n}"))
            .with_help(format!(
                "steps run in file order: move step {m} (`{root}`) before step {n}"
            ))
        };
        self.diag(d);
    }

    fn builtin(&mut self, r: &Reference) {
        let root = r.root.as_str();
        let path = r.path.join(".");
        match BUILTIN_PATHS.iter().find(|(b, _)| *b == root) {
            Some((_, fields)) => {
                if r.path.len() == 1 && fields.contains(&path.as_str()) {
                    return;
                }
                let d = if r.path.is_empty() {
                    self.new_diag(
                        "E0205",
                        format!("`${{{root}}}` needs a field"),
                        r.span,
                        format!("`{root}` is a group of values"),
                    )
                    .with_help(format!(
                        "use one of {}",
                        list_names(
                            fields
                                .iter()
                                .map(|f| format!("${{{root}.{f}}}"))
                                .collect::<Vec<_>>()
                                .iter()
                                .map(String::as_str)
                        )
                    ))
                } else {
                    let d = self.new_diag(
                        "E0205",
                        format!("unknown field `{path}` of builtin `{root}`"),
                        Self::path_span(r),
                        "no such field",
                    );
                    match suggest(&path, fields.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `${{{root}.{s}}}`?")),
                        None => d.with_note(format!(
                            "fields of `{root}` are {}",
                            list_names(fields.iter().copied())
                        )),
                    }
                };
                self.diag(d);
            }
            None => {
                if !r.path.is_empty() {
                    let d = self
                        .new_diag(
                            "E0205",
                            format!("builtin `{root}` has no field `{path}`"),
                            Self::path_span(r),
                            "no such field",
                        )
                        .with_help(format!("`{root}` is a plain value: write `${{{root}}}`"));
                    self.diag(d);
                }
            }
        }
    }

    /// `token = "<fetch_token step id>"` on calls, `host = "<vm step id>"` on fetch_token steps.
    fn step_id_fields(&mut self, step: &'a Step) {
        for (field, want) in [("token", "fetch_token"), ("host", "vm")] {
            let Some(f) = step.fields.map.get(field) else {
                continue;
            };
            let Some(t) = step.fields.template(field) else {
                continue;
            };
            let span = f.value.span;
            if t.references().next().is_some() {
                let d = self
                    .new_diag(
                        "E0209",
                        format!("`{field}` takes a step id, not a reference"),
                        span,
                        "a reference here",
                    )
                    .with_help(if field == "token" {
                        "write the id of the fetch_token step, e.g. `token = \"token\"`"
                    } else {
                        "write the id of the provision step of the VM, e.g. `host = \"vm\"`"
                    });
                self.diag(d);
                continue;
            }
            let name = t.raw.as_str();
            let is_right_kind = |s: &Step| match want {
                "fetch_token" => s.phase() == Phase::FetchToken,
                _ => {
                    matches!(
                        s.kind.value.key(),
                        "vm" | "vmss" | "vm_identity" | "vmss_identity"
                    ) && s.phase() == Phase::Provision
                }
            };
            let wanted = if want == "fetch_token" {
                "a `fetch_token` step".to_string()
            } else {
                "a `provision = \"vm\"` or `provision = \"vmss\"` step".to_string()
            };
            match self.ids.get(name).copied() {
                None => {
                    if self.unresolved.iter().any(|(_, id)| id == name) {
                        continue;
                    }
                    let candidates: Vec<&str> = self
                        .s
                        .steps
                        .iter()
                        .filter(|s| is_right_kind(s))
                        .map(|s| s.id.value.as_str())
                        .collect();
                    let d = self.new_diag(
                        "E0202",
                        format!("`{field}` names no step: `{name}`"),
                        span,
                        format!("expected the id of {wanted}"),
                    );
                    let d = match suggest(name, candidates.iter().copied()) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None if candidates.is_empty() => {
                            d.with_help(format!("add {wanted} before this one"))
                        }
                        None => d.with_note(format!(
                            "candidates are {}",
                            list_names(candidates.iter().copied())
                        )),
                    };
                    self.diag(d);
                }
                Some(target) if !is_right_kind(target) => {
                    let d = self
                        .new_diag(
                            "E0209",
                            format!(
                                "`{field}` must name {wanted}, but `{name}` is a `{}` step",
                                qualified(&target.kind.value)
                            ),
                            span,
                            format!("not {wanted}"),
                        )
                        .with_secondary(target.kind.span, format!("`{name}` is defined here"));
                    self.diag(d);
                }
                Some(target) if target.index >= step.index => {
                    self.later(step, target, span, span, name);
                }
                Some(_) => {}
            }
        }
    }

    fn role(&mut self, step: &Step) {
        if step.kind.value.key() != "role_assignment" {
            return;
        }
        let (Some(t), Some(f)) = (step.fields.template("role"), step.fields.get("role")) else {
            return;
        };
        if t.references().next().is_some() || roles::find_role(&t.raw).is_some() {
            return;
        }
        let names: Vec<&str> = roles::builtin_roles()
            .iter()
            .map(|r| r.role_name.as_str())
            .collect();
        let d = self.new_diag(
            "E0206",
            format!("unknown role `{}`", t.raw),
            f.span,
            "not a built-in role",
        );
        let d = match suggest(&t.raw, names.iter().copied()) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_note(format!(
                "built-in roles known to mic (data/azure/builtin-roles.json) are {}",
                list_names(names.iter().copied())
            )),
        };
        self.diag(d);
    }

    fn grant_necessity(&mut self) {
        let s = self.s;
        let first_grant = s.steps.iter().find(|st| st.phase() == Phase::Grant);
        let denied = s.steps.iter().find(|st| st.denied_without_grant.is_some());
        match (first_grant, denied) {
            (Some(g), None) if self.unresolved.is_empty() => {
                let d = self
                    .new_diag("E0207", "this scenario grants access but never shows the grant is needed", g.kind.span, "no step says how it fails without this grant")
                    .with_help("add `denied_without_grant = { status = 403, code = \"AuthorizationFailed\" }` to the call that needs the grant; the harness then reruns the scenario without its grant steps and checks that call is denied");
                self.diag(d);
            }
            (None, Some(st)) if self.unresolved.is_empty() => {
                let span = st.denied_without_grant.as_ref().map_or(st.span, |e| e.span);
                let d = self
                    .new_diag("E0211", "`denied_without_grant` in a scenario without grant steps", span, "there is no grant to remove")
                    .with_help("remove `denied_without_grant`, or add the `grant` step this call depends on");
                self.diag(d);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::check_str;
    use rstest::rstest;

    const REAL: &str = include_str!("../../../scenarios/arm/linux-vm-system-assigned.toml");

    /// Apply edits to the real scenario and return the codes of all diagnostics.
    fn codes(edits: &[(&str, &str)]) -> Vec<&'static str> {
        let mut text = REAL.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        match check_str("x.toml", text) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.code).collect(),
        }
    }

    #[rstest]
    #[case::valid(&[], &[])]
    #[case::self_reference(&[("name = \"DevTest-${run_id}\"", "name = \"DevTest-${rg.name}\"")], &["E0203"])]
    #[case::unknown_step(&[("${rg.id}", "${rgg.id}")], &["E0202"])]
    #[case::unknown_root_no_suggestion(&[("${rg.id}", "${zzzzzz.id}")], &["E0202"])]
    #[case::missing_output_name(&[("${rg.id}", "${rg}")], &["E0205"])]
    #[case::token_alone_is_fine(&[("Bearer ${token.access_token}", "Bearer ${token}")], &[])]
    #[case::body_paths_are_open(&[("${rg.id}", "${rg.body.properties.anything.0}")], &[])]
    #[case::builtin_with_field(&[("${arm}", "${arm.url}")], &["E0205"])]
    #[case::builtin_group_field(&[("${run_id}", "${deployer.objectid}")], &["E0205"])]
    #[case::builtin_group_bare(&[("${run_id}", "${deployer}")], &["E0205"])]
    #[case::builtin_group_ok(&[("${run_id}", "${host.name}")], &[])]
    #[case::step_shadows_builtin(&[("id = \"read-rg\"", "id = \"host\"")], &["E0210"])]
    #[case::token_field_later(&[("headers = { Authorization = \"Bearer ${token.access_token}\" }", "token = \"token2\""), ("code = \"AuthorizationFailed\" }\n", "code = \"AuthorizationFailed\" }\n\n[[step]]\nid = \"token2\"\nfetch_token = \"imds\"\nresource = \"x\"\n")], &["E0204"])]
    #[case::output_path_typo(&[("${rg.id}", "${rg.nmae}")], &["E0205"])]
    #[case::token_field_ok(&[("headers = { Authorization = \"Bearer ${token.access_token}\" }", "token = \"token\"")], &[])]
    #[case::token_field_unknown(&[("headers = { Authorization = \"Bearer ${token.access_token}\" }", "token = \"tokn\"")], &["E0202"])]
    #[case::token_field_reference(&[("headers = { Authorization = \"Bearer ${token.access_token}\" }", "token = \"${token.access_token}\"")], &["E0209"])]
    #[case::host_field_ok(&[("resource = \"https://management.azure.com/\"", "resource = \"https://management.azure.com/\"\nhost = \"vm\"")], &[])]
    #[case::host_field_wrong_kind(&[("resource = \"https://management.azure.com/\"", "resource = \"https://management.azure.com/\"\nhost = \"rg\"")], &["E0209"])]
    #[case::role_case_insensitive(&[("role = \"Reader\"", "role = \"reader\"")], &[])]
    #[case::role_unknown_no_suggestion(&[("role = \"Reader\"", "role = \"Global Administrator\"")], &["E0206"])]
    #[case::role_reference_not_checked(&[("role = \"Reader\"", "role = \"${host.name}\"")], &[])]
    #[case::denied_without_grants(&[("grant = \"role_assignment\"\nrole = \"Reader\"\nprincipal = \"${vm.identity.principal_id}\"\nscope = \"${rg.id}\"\n", "call = \"GET ${arm}\"\n")], &["E0211"])]
    #[case::unresolved_step_not_cascading(&[("provision = \"vm\"", "provision = \"vmm\"")], &["E0110"])]
    #[case::unresolved_grant_not_cascading(&[("grant = \"role_assignment\"", "grant = \"role\"")], &["E0110"])]
    #[case::all_at_once(&[("${rg.id}", "${rgg.id}"), ("role = \"Reader\"", "role = \"Reeder\""), ("id = \"read-rg\"", "id = \"vm\"")], &["E0206", "E0202", "E0201"])]
    fn checks(#[case] edits: &[(&str, &str)], #[case] want: &[&str]) {
        assert_eq!(codes(edits), want);
    }

    #[test]
    fn suggestions_name_the_right_thing() {
        let text = REAL.replacen("${rg.id}", "${rgg.id}", 1);
        let d = check_str("x.toml", text).expect_err("invalid");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `rg`?"));
        let text = REAL.replacen(
            "${vm.identity.principal_id}",
            "${vm.identiy.principal_id}",
            1,
        );
        let d = check_str("x.toml", text).expect_err("invalid");
        assert_eq!(
            d[0].help.as_deref(),
            Some("did you mean `${vm.identity.principal_id}`?")
        );
        let text = REAL.replacen("${rg.id}", "${rg.nmae}", 1);
        let d = check_str("x.toml", text).expect_err("invalid");
        assert_eq!(d[0].help.as_deref(), Some("did you mean `${rg.name}`?"));
    }
}
