//! Azure SQL steps: the logical server, database and Entra admin through ARM, the tutorial's
//! contained-user grant, and `call = "SQL <server>/<database>"` steps over TDS.
//!
//! SQL traffic is TDS, not HTTP: the driver connects with tiberius (token authentication,
//! `AccessToken` as the tutorial's `SqlConnection` does) over a plain TCP socket and runs the
//! query. Each batch is recorded like an HTTP exchange so transcripts, redaction and
//! expectations work unchanged: method `SQL`, URL `mssql://{server}/{database}`, the token as
//! an `Authorization: Bearer` header (redacted like every token), the query as the body, and a
//! JSON response: `{"rows": [...], "rows_affected": [...]}` on success (status 200), or
//! `{"error": {"code": "18456", "number": 18456, "state", "class", "message", "server"}}` with
//! status 401 (login failed), 403 (permission denied) or 400 (any other server error).
//!
//! The client is built without TLS (`EncryptionLevel::NotSupported`): the fake offers none.
//! Live Azure SQL requires TLS, so these steps are fake-only until a TLS client is added.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tiberius::{AuthMethod, Client, ColumnData, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::{Exchange, Run, StepError, StepRecord, random_password};
use crate::backend::{HttpRequest, HttpResponse};
use crate::model::{GrantKind, ProvisionKind, Step, Template};

/// The audience Azure SQL accepts (as the tutorial requests it).
pub const SQL_RESOURCE: &str = "https://database.windows.net/";
/// Default port of Azure SQL.
const SQL_PORT: u16 = 1433;
const SQL_API: &str = "2021-11-01";
/// Longest wait for connect + login and for one batch.
const SQL_TIMEOUT: Duration = Duration::from_secs(30);

type Conn = Client<Compat<TcpStream>>;

/// A server error, as the response body shows it.
fn error_body(e: &tiberius::error::TokenError) -> Value {
    json!({"error": {
        "code": e.code().to_string(),
        "number": e.code(),
        "state": e.state(),
        "class": e.class(),
        "message": e.message(),
        "server": e.server(),
    }})
}

/// The pseudo HTTP status of a SQL error: 401 login failed, 403 permission denied, 400 else.
pub fn error_status(number: u32) -> u16 {
    match number {
        18456 | 18452 | 18470 | 33130 | 40532 => 401,
        229 | 230 | 262 | 297 | 300 | 916 | 15247 | 15151 => 403,
        _ => 400,
    }
}

fn cell(v: &ColumnData<'static>) -> Value {
    match v {
        ColumnData::U8(x) => json!(x),
        ColumnData::I16(x) => json!(x),
        ColumnData::I32(x) => json!(x),
        ColumnData::I64(x) => json!(x),
        ColumnData::F32(x) => json!(x),
        ColumnData::F64(x) => json!(x),
        ColumnData::Bit(x) => json!(x),
        ColumnData::String(x) => json!(x.as_deref()),
        ColumnData::Guid(x) => json!(x.map(|g| g.to_string())),
        ColumnData::Numeric(x) => json!(x.map(|n| n.to_string())),
        other => json!(format!("{other:?}")),
    }
}

fn rows_json(sets: &[Vec<tiberius::Row>]) -> Value {
    let rows: Vec<Value> = sets
        .iter()
        .flatten()
        .map(|row| {
            let mut m = Map::new();
            for (i, (col, data)) in row.cells().enumerate() {
                let name = if col.name().is_empty() {
                    format!("column{}", i + 1)
                } else {
                    col.name().to_string()
                };
                m.insert(name, cell(data));
            }
            Value::Object(m)
        })
        .collect();
    let counts: Vec<usize> = sets.iter().map(Vec::len).collect();
    json!({"rows": rows, "rows_affected": counts})
}

/// `host[:port]/database` -> (host, port, database).
fn parse_target(target: &str) -> Result<(String, u16, String), StepError> {
    let bad = || {
        StepError(format!(
            "`call = \"SQL {target}\"`: expected `<server>[:port]/<database>`"
        ))
    };
    let target = target.trim().trim_start_matches("mssql://");
    let (server, db) = target.rsplit_once('/').ok_or_else(bad)?;
    if server.is_empty() || db.is_empty() {
        return Err(bad());
    }
    let (host, port) = match server.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
        None => (server.to_string(), SQL_PORT),
    };
    Ok((host, port, db.to_string()))
}

/// Whether a batch returns rows (runs as SQLBatch) rather than counts (sp_executesql).
fn returns_rows(query: &str) -> bool {
    let q = query.trim_start().to_ascii_lowercase();
    q.starts_with("select") || q.starts_with("with")
}

enum SqlOutcome {
    Response(HttpResponse),
    Transport(String),
}

impl From<tiberius::error::Error> for SqlOutcome {
    fn from(e: tiberius::error::Error) -> Self {
        match e {
            tiberius::error::Error::Server(t) => SqlOutcome::Response(HttpResponse {
                status: error_status(t.code()),
                headers: vec![],
                body: error_body(&t).to_string().into_bytes(),
            }),
            other => SqlOutcome::Transport(other.to_string()),
        }
    }
}

async fn connect(host: &str, port: u16, db: &str, token: &str) -> Result<Conn, SqlOutcome> {
    let mut config = Config::new();
    config.host(host);
    config.port(port);
    config.database(db);
    config.authentication(AuthMethod::aad_token(token));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| SqlOutcome::Transport(format!("connect {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    Ok(Client::connect(config, tcp.compat_write()).await?)
}

async fn batch(conn: &mut Conn, query: &str) -> SqlOutcome {
    let result = if returns_rows(query) {
        match conn.simple_query(query).await {
            Ok(stream) => stream.into_results().await.map(|sets| rows_json(&sets)),
            Err(e) => Err(e),
        }
    } else {
        conn.execute(query, &[])
            .await
            .map(|r| json!({"rows": [], "rows_affected": r.rows_affected()}))
    };
    match result {
        Ok(body) => SqlOutcome::Response(HttpResponse {
            status: 200,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }),
        Err(e) => e.into(),
    }
}

/// Run one batch against `host[:port]/database` with an Entra token, outside a scenario (the
/// docs checker runs the articles' T-SQL this way). `Ok((status, body))` in the shape the
/// module doc describes; `Err` when the server could not be reached.
///
/// # Errors
/// A malformed target, or a transport failure (connect, timeout).
pub async fn run_batch(target: &str, token: &str, query: &str) -> Result<(u16, String), String> {
    let (host, port, db) = parse_target(target).map_err(|e| e.0)?;
    let outcome = tokio::time::timeout(SQL_TIMEOUT, async {
        match connect(&host, port, &db, token).await {
            Ok(mut conn) => {
                let out = batch(&mut conn, query).await;
                let _ = conn.close().await;
                out
            }
            Err(outcome) => outcome,
        }
    })
    .await
    .unwrap_or_else(|_| {
        SqlOutcome::Transport(format!(
            "no answer from {host}:{port} within {SQL_TIMEOUT:?}"
        ))
    });
    match outcome {
        SqlOutcome::Response(r) => Ok((r.status, String::from_utf8_lossy(&r.body).into_owned())),
        SqlOutcome::Transport(e) => Err(e),
    }
}

fn sql_request(host: &str, port: u16, db: &str, token: &str, query: &str) -> HttpRequest {
    let server = if port == SQL_PORT {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    let mut req = HttpRequest::new("SQL", format!("mssql://{server}/{db}"));
    req.set_header("Authorization", format!("Bearer {token}"));
    req.body = Some(query.as_bytes().to_vec());
    req
}

fn record_exchange(
    record: &mut StepRecord,
    request: HttpRequest,
    outcome: SqlOutcome,
    started: Instant,
) -> usize {
    let (response, error) = match outcome {
        SqlOutcome::Response(r) => (Some(r), None),
        SqlOutcome::Transport(e) => (None, Some(e)),
    };
    record.exchanges.push(Exchange {
        route: "direct (tds)".into(),
        request,
        response,
        error,
        duration: started.elapsed(),
    });
    record.exchanges.len() - 1
}

impl Run<'_> {
    pub(super) async fn provision_sql(
        &mut self,
        kind: ProvisionKind,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let ep = self.env.endpoints().clone();
        let sub = format!("/subscriptions/{}", ep.subscription_id);
        let api = self
            .str_field(step, "api_version")?
            .unwrap_or_else(|| SQL_API.into());
        let location = self
            .str_field(step, "location")?
            .unwrap_or_else(|| ep.location.clone());
        let rg = self.req_field(step, "resource_group")?;
        let servers = format!("{sub}/resourceGroups/{rg}/providers/Microsoft.Sql/servers");
        let (path, body) = match kind {
            ProvisionKind::SqlServer => {
                let name = self.req_field(step, "name")?;
                let login = self
                    .str_field(step, "admin_login")?
                    .unwrap_or_else(|| "micadmin".into());
                let password = random_password();
                self.secrets.push((password.clone(), "password"));
                let body = json!({"location": location, "properties": {"administratorLogin": login, "administratorLoginPassword": password, "version": "12.0"}});
                (format!("{servers}/{name}"), body)
            }
            ProvisionKind::SqlDatabase => {
                let server = self.req_field(step, "server")?;
                let name = self.req_field(step, "name")?;
                (
                    format!("{servers}/{server}/databases/{name}"),
                    json!({"location": location}),
                )
            }
            ProvisionKind::SqlEntraAdmin => {
                let server = self.req_field(step, "server")?;
                let d = self.env.deployer().clone();
                let login = self
                    .str_field(step, "login")?
                    .unwrap_or_else(|| "mic-deployer".into());
                let sid = self.str_field(step, "sid")?.unwrap_or(d.client_id);
                let child = if api.as_str() < "2017" {
                    "activeDirectory"
                } else {
                    "ActiveDirectory"
                };
                let body = json!({"properties": {"administratorType": "ActiveDirectory", "login": login, "sid": sid, "tenantId": ep.tenant_id}});
                (format!("{servers}/{server}/administrators/{child}"), body)
            }
            other => {
                return Err(StepError(format!(
                    "`{}` is not a SQL provision kind",
                    other.key()
                )));
            }
        };
        let Some(body) = self.put_and_read(&path, &api, &body, record).await? else {
            return Ok(None);
        };
        let name = body.get("name").cloned().unwrap_or(Value::Null);
        let mut out = json!({"id": body.get("id").cloned().unwrap_or(json!(path)), "name": name});
        if kind == ProvisionKind::SqlServer {
            out["fqdn"] = body
                .pointer("/properties/fullyQualifiedDomainName")
                .cloned()
                .unwrap_or(Value::Null);
        }
        Ok(Some(out))
    }

    /// `grant = "sql_contained_user"`: the Entra admin runs the tutorial's two statements.
    pub(super) async fn grant_sql(
        &mut self,
        kind: GrantKind,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        debug_assert_eq!(kind, GrantKind::SqlContainedUser);
        let server = self.req_field(step, "server")?;
        let database = self.req_field(step, "database")?;
        let name = self.req_field(step, "name")?;
        let roles = self.list_field(step, "roles")?;
        let (host, port, db) = parse_target(&format!("{server}/{database}"))?;
        let token = self.deployer_token_for(SQL_RESOURCE).await?;
        let quoted = format!("[{}]", name.replace(']', "]]"));
        let mut statements = vec![format!("CREATE USER {quoted} FROM EXTERNAL PROVIDER")];
        statements.extend(
            roles
                .iter()
                .map(|r| format!("ALTER ROLE {r} ADD MEMBER {quoted}")),
        );
        let started = Instant::now();
        let mut conn =
            match tokio::time::timeout(SQL_TIMEOUT, connect(&host, port, &db, &token)).await {
                Ok(Ok(c)) => c,
                Ok(Err(outcome)) => {
                    let i = record_exchange(
                        record,
                        sql_request(&host, port, &db, &token, &statements[0]),
                        outcome,
                        started,
                    );
                    record.primary = Some(i);
                    return Ok(Some(json!({"name": name})));
                }
                Err(_) => return Err(StepError(format!("SQL login to {host}:{port} timed out"))),
            };
        for stmt in &statements {
            let started = Instant::now();
            let outcome = tokio::time::timeout(SQL_TIMEOUT, batch(&mut conn, stmt))
                .await
                .unwrap_or_else(|_| SqlOutcome::Transport("the batch timed out".into()));
            let failed = !matches!(&outcome, SqlOutcome::Response(r) if r.is_success());
            let i = record_exchange(
                record,
                sql_request(&host, port, &db, &token, stmt),
                outcome,
                started,
            );
            record.primary = Some(i);
            if failed {
                break;
            }
        }
        let _ = conn.close().await;
        Ok(Some(json!({"name": name})))
    }

    /// `call = "SQL <server>/<database>"`: log in with the token and run `query`.
    pub(super) async fn sql_call(
        &mut self,
        target: &Template,
        step: &Step,
        record: &mut StepRecord,
    ) -> Result<Option<Value>, StepError> {
        let target = self.bindings.render(target)?;
        let (host, port, db) = parse_target(&target)?;
        let query = self.req_field(step, "query")?;
        let token = if step.fields.bool("as_deployer") == Some(true) {
            self.deployer_token_for(SQL_RESOURCE).await?
        } else if let Some(t) = step.fields.template("token") {
            let id = self.bindings.render(t)?;
            self.bindings
                .get_root(&id)
                .and_then(|v| v.get("access_token"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    StepError(format!(
                        "`token = \"{id}\"`: that step produced no access token"
                    ))
                })?
                .to_string()
        } else {
            return Err(StepError(
                "a SQL call needs `token = \"<fetch_token step>\"` or `as_deployer = true`".into(),
            ));
        };
        let request = sql_request(&host, port, &db, &token, &query);
        let started = Instant::now();
        let outcome = match tokio::time::timeout(SQL_TIMEOUT, async {
            match connect(&host, port, &db, &token).await {
                Ok(mut conn) => {
                    let out = batch(&mut conn, &query).await;
                    let _ = conn.close().await;
                    out
                }
                Err(outcome) => outcome,
            }
        })
        .await
        {
            Ok(o) => o,
            Err(_) => SqlOutcome::Transport(format!(
                "no answer from {host}:{port} within {SQL_TIMEOUT:?}"
            )),
        };
        let i = record_exchange(record, request, outcome, started);
        record.primary = Some(i);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("127.0.0.1:4321/mydb", "127.0.0.1", 4321, "mydb")]
    #[case(
        "myserver.database.windows.net/mydb",
        "myserver.database.windows.net",
        1433,
        "mydb"
    )]
    #[case("mssql://h:1/d", "h", 1, "d")]
    fn targets(#[case] t: &str, #[case] host: &str, #[case] port: u16, #[case] db: &str) {
        let (h, p, d) = parse_target(t).ok().expect("parses");
        assert_eq!((h.as_str(), p, d.as_str()), (host, port, db));
    }

    #[rstest]
    #[case("")]
    #[case("server-only")]
    #[case("/db")]
    #[case("h:notaport/db")]
    #[case("h/")]
    fn bad_targets(#[case] t: &str) {
        assert!(parse_target(t).is_err());
    }

    #[rstest]
    #[case(18456, 401)]
    #[case(229, 403)]
    #[case(4060, 400)]
    #[case(102, 400)]
    fn statuses(#[case] number: u32, #[case] status: u16) {
        assert_eq!(error_status(number), status);
    }
}
