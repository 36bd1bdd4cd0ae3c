//! The HTTP accept loop: HTTP/1.1 connections with a header-read timeout, so that clients
//! that open connections and never finish a request head (or send nothing) cannot hold
//! thousands of them; the same timeout closes idle keep-alive connections. Each request
//! carries its peer address (`ConnectInfo<SocketAddr>`), which the failed-authentication
//! limit counts by.
//!
//! `axum::serve` takes no configuration, hence this loop: it is axum's own, with hyper's
//! `header_read_timeout` set. The gateway speaks HTTP/1.1; TLS and HTTP/2 end at the ingress.

use crate::error::GatewayError;
use altdata_common::Shutdown;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::pin::pin;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long to wait after an accept error that is not about one connection (such as running
/// out of file descriptors) before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish their
/// requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: Shutdown,
) -> Result<(), GatewayError> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                pause_after_accept_error(error).await;
                continue;
            }
        };
        // The peer's address goes on every request, as `axum::serve`'s ConnectInfo does.
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut connection = pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Errors about one connection (reset before it was accepted) need no pause; others (out of
/// file descriptors) would repeat at once, so wait a little.
async fn pause_after_accept_error(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %error, "cannot accept a connection; pausing");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}
