//! WeCom's domain-verification files (`WW_verify_<token>.txt`, wecom-api.md §9): the admin
//! console checks that the trusted domain serves the downloaded file at its root, so each
//! configured file is read once at startup and served byte for byte.

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;

use crate::connector::wecom::is_verify_file_name;

/// Largest verification file we serve; WeCom's are a few dozen bytes.
const MAX_FILE_BYTES: u64 = 4096;

/// Reads `paths`: (`/WW_verify_<token>.txt`, bytes) for each. Fails naming the file.
pub fn load(paths: &[std::path::PathBuf]) -> Result<Vec<(String, Bytes)>, String> {
    let mut files: Vec<(String, Bytes)> = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| is_verify_file_name(n))
            .ok_or_else(|| format!("{} is not a WW_verify_<token>.txt file", path.display()))?;
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "{} is larger than {MAX_FILE_BYTES} bytes: not a WeCom verification file",
                path.display()
            ));
        }
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let route = format!("/{name}");
        if files.iter().any(|(r, _)| *r == route) {
            return Err(format!("{name} is configured twice"));
        }
        files.push((route, Bytes::from(bytes)));
    }
    Ok(files)
}

/// One exact route per file. Nothing else at the root is served from disk.
pub fn router(files: Vec<(String, Bytes)>) -> Router {
    let mut router = Router::new();
    for (route, bytes) in files {
        router = router.route(
            &route,
            get(move || {
                let bytes = bytes.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
                        bytes,
                    )
                        .into_response()
                }
            }),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    /// `app`'s answer to `GET uri`.
    async fn get_from(app: Router, uri: &str) -> axum::response::Response {
        let request = Request::get(uri).body(Body::empty()).expect("request");
        app.oneshot(request).await.expect("response")
    }

    #[test]
    fn only_ww_verify_names_are_accepted() {
        assert!(is_verify_file_name("WW_verify_abcDEF123.txt"));
        for refused in [
            "WW_verify_.txt",
            "WW_verify_a/b.txt",
            "WW_verify_x.txt.bak",
            "config.toml",
            "WW_verify_../x.txt",
        ] {
            assert!(!is_verify_file_name(refused), "{refused}");
        }
    }

    #[tokio::test]
    async fn verification_file_is_served_at_the_root_byte_for_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("WW_verify_Ab12.txt");
        // A trailing space and no newline: served exactly as downloaded.
        std::fs::write(&path, b"Ab12cd34 ").expect("write");
        let app = router(load(&[path]).expect("load"));
        let resp = get_from(app.clone(), "/WW_verify_Ab12.txt").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"Ab12cd34 ");
        let other = get_from(app, "/WW_verify_Other.txt").await;
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn missing_or_misnamed_files_fail_at_startup_naming_the_file() {
        let err = load(&["/nonexistent/WW_verify_x1.txt".into()]).expect_err("missing");
        assert!(err.contains("WW_verify_x1.txt"), "{err}");
        assert!(load(&["/etc/passwd".into()]).is_err());
    }
}
