//! Binding and serving the admin socket (see the module docs of `admin`).

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::UnixListener;

/// Why the admin socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AdminSocketError {
    /// The directory or socket could not be created.
    #[error("cannot open the admin socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A live server already answers on this socket.
    #[error("another server already answers on the admin socket {0}")]
    InUse(PathBuf),
}

/// A bound admin socket and the user allowed to use it.
pub struct AdminListener {
    listener: UnixListener,
    owner_uid: u32,
    path: PathBuf,
}

impl AdminListener {
    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Binds the socket at `path`, creating its directory with mode 0700. A socket file left by a
/// server that died (kill -9) is replaced; one a live server answers on is not.
pub fn bind(path: &Path) -> Result<AdminListener, AdminSocketError> {
    let io = |source| AdminSocketError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    // An existing directory keeps its mode: make sure it is ours alone.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    let owner_uid = std::fs::metadata(dir).map_err(io)?.uid();
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(AdminSocketError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(AdminListener {
        listener,
        owner_uid,
        path: path.to_owned(),
    })
}

/// Serves `router` on the socket until `shutdown` completes, then removes the socket file.
/// A connection from another user than the socket directory's owner (or root) is closed
/// unanswered.
pub async fn serve(
    bound: AdminListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = bound.listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin socket: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == bound.owner_uid || cred.uid() == 0 => {}
            Ok(cred) => {
                tracing::warn!(
                    uid = cred.uid(),
                    "admin socket: refused a connection from another user"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin socket: cannot read the peer's credentials; refused");
                continue;
            }
        }
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin socket: connection ended with an error");
            }
        });
    }
    let _ = std::fs::remove_file(&bound.path);
}

/// Binds and serves the admin socket in the background; a socket that cannot be opened is a
/// warning, not a reason to stop serving logins (the commands that need it then say so).
pub fn spawn(path: &Path, router: Router) -> Option<tokio::task::JoinHandle<()>> {
    match bind(path) {
        Ok(bound) => {
            tracing::info!(socket = %bound.path().display(), "admin socket ready");
            Some(tokio::spawn(serve(bound, router, std::future::pending())))
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin commands against this server are unavailable");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{Method, StatusCode};
    use axum::routing::get;

    fn hello() -> Router {
        Router::new().route("/v1/hello", get(|| async { "hello" }))
    }

    /// `GET uri` over the socket at `path`.
    async fn get_over(
        path: &Path,
        uri: &str,
    ) -> Result<crate::admin::client::AdminResponse, crate::admin::client::AdminClientError> {
        crate::admin::client::request(path, Method::GET, uri, None).await
    }

    /// A socket path in a fresh folder (removed when the `TempDir` drops).
    fn temp_socket() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::admin::socket_path_in(dir.path());
        (dir, path)
    }

    /// The server on `path` answers `/v1/hello` of [`hello`].
    async fn assert_says_hello(path: &Path) {
        let ok = get_over(path, "/v1/hello").await.unwrap();
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(&ok.body[..], b"hello");
    }

    #[tokio::test]
    async fn answers_its_owner_and_only_its_own_routes() {
        let (_dir, path) = temp_socket();
        let bound = bind(&path).unwrap();
        let mode = std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(
            mode, 0o700,
            "the socket's directory is the server user's alone"
        );
        tokio::spawn(serve(bound, hello(), std::future::pending()));
        assert_says_hello(&path).await;
        let missing = get_over(&path, "/authorize").await.unwrap();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_live_socket_is_not_taken_over_but_a_dead_ones_file_is_replaced() {
        let (_dir, path) = temp_socket();
        let bound = bind(&path).unwrap();
        assert!(matches!(bind(&path), Err(AdminSocketError::InUse(_))));
        // Dropping the listener without removing the file is what kill -9 leaves behind.
        drop(bound);
        assert!(path.exists());
        let again = bind(&path).expect("a stale socket file is replaced");
        tokio::spawn(serve(again, hello(), std::future::pending()));
        assert_says_hello(&path).await;
    }

    #[tokio::test]
    async fn no_server_is_a_clear_error() {
        let (_dir, path) = temp_socket();
        let err = get_over(&path, "/v1/status").await.unwrap_err();
        assert!(err.to_string().contains("no running server"), "{err}");
    }
}
