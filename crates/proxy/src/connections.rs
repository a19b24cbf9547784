//! Accepting connections and serving HTTP/1.1 on each with a header read timeout, which
//! `axum::serve` does not set: a client that sends part of its headers and stops (or leaves a
//! connection idle between requests) is dropped after [`Limits::header_read_timeout`]
//! (crate::Limits), so half-open connections cannot pile up. Streamed answers go out with
//! `TCP_NODELAY`, frame by frame. With a certificate, each connection is TLS (rustls), its
//! handshake bounded by the same timeout.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;

/// Serves `app` on `listener` until `stop` fires (or its sender is dropped), then lets the
/// requests in progress finish and returns once every connection closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    tls: Option<TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) {
    let (closing, closed) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                tracing::warn!(%error, "proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let finish = closed.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return connection(tcp, service, header_read_timeout, finish).await;
            };
            // The handshake is bounded like the headers that follow it.
            match tokio::time::timeout(header_read_timeout, tls.accept(tcp)).await {
                Ok(Ok(tls)) => connection(tls, service, header_read_timeout, finish).await,
                Ok(Err(error)) => tracing::debug!(%error, "proxy: TLS handshake failed"),
                Err(_) => tracing::debug!("proxy: TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    drop(closed);
    let _ = closing.send(());
    closing.closed().await;
}

/// Serves one connection until it ends, or until `finish` says to finish its requests.
async fn connection<I>(
    io: I,
    service: TowerToHyperService<Router>,
    header_read_timeout: Duration,
    mut finish: watch::Receiver<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = finish.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "proxy: connection ended");
    }
}
