//! The listener and the per-connection state machine:
//! PRELOGIN -> LOGIN7 (FEDAUTH token) -> requests until the client leaves.
//!
//! Each connection is a task owned by the accept loop's `JoinSet`, so
//! [`TdsServer::shutdown`] (or dropping the server) ends all of them. A
//! connection never panics on client input: framing and parse errors end in
//! a clean close (after a 4002 ERROR token once logged in), timeouts bound
//! every read and write, and the connection count is capped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::auth::{TokenAuthority, TokenPrincipal};
use crate::catalog::{LoginEvent, LoginOutcome, MASTER, TdsState};
use crate::config::{ServerOptions, TdsConfig};
use crate::engine::{self, Outcome, Session};
use crate::error::SqlError;
use crate::sql;
use crate::tokens::{self, done};
use crate::wire::{self, Login7, Rpc, WireError, packet};

/// What Azure SQL calls any principal that logged in with a token.
pub const TOKEN_PRINCIPAL: &str = "<token-identified principal>";

/// Packet size before LOGIN7 negotiates one.
const INITIAL_PACKET_SIZE: usize = 4096;

/// A running fake Azure SQL logical server.
pub struct TdsServer {
    addr: SocketAddr,
    state: TdsState,
    auth: Arc<dyn TokenAuthority>,
    accept: JoinHandle<()>,
    ctx: Arc<Ctx>,
}

impl std::fmt::Debug for TdsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TdsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

struct Ctx {
    state: TdsState,
    auth: Arc<dyn TokenAuthority>,
    options: ServerOptions,
    server_name: String,
    /// Connection tasks that ended in a panic (a bug; tests assert zero).
    panics: AtomicU64,
}

impl TdsServer {
    /// Starts a server on `127.0.0.1:0` with default [`ServerOptions`].
    pub async fn start(config: TdsConfig, auth: Arc<dyn TokenAuthority>) -> io::Result<TdsServer> {
        Self::start_with(config, auth, ServerOptions::default()).await
    }

    /// Starts a server on `127.0.0.1:0` with explicit limits.
    pub async fn start_with(
        config: TdsConfig,
        auth: Arc<dyn TokenAuthority>,
        options: ServerOptions,
    ) -> io::Result<TdsServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::from_listener(listener, config, auth, options)
    }

    fn from_listener(
        listener: TcpListener,
        config: TdsConfig,
        auth: Arc<dyn TokenAuthority>,
        options: ServerOptions,
    ) -> io::Result<TdsServer> {
        let addr = listener.local_addr()?;
        let server_name = config.server_name.clone();
        let state = TdsState::new(config);
        let ctx = Arc::new(Ctx {
            state: state.clone(),
            auth: auth.clone(),
            options,
            server_name,
            panics: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, ctx.clone()));
        Ok(TdsServer {
            addr,
            state,
            auth,
            accept,
            ctx,
        })
    }

    /// Like [`TdsServer::start`], but binds synchronously, for callers that
    /// are not async (an ARM handler creating a logical server). Must be
    /// called inside a tokio runtime.
    pub fn spawn(config: TdsConfig, auth: Arc<dyn TokenAuthority>) -> io::Result<TdsServer> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        Self::from_listener(listener, config, auth, ServerOptions::default())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's state, for inspection and seeding.
    pub fn state(&self) -> &TdsState {
        &self.state
    }

    /// Runs a T-SQL batch in `database` as the server's Entra admin, without
    /// a connection: scenario setup without a token round trip. Stops at the
    /// first error.
    pub fn execute_as_admin(&self, database: &str, sql_text: &str) -> Result<(), SqlError> {
        let statements = sql::parse_batch(sql_text)?;
        let mut shared = self.state.lock();
        let Some(db) = shared.database(database) else {
            return Err(SqlError::cannot_open_database(database));
        };
        let session = Session {
            principal: TokenPrincipal {
                object_id: shared.config.admin_object_id.clone(),
                app_id: String::new(),
                display_name: String::new(),
                tenant_id: String::new(),
            },
            is_admin: true,
            database: db.name.clone(),
        };
        for stmt in &statements {
            engine::execute(&mut shared, self.auth.as_ref(), &session, stmt)?;
        }
        Ok(())
    }

    /// How many connection tasks panicked; always zero unless there is a
    /// bug (client input must never cause one).
    pub fn panicked_connections(&self) -> u64 {
        self.ctx.panics.load(Ordering::Relaxed)
    }

    /// Stops accepting and closes every connection.
    pub fn shutdown(&self) {
        self.accept.abort();
    }
}

impl Drop for TdsServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>) {
    let mut connections = JoinSet::new();
    let permits = Arc::new(Semaphore::new(ctx.options.max_connections));
    let spids = AtomicU16::new(51);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or similar: back off instead of
                    // spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let spid = spids.fetch_add(1, Ordering::Relaxed);
                let ctx = ctx.clone();
                connections.spawn(async move {
                    let _ = Connection::new(stream, ctx, spid).run().await;
                    drop(permit);
                });
            }
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if joined.is_err_and(|e| e.is_panic()) {
                    ctx.panics.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Why a login was refused: what the client is told, and what is recorded.
struct Refusal {
    errors: Vec<SqlError>,
    principal: Option<TokenPrincipal>,
    reason: String,
}

impl Refusal {
    fn new(
        errors: Vec<SqlError>,
        principal: Option<TokenPrincipal>,
        reason: impl Into<String>,
    ) -> Box<Self> {
        Box::new(Self {
            errors,
            principal,
            reason: reason.into(),
        })
    }
}

struct Connection {
    stream: TcpStream,
    ctx: Arc<Ctx>,
    spid: u16,
    packet_size: usize,
}

impl Connection {
    fn new(stream: TcpStream, ctx: Arc<Ctx>, spid: u16) -> Self {
        Self {
            stream,
            ctx,
            spid,
            packet_size: INITIAL_PACKET_SIZE,
        }
    }

    async fn read(&mut self, idle: bool) -> Result<wire::Message, WireError> {
        let o = self.ctx.options;
        let first = if idle { o.idle_timeout } else { o.read_timeout };
        wire::read_message(&mut self.stream, first, o.read_timeout, o.max_message_bytes).await
    }

    async fn send(&mut self, ty: u8, payload: &[u8]) -> Result<(), WireError> {
        wire::write_message(
            &mut self.stream,
            ty,
            payload,
            self.packet_size,
            self.spid,
            self.ctx.options.write_timeout,
        )
        .await
    }

    /// Sends an ERROR token and a DONE(error), as the last words before
    /// closing.
    async fn fail(&mut self, errors: &[SqlError]) -> Result<(), WireError> {
        let mut out = Vec::new();
        for e in errors {
            tokens::error(&mut out, e, &self.ctx.server_name);
        }
        tokens::done_token(&mut out, tokens::TOKEN_DONE, done::ERROR, 0, 0);
        self.send(packet::TABULAR_RESULT, &out).await
    }

    async fn run(mut self) -> Result<(), WireError> {
        let msg = self.read(false).await?;
        if msg.ty != packet::PRELOGIN {
            return Ok(());
        }
        let prelogin = wire::parse_prelogin(&msg.payload)?;
        let response = tokens::prelogin_response(prelogin.fed_auth_required);
        self.send(packet::TABULAR_RESULT, &response).await?;

        let msg = self.read(false).await?;
        if msg.ty != packet::LOGIN7 {
            // A client that asked for TLS now sends a TLS handshake inside
            // PRELOGIN packets; the fake offered none, so just close.
            return Ok(());
        }
        let login = match wire::parse_login7(&msg.payload) {
            Ok(l) => l,
            Err(e) => {
                self.ctx.state.lock().record(LoginEvent {
                    database: String::new(),
                    principal: None,
                    outcome: LoginOutcome::Rejected {
                        error: 4002,
                        reason: e.to_string(),
                    },
                });
                self.fail(&[SqlError::protocol_stream()]).await?;
                return Ok(());
            }
        };
        let Some(session) = self.login(login).await? else {
            return Ok(());
        };
        self.serve(session).await
    }

    /// Authenticates and authorizes; on failure sends the error and returns
    /// `None` (the caller closes).
    async fn login(&mut self, login: Login7) -> Result<Option<Session>, WireError> {
        let requested = if login.database.is_empty() {
            MASTER.to_owned()
        } else {
            login.database.clone()
        };
        let verdict = self.authenticate(&login, &requested);
        let (session, event) = match verdict {
            Ok(session) => {
                let event = LoginEvent {
                    database: session.database.clone(),
                    principal: Some(session.principal.clone()),
                    outcome: LoginOutcome::Accepted,
                };
                (Some(session), event)
            }
            Err(refusal) => {
                let Refusal {
                    errors,
                    principal,
                    reason,
                } = *refusal;
                let event = LoginEvent {
                    database: requested.clone(),
                    principal,
                    outcome: LoginOutcome::Rejected {
                        error: errors.first().map_or(18456, |e| e.number),
                        reason,
                    },
                };
                self.ctx.state.lock().record(event);
                self.fail(&errors).await?;
                return Ok(None);
            }
        };
        self.ctx.state.lock().record(event);
        let Some(session) = session else {
            return Ok(None);
        };

        let negotiated = usize::try_from(login.packet_size)
            .unwrap_or(INITIAL_PACKET_SIZE)
            .clamp(512, 32_767);
        let server = self.ctx.server_name.clone();
        let mut out = Vec::new();
        tokens::envchange_text(&mut out, tokens::ENV_DATABASE, &session.database, MASTER);
        tokens::info(
            &mut out,
            5701,
            2,
            &format!("Changed database context to '{}'.", session.database),
            &server,
        );
        tokens::envchange_collation(&mut out);
        tokens::envchange_text(&mut out, tokens::ENV_LANGUAGE, "us_english", "");
        tokens::info(
            &mut out,
            5703,
            1,
            "Changed language setting to us_english.",
            &server,
        );
        tokens::loginack(&mut out);
        tokens::envchange_text(
            &mut out,
            tokens::ENV_PACKET_SIZE,
            &negotiated.to_string(),
            &INITIAL_PACKET_SIZE.to_string(),
        );
        tokens::featureextack_fedauth(&mut out);
        tokens::done_token(&mut out, tokens::TOKEN_DONE, done::FINAL, 0, 0);
        self.send(packet::TABULAR_RESULT, &out).await?;
        self.packet_size = negotiated;
        Ok(Some(session))
    }

    fn authenticate(&self, login: &Login7, requested: &str) -> Result<Session, Box<Refusal>> {
        let Some(fed_auth) = &login.fed_auth else {
            // SQL authentication: the fake has no SQL logins.
            return Err(Refusal::new(
                vec![SqlError::login_failed(&login.user_name)],
                None,
                "no FEDAUTH feature extension (SQL authentication is not supported)",
            ));
        };
        let failed = || vec![SqlError::login_failed(TOKEN_PRINCIPAL)];
        if fed_auth.library != 0x01 {
            return Err(Refusal::new(
                failed(),
                None,
                format!("FEDAUTH library {} is not SECURITYTOKEN", fed_auth.library),
            ));
        }
        let principal = match self.ctx.auth.verify(&fed_auth.token) {
            Ok(p) => p,
            Err(reason) => {
                return Err(Refusal::new(
                    failed(),
                    None,
                    format!("token rejected: {reason}"),
                ));
            }
        };
        let shared = self.ctx.state.lock();
        let Some(db) = shared.database(requested) else {
            return Err(Refusal::new(
                vec![
                    SqlError::cannot_open_database(requested),
                    SqlError::login_failed(TOKEN_PRINCIPAL),
                ],
                Some(principal),
                "database does not exist",
            ));
        };
        let is_admin = shared.is_admin(&principal);
        if !is_admin && db.user_for(&principal).is_none() {
            return Err(Refusal::new(
                failed(),
                Some(principal),
                format!(
                    "principal is neither the server admin nor a user of '{}'",
                    db.name
                ),
            ));
        }
        Ok(Session {
            principal,
            is_admin,
            database: db.name.clone(),
        })
    }

    async fn serve(&mut self, session: Session) -> Result<(), WireError> {
        loop {
            let msg = self.read(true).await?;
            let response = match msg.ty {
                packet::SQL_BATCH => match wire::parse_sql_batch(&msg.payload) {
                    Ok(text) => self.run_batch(&session, &text, false),
                    Err(_) => return self.fail(&[SqlError::protocol_stream()]).await,
                },
                packet::RPC => match wire::parse_rpc(&msg.payload) {
                    Ok(Rpc::ExecuteSql(text)) => self.run_batch(&session, &text, true),
                    Ok(Rpc::Parameterized) => {
                        self.rpc_error(&SqlError::not_supported("sp_executesql parameters"))
                    }
                    Ok(Rpc::Other(name)) => self.rpc_error(&SqlError::unknown_procedure(&name)),
                    Err(_) => return self.fail(&[SqlError::protocol_stream()]).await,
                },
                packet::ATTENTION => {
                    // Responses are written whole before the next read, so
                    // there is nothing left to cancel: acknowledge.
                    let mut out = Vec::new();
                    tokens::done_token(&mut out, tokens::TOKEN_DONE, done::ATTN, 0, 0);
                    out
                }
                _ => {
                    let e = SqlError::not_supported("transaction manager requests");
                    let mut out = Vec::new();
                    tokens::error(&mut out, &e, &self.ctx.server_name);
                    tokens::done_token(&mut out, tokens::TOKEN_DONE, done::ERROR, 0, 0);
                    out
                }
            };
            self.send(packet::TABULAR_RESULT, &response).await?;
        }
    }

    fn rpc_error(&self, e: &SqlError) -> Vec<u8> {
        let mut out = Vec::new();
        tokens::error(&mut out, e, &self.ctx.server_name);
        tokens::done_token(&mut out, tokens::TOKEN_DONEPROC, done::ERROR, 0, 0);
        out
    }

    /// Runs a batch and encodes its results. In an RPC (`sp_executesql`)
    /// statements end in DONEINPROC and the call in RETURNSTATUS + DONEPROC.
    fn run_batch(&self, session: &Session, text: &str, in_proc: bool) -> Vec<u8> {
        let server = &self.ctx.server_name;
        let mut out = Vec::new();
        let stmt_token = if in_proc {
            tokens::TOKEN_DONEINPROC
        } else {
            tokens::TOKEN_DONE
        };
        // Offset of the last statement DONE's status, so the final one can
        // drop its DONE_MORE bit as SQL Server's does.
        let mut last_status_at = None;
        let mut failure = None;
        match sql::parse_batch(text) {
            Err(e) => failure = Some(e),
            Ok(statements) => {
                let mut shared = self.ctx.state.lock();
                for stmt in &statements {
                    match engine::execute(&mut shared, self.ctx.auth.as_ref(), session, stmt) {
                        Ok(Outcome::Done { rows, cmd }) => {
                            let (status, n) = match rows {
                                Some(n) => (done::MORE | done::COUNT, n),
                                None => (done::MORE, 0),
                            };
                            last_status_at = Some(out.len() + 1);
                            tokens::done_token(&mut out, stmt_token, status, cmd, n);
                        }
                        Ok(Outcome::Rows { columns, rows }) => {
                            tokens::colmetadata(&mut out, &columns);
                            for row in &rows {
                                tokens::row(&mut out, &columns, row);
                            }
                            last_status_at = Some(out.len() + 1);
                            tokens::done_token(
                                &mut out,
                                stmt_token,
                                done::MORE | done::COUNT,
                                engine::cmd::SELECT,
                                rows.len() as u64,
                            );
                        }
                        Err(e) => {
                            // The fake aborts the batch at the first error
                            // (as with XACT_ABORT ON).
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        match (failure, in_proc) {
            (Some(e), false) => {
                tokens::error(&mut out, &e, server);
                tokens::done_token(&mut out, tokens::TOKEN_DONE, done::ERROR, 0, 0);
            }
            (Some(e), true) => {
                tokens::error(&mut out, &e, server);
                tokens::done_token(&mut out, tokens::TOKEN_DONEINPROC, done::ERROR, 0, 0);
                tokens::return_status(&mut out, 0);
                tokens::done_token(&mut out, tokens::TOKEN_DONEPROC, done::FINAL, 0, 0);
            }
            (None, false) => match last_status_at {
                Some(at) => out[at] &= !done::MORE.to_le_bytes()[0],
                None => tokens::done_token(&mut out, tokens::TOKEN_DONE, done::FINAL, 0, 0),
            },
            (None, true) => {
                tokens::return_status(&mut out, 0);
                tokens::done_token(&mut out, tokens::TOKEN_DONEPROC, done::FINAL, 0, 0);
            }
        }
        out
    }
}
