//! Running an axum Router on its own loopback listener, with a stop signal.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running server. `stop` signals graceful shutdown; handlers that hold a request open
/// (the IMDS timeout fault) watch the same signal so nothing outlives a stop for long.
pub(crate) struct ServerHandle {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
    /// Stop and wait (bounded) for the server task to finish.
    pub async fn stop_and_wait(self) {
        self.stop();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

async fn add_latency(State(latency): State<Duration>, req: Request, next: Next) -> Response {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    next.run(req).await
}

/// Bind 127.0.0.1:0 and serve `make(stop_rx)` on the current tokio runtime.
pub(crate) fn spawn(
    latency: Duration,
    make: impl FnOnce(watch::Receiver<bool>) -> Router,
) -> std::io::Result<ServerHandle> {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    let (tx, rx) = watch::channel(false);
    let router = make(rx.clone()).layer(axum::middleware::from_fn_with_state(latency, add_latency));
    let mut stop_rx = rx;
    let task = tokio::spawn(async move {
        let shutdown = async move {
            while !*stop_rx.borrow_and_update() {
                if stop_rx.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
    });
    Ok(ServerHandle {
        addr,
        stop: tx,
        task,
    })
}
