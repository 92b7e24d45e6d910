//! Test helpers: JWTs, configuration maps, temporary directories, a small stateful ARM
//! ("mini ARM") on wiremock, and scenarios built in code.
#![allow(dead_code, clippy::missing_panics_doc)]

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mic_core::model::{
    Article, BackendKind, Expect, Field, FieldValue, Fields, Host, HostKind, Os, Reference,
    Scenario, SourceFile, Span, Spanned, Step, StepKind, Template, TemplatePart,
};
use mic_live::runcommand;
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const SUB: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
pub const DEPLOYER_OID: &str = "99999999-8888-7777-6666-555555555555";
pub const SECRET: &str = "Sup3r~Secr3t.Value_for-tests";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

pub fn jwt(claims: &Value) -> String {
    let e = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk",
        e(&json!({"alg": "RS256", "typ": "JWT"})),
        e(claims)
    )
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let p =
            std::env::temp_dir().join(format!("mic-live-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Variables for a client-secret configuration against `server`.
pub fn vars(server: &str, ledger: &std::path::Path) -> BTreeMap<String, String> {
    [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_SUBSCRIPTION_ID", SUB),
        ("AZURE_LOCATION", "eastus"),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", SECRET),
        ("MIC_LIVE_ARM_ENDPOINT", server),
        ("AZURE_AUTHORITY_HOST", server),
        ("MIC_LIVE_IN_HOST", "run-command"),
        ("MIC_LIVE_RUN_ID", "test-run"),
        ("MIC_LIVE_MAX_POLL_SECS", "1"),
        ("MIC_LIVE_PROPAGATION_BUDGET_SECS", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        "MIC_LIVE_LEDGER_DIR".to_string(),
        ledger.display().to_string(),
    )])
    .collect()
}

// ------------------------------------------------------------------ mini ARM

#[derive(Default)]
pub struct State {
    /// lowercase id -> resource body.
    pub resources: BTreeMap<String, Value>,
    /// operation id -> (polls left before Succeeded, result body).
    pub ops: BTreeMap<String, (u32, Value)>,
    /// Statuses the next ARM requests get (429 carries Retry-After: 1).
    pub faults: VecDeque<u16>,
    /// (principal, scope lowercase, effective at).
    pub assignments: Vec<(String, String, Instant)>,
    pub propagation_delay: Duration,
    /// (method, path) of every request.
    pub log: Vec<(String, String)>,
    /// Requests whose Authorization did not verify.
    pub unauthorized: usize,
    pub run_commands: usize,
    /// `commandId` of each Run Command and `vmSize` of each VM PUT, as received.
    pub command_ids: Vec<String>,
    pub vm_sizes: Vec<String>,
}

/// A stateful ARM + token service + Run Command that "executes" scripts against a fake IMDS.
#[derive(Clone)]
pub struct MiniArm {
    pub base: String,
    pub state: Arc<Mutex<State>>,
    pub latency: Duration,
}

impl MiniArm {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            state: Arc::new(Mutex::new(State::default())),
            latency: Duration::ZERO,
        }
    }

    pub fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn groups(&self) -> Vec<String> {
        self.st()
            .resources
            .keys()
            .filter(|k| k.split('/').count() == 5 && k.contains("/resourcegroups/"))
            .cloned()
            .collect()
    }

    fn json(status: u16, body: &Value) -> ResponseTemplate {
        ResponseTemplate::new(status)
            .set_body_raw(body.to_string(), "application/json; charset=utf-8")
    }

    fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
        Self::json(
            status,
            &json!({"error": {"code": code, "message": message}}),
        )
    }

    fn token_response(req: &Request) -> ResponseTemplate {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        if form.get("client_secret").map(String::as_str) != Some(SECRET) {
            return Self::json(
                401,
                &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: x"}),
            );
        }
        let t = jwt(
            &json!({"aud": form.get("resource"), "oid": DEPLOYER_OID, "appid": CLIENT, "tid": TENANT, "exp": now() + 3600}),
        );
        Self::json(
            200,
            &json!({"access_token": t, "token_type": "Bearer", "expires_in": "3599", "resource": form.get("resource")}),
        )
    }

    fn principal_of(req: &Request) -> Option<String> {
        let auth = req.headers.get("authorization")?.to_str().ok()?;
        let claims = mic_live::credential::jwt_claims(auth.strip_prefix("Bearer ")?)?;
        claims
            .get("oid")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn new_op(&self, polls: u32, result: Value) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.st().ops.insert(id.clone(), (polls, result));
        id
    }

    /// The fake VM's IMDS: answers the token request a script carries.
    fn imds(
        &self,
        vm_id: &str,
        req: &mic_core::backend::HttpRequest,
    ) -> mic_core::backend::HttpResponse {
        let ok_header = req
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("metadata") && v == "true");
        let (status, body) = if ok_header {
            let vm = self
                .st()
                .resources
                .get(&vm_id.to_ascii_lowercase())
                .cloned()
                .unwrap_or(Value::Null);
            let oid = vm
                .pointer("/identity/principalId")
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_string();
            let t = jwt(
                &json!({"aud": "https://management.azure.com/", "oid": oid, "xms_mirid": vm_id, "tid": TENANT, "exp": now() + 3600}),
            );
            (
                200,
                json!({"access_token": t, "expires_in": "86399", "expires_on": "1", "not_before": "1", "resource": "https://management.azure.com/", "token_type": "Bearer"}),
            )
        } else {
            (
                400,
                json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
            )
        };
        mic_core::backend::HttpResponse {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: body.to_string().into_bytes(),
        }
    }
}

impl Respond for MiniArm {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let r = self.respond_inner(req);
        if self.latency.is_zero() {
            r
        } else {
            r.set_delay(self.latency)
        }
    }
}

impl MiniArm {
    fn respond_inner(&self, req: &Request) -> ResponseTemplate {
        let method = req.method.as_str().to_string();
        let path = req.url.path().to_string();
        let lower = path.to_ascii_lowercase();
        self.st().log.push((method.clone(), path.clone()));
        if lower.ends_with("/oauth2/token") {
            return Self::token_response(req);
        }
        let Some(principal) = Self::principal_of(req) else {
            self.st().unauthorized += 1;
            return Self::error(401, "AuthenticationFailed", "no valid token");
        };
        if let Some(status) = self.st().faults.pop_front() {
            let t = Self::error(
                status,
                if status == 429 {
                    "TooManyRequests"
                } else {
                    "InternalServerError"
                },
                "injected",
            );
            return if status == 429 {
                t.insert_header("Retry-After", "1")
            } else {
                t
            };
        }
        if let Some(rest) = lower.strip_prefix("/ops/") {
            let (id, result) = rest
                .split_once('/')
                .map_or((rest, false), |(i, _)| (i, true));
            let mut st = self.st();
            let Some((polls, body)) = st.ops.get_mut(id) else {
                return Self::error(404, "NotFound", "no operation");
            };
            if *polls > 0 {
                *polls -= 1;
                return if result {
                    ResponseTemplate::new(202).insert_header("Retry-After", "60")
                } else {
                    Self::json(200, &json!({"status": "InProgress"}))
                        .insert_header("Retry-After", "60")
                };
            }
            let body = body.clone();
            return if result {
                Self::json(200, &body)
            } else {
                Self::json(200, &json!({"status": "Succeeded"}))
            };
        }
        if principal != DEPLOYER_OID {
            // A managed identity: authorized by an effective assignment at or above the path.
            let st = self.st();
            let ok = st.assignments.iter().any(|(p, scope, at)| {
                *p == principal && lower.starts_with(scope.as_str()) && Instant::now() >= *at
            });
            if !ok || method != "GET" {
                return Self::error(
                    403,
                    "AuthorizationFailed",
                    &format!(
                        "The client '{principal}' does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourceGroups/read'"
                    ),
                );
            }
        }
        if lower.ends_with("/runcommand") && method == "POST" {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let line = body
                .pointer("/script/0")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let vm_id = path.trim_end_matches("/runCommand").to_string();
            self.st().run_commands += 1;
            self.st()
                .command_ids
                .push(body["commandId"].as_str().unwrap_or_default().to_string());
            let Some((nonce, inner)) = runcommand::parse_request_marker(line) else {
                return Self::error(400, "InvalidParameter", "no mic-request marker");
            };
            let resp = self.imds(&vm_id, &inner);
            let stdout = runcommand::frame(&nonce, &resp, true);
            let os = if body["commandId"] == "RunPowerShellScript" {
                Os::Windows
            } else {
                Os::Linux
            };
            let op = self.new_op(1, runcommand::azure_output(os, &stdout, "", true));
            return ResponseTemplate::new(202)
                .insert_header(
                    "Azure-AsyncOperation",
                    format!("{}/ops/{op}", self.base).as_str(),
                )
                .insert_header(
                    "Location",
                    format!("{}/ops/{op}/result", self.base).as_str(),
                )
                .insert_header("Retry-After", "1");
        }
        if lower.ends_with("/providers/microsoft.authorization/roledefinitions") {
            return Self::json(
                200,
                &json!({"value": [{"id": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{READER}"), "properties": {"roleName": "Reader"}}]}),
            );
        }
        if lower == format!("/subscriptions/{SUB}/resourcegroups") && method == "GET" {
            let st = self.st();
            let value: Vec<Value> = st
                .resources
                .iter()
                .filter(|(k, _)| k.split('/').count() == 5 && k.contains("/resourcegroups/"))
                .map(|(_, v)| v.clone())
                .collect();
            return Self::json(200, &json!({"value": value}));
        }
        match method.as_str() {
            "PUT" => self.put(&path, req),
            "PATCH" => Self::error(400, "NotImplemented", "PATCH"),
            "GET" => match self.st().resources.get(&lower) {
                Some(v) => Self::json(200, v),
                None => Self::error(404, "ResourceNotFound", "not found"),
            },
            "DELETE" => {
                let mut st = self.st();
                if st.resources.remove(&lower).is_none() {
                    return if lower.contains("roleassignments") {
                        ResponseTemplate::new(204)
                    } else {
                        Self::error(404, "ResourceGroupNotFound", "not found")
                    };
                }
                let prefix = format!("{lower}/");
                st.resources.retain(|k, _| !k.starts_with(&prefix));
                st.assignments
                    .retain(|(_, scope, _)| !scope.starts_with(&lower));
                drop(st);
                let op = self.new_op(1, json!({}));
                ResponseTemplate::new(202)
                    .insert_header(
                        "Location",
                        format!("{}/ops/{op}/result", self.base).as_str(),
                    )
                    .insert_header("Retry-After", "1")
            }
            _ => Self::error(405, "MethodNotAllowed", &method),
        }
    }

    fn put(&self, path: &str, req: &Request) -> ResponseTemplate {
        let lower = path.to_ascii_lowercase();
        let mut body: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
        let name = path.rsplit('/').next().unwrap_or_default().to_string();
        let parent_rg = lower.split('/').take(5).collect::<Vec<_>>().join("/");
        if lower.split('/').count() > 5
            && !lower.contains("/roleassignments/")
            && !self.st().resources.contains_key(&parent_rg)
        {
            return Self::error(404, "ResourceGroupNotFound", "resource group not found");
        }
        body["id"] = json!(path);
        body["name"] = json!(name);
        if lower.contains("/microsoft.compute/virtualmachines/") {
            self.st().vm_sizes.push(
                body.pointer("/properties/hardwareProfile/vmSize")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
            let nic = body
                .pointer("/properties/networkProfile/networkInterfaces/0/id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !self.st().resources.contains_key(&nic) {
                return Self::error(
                    400,
                    "InvalidResourceReference",
                    "Resource .../networkInterfaces/... referenced by resource ... was not found.",
                );
            }
            if body
                .pointer("/identity/type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("SystemAssigned"))
            {
                body["identity"]["principalId"] = json!(uuid::Uuid::new_v4().to_string());
                body["identity"]["tenantId"] = json!(TENANT);
            }
            body["properties"]["provisioningState"] = json!("Creating");
        } else {
            body["properties"]["provisioningState"] = json!("Succeeded");
        }
        if lower.contains("/microsoft.managedidentity/userassignedidentities/") {
            body["properties"]["principalId"] = json!(uuid::Uuid::new_v4().to_string());
            body["properties"]["clientId"] = json!(uuid::Uuid::new_v4().to_string());
            body["properties"]["tenantId"] = json!(TENANT);
        }
        if let Some(scope) = lower
            .split_once("/providers/microsoft.authorization/roleassignments/")
            .map(|(s, _)| s.to_string())
        {
            let principal = body
                .pointer("/properties/principalId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut st = self.st();
            let delay = st.propagation_delay;
            st.assignments
                .push((principal, scope, Instant::now() + delay));
        }
        let existed = self
            .st()
            .resources
            .insert(lower.clone(), body.clone())
            .is_some();
        if lower.contains("/microsoft.compute/virtualmachines/") {
            let mut done = body.clone();
            done["properties"]["provisioningState"] = json!("Succeeded");
            self.st().resources.insert(lower, done.clone());
            let op = self.new_op(1, done);
            return Self::json(201, &body)
                .insert_header(
                    "Azure-AsyncOperation",
                    format!("{}/ops/{op}", self.base).as_str(),
                )
                .insert_header("Retry-After", "1");
        }
        Self::json(if existed { 200 } else { 201 }, &body)
    }
}

// ------------------------------------------------------------------ scenarios in code

/// `"a-${x.y}"` -> template.
pub fn template(raw: &str) -> Template {
    let mut parts = Vec::new();
    let mut rest = raw;
    while let Some(i) = rest.find("${") {
        if i > 0 {
            parts.push(TemplatePart::Literal(rest[..i].to_string()));
        }
        let end = rest[i..].find('}').expect("closed reference") + i;
        let mut segs = rest[i + 2..end].split('.').map(str::to_string);
        let root = segs.next().unwrap_or_default();
        parts.push(TemplatePart::Ref(Reference {
            root,
            path: segs.collect(),
            span: Span::default(),
        }));
        rest = &rest[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_string()));
    }
    Template {
        raw: raw.to_string(),
        parts,
    }
}

pub fn s(raw: &str) -> FieldValue {
    FieldValue::Str(template(raw))
}

pub fn l(items: &[&str]) -> FieldValue {
    FieldValue::List(
        items
            .iter()
            .map(|i| Spanned::new(s(i), Span::default()))
            .collect(),
    )
}

pub fn step(
    index: usize,
    id: &str,
    kind: StepKind,
    fields: Vec<(&str, FieldValue)>,
    status: Option<u16>,
) -> Step {
    Step {
        index,
        id: Spanned::new(id.to_string(), Span::default()),
        span: Span::default(),
        kind: Spanned::new(kind, Span::default()),
        fields: Fields {
            map: fields
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Field {
                            key_span: Span::default(),
                            value: Spanned::new(v, Span::default()),
                        },
                    )
                })
                .collect(),
        },
        expect: status.map(|s| Expect {
            status: Some(Spanned::new(s, Span::default())),
            ..Expect::default()
        }),
        denied_without_grant: None,
        snapshot: None,
        note: None,
        doc_lines: None,
    }
}

pub fn scenario(id: &str, os: Os, steps: Vec<Step>) -> Scenario {
    Scenario {
        file: Arc::new(SourceFile {
            path: PathBuf::from(format!("scenarios/{id}.toml")),
            text: String::new(),
        }),
        format: 1,
        id: Spanned::new(id.to_string(), Span::default()),
        title: id.to_string(),
        description: None,
        article: Article {
            file: "004.txt".into(),
            lines: None,
            sections: vec![],
        },
        backends: vec![BackendKind::Fake, BackendKind::Live],
        tags: vec![],
        host: Host {
            kind: HostKind::Vm,
            os,
            name: "myVM".into(),
            system_assigned: true,
            user_assigned: vec![],
        },
        steps,
    }
}

/// The Linux VM system-assigned tutorial: RG, VM, Reader on the RG, IMDS token, read the RG.
pub fn vm_system_assigned(os: Os) -> Scenario {
    use mic_core::model::{GrantKind, ProvisionKind, TokenSource};
    scenario(
        "arm/linux-vm-system-assigned",
        os,
        vec![
            step(
                0,
                "rg",
                StepKind::Provision(ProvisionKind::ResourceGroup),
                vec![("name", s("myResourceGroup-${run_id}"))],
                None,
            ),
            step(
                1,
                "vm",
                StepKind::Provision(ProvisionKind::Vm),
                vec![("resource_group", s("${rg.name}"))],
                None,
            ),
            step(
                2,
                "grant",
                StepKind::Grant(GrantKind::RoleAssignment),
                vec![
                    ("role", s("Reader")),
                    ("principal", s("${vm.identity.principal_id}")),
                    ("scope", s("${rg.id}")),
                ],
                None,
            ),
            step(
                3,
                "token",
                StepKind::FetchToken(TokenSource::Imds),
                vec![("resource", s("https://management.azure.com/"))],
                Some(200),
            ),
            step(
                4,
                "read-rg",
                StepKind::Call {
                    method: "GET".into(),
                    url: template(
                        "${arm}/subscriptions/${subscription_id}/resourceGroups/${rg.name}?api-version=2016-09-01",
                    ),
                },
                vec![(
                    "headers",
                    FieldValue::Table(
                        [(
                            "Authorization".to_string(),
                            Spanned::new(s("Bearer ${token.access_token}"), Span::default()),
                        )]
                        .into_iter()
                        .collect(),
                    ),
                )],
                Some(200),
            ),
        ],
    )
}
