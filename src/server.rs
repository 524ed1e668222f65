//! The HTTP connection layer: accepts TCP connections and serves the router on each with the
//! limits `axum::serve` does not set. `axum::serve` gives hyper no timer, so hyper's header read
//! timeout never runs and a client that sends its request line byte by byte (slow-loris), or
//! opens connections and sends nothing, holds a connection and a task forever.
//!
//! Limits per connection (documented in docs/security.md):
//! - the request head (request line and headers) must arrive within [`HEADER_READ_TIMEOUT`],
//!   counted from the first read — also for an idle keep-alive connection waiting for its next
//!   request, and a new connection that sends nothing at all, so idle connections are closed
//!   after that long;
//! - the head may not exceed [`MAX_HEAD_BYTES`] (hyper answers `431`) nor [`MAX_HEADERS`]
//!   headers (`web::edge` answers `431`; hyper itself refuses more than 100, the most it
//!   parses without a per-request buffer);
//! - HTTP/2 connections are pinged every [`H2_KEEPALIVE`] and closed when a ping goes
//!   unanswered for [`H2_KEEPALIVE_TIMEOUT`];
//! - bodies and whole requests are bounded by `app::with_middleware` (64 KiB, 30 s).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use std::convert::Infallible;

use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Service, ServiceExt};

/// How long a client may take to send a request's head (RFC 9112 §9.8 lets a server close
/// slow or idle connections). Generous for a person on a bad mobile link, short for an attacker
/// holding sockets.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head we buffer: OAuth requests are small, even with a long
/// `id_token_hint` or `request` in the query.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields in one request.
pub const MAX_HEADERS: usize = 64;
/// HTTP/2 keep-alive ping interval.
pub const H2_KEEPALIVE: Duration = Duration::from_secs(30);
/// How long an HTTP/2 ping may go unanswered.
pub const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the shutdown signal, how long open connections get to finish.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `service` (a router behind `web::edge`) on `listener` until `shutdown` completes, then stops accepting, lets open
/// connections finish (at most [`DRAIN_TIMEOUT`]) and returns. Handlers can read the peer
/// address with `ConnectInfo<SocketAddr>` (the rate limits key on it).
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each connection task holds a receiver; `closed()` tells when all have ended.
    let (alive_tx, alive_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let mut stop = stop_rx.clone();
        let alive = alive_rx.clone();
        tokio::spawn(async move {
            let _alive = alive;
            // hyper's HTTP/1-or-2 detection reads the first bytes before any hyper timer
            // runs, so a connection that sends nothing at all is cut off here.
            let mut first = [0u8; 1];
            if tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "connection sent nothing; closed");
                return;
            }
            let builder = builder();
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                    return;
                }
                _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_rx);
    if tokio::time::timeout(DRAIN_TIMEOUT, alive_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout");
    }
    Ok(())
}

/// The per-connection protocol settings (see the module docs).
///
/// Call it once per connection, never share its result: the [`HeadTimer`] in it holds one
/// timer entry, and two connections sharing it would move each other's header-read deadline
/// and only the last to poll would be woken, which would let a slow head outlive its timeout.
fn builder() -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(HeadTimer::default())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // No `max_headers`: with it hyper fills a header buffer of that size for every request
        // it parses (1,400 instructions, docs/performance.md); `web::edge` counts them instead.
        .max_buf_size(MAX_HEAD_BYTES);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE)
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
    b
}

/// hyper's timer for one HTTP/1 connection, used for its header-read timeout: every request's
/// timeout on the connection shares one tokio timer entry, moved to the new deadline when the
/// next head starts, instead of a timer entry registered and removed for every request.
///
/// hyper asks for a new sleep each time it starts reading a head and drops it once the head is
/// in. With `TokioTimer` that registered a tokio timer entry when the (idle) connection first
/// waited and removed it again when the head arrived; moving the one entry to a later deadline
/// is an atomic update (docs/performance.md, "the middleware as one service"). The deadline
/// each sleep answers for is its own, so the rule of the module docs is unchanged. While no
/// head is being read the shared entry may still run out and wake the connection's task once,
/// which finds nothing to do.
#[derive(Clone, Default)]
struct HeadTimer {
    shared: Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    // tokio's clock, which tests can pause and move.
    fn now(&self) -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep {
            shared: self.shared.clone(),
            deadline: deadline.into(),
        })
    }
}

/// One deadline of a [`HeadTimer`].
struct HeadSleep {
    shared: Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>,
    deadline: tokio::time::Instant,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let mut slot = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let sleep = slot.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    fn is_ready(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        sleep.as_mut().poll(&mut cx).is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn each_head_gets_its_own_deadline_on_the_shared_timer_entry() {
        let timer = HeadTimer::default();
        let mut first = timer.sleep(HEADER_READ_TIMEOUT);
        assert!(!is_ready(&mut first));
        // The head arrived after 4 s; hyper drops its sleep and starts the next head's.
        tokio::time::advance(Duration::from_secs(4)).await;
        drop(first);
        let mut second = timer.sleep(HEADER_READ_TIMEOUT);
        assert!(!is_ready(&mut second));
        // Past the first deadline, not yet past the second.
        tokio::time::advance(Duration::from_secs(7)).await;
        assert!(!is_ready(&mut second));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(
            is_ready(&mut second),
            "a silent client is cut off at its deadline"
        );
        // A later head after the entry ran out gets a full new period again.
        let mut third = timer.sleep(HEADER_READ_TIMEOUT);
        assert!(!is_ready(&mut third));
        tokio::time::advance(HEADER_READ_TIMEOUT).await;
        assert!(is_ready(&mut third));
    }
}
