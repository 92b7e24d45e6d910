//! The Azure SQL data plane: one [`mic_tds::TdsServer`] per logical server, started when ARM
//! creates `Microsoft.Sql/servers/{name}` and stopped when the server (or its resource group)
//! is deleted or the world shuts down.
//!
//! The TDS server never decides on its own whether a token is genuine: [`WorldAuthority`]
//! verifies it with the world's signing key, issuer, clock and the Azure SQL audience
//! (`https://database.windows.net/`, with or without the slash), and resolves
//! `CREATE USER [name] FROM EXTERNAL PROVIDER` display names through the world's directory
//! (unknown and ambiguous names fail, as Azure SQL requires unique display names).

use std::sync::{Arc, Weak};

use mic_tds::{ResolveError, TdsConfig, TdsServer, TokenAuthority, TokenPrincipal};

use crate::world::{State, World};

/// The audiences Azure SQL accepts.
pub const SQL_AUDIENCES: &[&str] = &[
    "https://database.windows.net/",
    "https://database.windows.net",
];

/// A running logical server.
pub(crate) struct SqlServer {
    /// Server name as created (the `{name}` of `{name}.database.windows.net`).
    pub name: String,
    pub tds: TdsServer,
}

impl SqlServer {
    /// What ARM reports as `properties.fullyQualifiedDomainName`: the fake listener's
    /// `127.0.0.1:<port>` (live: `<name>.database.windows.net`).
    pub fn fqdn(&self) -> String {
        self.tds.addr().to_string()
    }
}

/// The world as a [`TokenAuthority`]. Holds the world weakly: the world owns the TDS servers,
/// which own their authority.
pub(crate) struct WorldAuthority {
    world: Weak<World>,
}

impl TokenAuthority for WorldAuthority {
    fn verify(&self, token: &str) -> Result<TokenPrincipal, String> {
        let world = self
            .world
            .upgrade()
            .ok_or_else(|| "the world has shut down".to_owned())?;
        let claims = world
            .verify(token, SQL_AUDIENCES)
            .map_err(|e| e.to_string())?;
        let display_name = world
            .lock()
            .directory
            .get(&claims.oid)
            .map(|sp| sp.display_name.clone())
            .unwrap_or_default();
        Ok(TokenPrincipal {
            object_id: claims.oid,
            app_id: claims.appid,
            display_name,
            tenant_id: claims.tid,
        })
    }

    fn resolve_display_name(&self, name: &str) -> Result<TokenPrincipal, ResolveError> {
        let world = self.world.upgrade().ok_or(ResolveError::NotFound)?;
        let st = world.lock();
        let hits: Vec<_> = st
            .directory
            .all()
            .filter(|sp| sp.display_name.eq_ignore_ascii_case(name))
            .collect();
        match hits.as_slice() {
            [] => Err(ResolveError::NotFound),
            [sp] => Ok(TokenPrincipal {
                object_id: sp.object_id.clone(),
                app_id: sp.app_id.clone(),
                display_name: sp.display_name.clone(),
                tenant_id: world.tenant_id.clone(),
            }),
            _ => Err(ResolveError::Ambiguous),
        }
    }
}

/// Start the TDS endpoint of a new logical server (inside the runtime; binds synchronously).
pub(crate) fn start(world: &Arc<World>, name: &str) -> std::io::Result<SqlServer> {
    let auth = Arc::new(WorldAuthority {
        world: Arc::downgrade(world),
    });
    let config = TdsConfig {
        server_name: name.to_owned(),
        admin_object_id: String::new(),
        databases: Vec::new(),
    };
    Ok(SqlServer {
        name: name.to_owned(),
        tds: TdsServer::spawn(config, auth)?,
    })
}

/// Stop the servers whose resource id is `id` or lies under it (a server, a resource group).
pub(crate) fn stop_under(st: &mut State, id: &str) {
    let lower = id.to_ascii_lowercase();
    let prefix = format!("{lower}/");
    st.sql_servers.retain(|k, s| {
        let doomed = *k == lower || k.starts_with(&prefix);
        if doomed {
            s.tds.shutdown();
        }
        !doomed
    });
}
