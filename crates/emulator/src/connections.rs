//! Accepting connections and serving HTTP/1.1 on each, with the read timeouts a public
//! endpoint needs: a client that sends part of its headers and stops is dropped after
//! [`EmulatorConfig::header_read_timeout`](crate::EmulatorConfig), one that stops inside its
//! body gets HTTP 408 after [`EmulatorConfig::body_read_timeout`](crate::EmulatorConfig)
//! (see `server`), so half-open connections cannot pile up.
//!
//! This is what `axum::serve` does, plus a timer on hyper's connection builder, which
//! `axum::serve` does not set.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// Serves `app` on `listener` until `stop` fires (or its sender is dropped), then lets the
/// connections in progress finish their requests and returns once all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    // Each connection holds a receiver: closing the sender asks them to finish, and the
    // sender sees every receiver dropped once all have.
    let (closing, closed) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let (tcp, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%error, "emulator: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Answers go out frame by frame: without TCP_NODELAY, Nagle's algorithm holds small
        // frames back until the client's delayed ACK (~40 ms per streamed answer).
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut finish = closed.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "emulator: connection ended");
                    }
                    return;
                }
                _ = finish.changed() => {}
            }
            connection.as_mut().graceful_shutdown();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "emulator: connection ended");
            }
        });
    }
    drop(listener);
    drop(closed);
    // Wakes every connection's `changed` (an error only when none is left), then waits until
    // all have closed.
    let _ = closing.send(());
    closing.closed().await;
}
