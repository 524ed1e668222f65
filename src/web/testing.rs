//! What the unit tests of the pages in `web/` read from a response: its body and its CSP.

use axum::http::header;
use axum::response::Response;

/// The body of `r` as text.
pub(crate) async fn body(r: Response) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The `Content-Security-Policy` header of `r`.
pub(crate) fn csp(r: &Response) -> String {
    r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned()
}
