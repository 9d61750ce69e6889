//! Serving connections, with bounds a stranger cannot push past: a client must send a
//! request's headers within `header_read_timeout_seconds` (which also closes a keep-alive
//! connection left idle that long), and at most `max_connections` are open at once (kept
//! below the process's limit on open files, which is raised to its hard limit at start).
//! A connection over the cap waits in the kernel's queue until one closes.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Descriptors kept back from connections: the database pools, the relay's sockets,
/// recordings being written, log files.
const RESERVED_FILES: u64 = 256;

/// Raises this process's soft limit on open files to its hard limit, and returns it.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

/// Makes large allocations go back to the system when freed. A password check takes a
/// 19 MiB block; glibc would otherwise raise its mmap threshold after the first one is
/// freed and keep later ones in per-thread arenas, so memory after a sign-in flood would
/// stay at hundreds of MiB though no check is running.
pub fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; a refusal leaves the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// The connection cap: what the configuration asks, below the open-files limit.
pub fn connection_cap(configured: usize, open_files: u64) -> usize {
    let room = open_files.saturating_sub(RESERVED_FILES).max(16);
    configured.min(room as usize).max(1)
}

/// Serves `app` on `listener` until `shutdown`; then in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    // HTTP/1.1 only (with upgrades, for the queue's WebSocket): plain-text HTTP/2 is not
    // offered, and its version sniffing would wait on a silent connection without a limit.
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let open = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors, or the peer gave up: wait a little, go on.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                app.clone().oneshot(req)
            });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                // At the stop, the request in flight finishes and the connection closes.
                _ = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a permit: all of them back means all connections are done.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(Duration::from_secs(30), open.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open 30 s after the stop");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_files_limit() {
        assert_eq!(connection_cap(10_000, 1024), 768);
        assert_eq!(connection_cap(500, 1_048_576), 500);
        assert_eq!(connection_cap(10_000, 100), 16);
        assert!(raise_open_files_limit() >= 16);
    }
}
