//! A lean HTTP/1.1 keep-alive client (hyper's connection API): the generator must cost less than
//! the servers it measures, and reqwest's pool and redirect machinery is not needed here.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

use crate::{err, Error, Result, REQUEST_TIMEOUT};

pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            host: addr.to_string(),
        })
    }

    pub async fn send(&mut self, spec: &RequestSpec) -> Result<Answer> {
        let mut b = Request::builder()
            .method(spec.method.clone())
            .uri(spec.path.as_str())
            .header(hyper::header::HOST, self.host.as_str());
        for (k, v) in &spec.headers {
            b = b.header(*k, v.as_str());
        }
        let req = b.body(Full::new(spec.body.clone()))?;
        let fut = async {
            self.sender.ready().await?;
            let resp = self.sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, Error>(Answer {
                status,
                location,
                body,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| err("request timed out"))?
    }

    /// GETs `path` and decodes its JSON body, whatever the status.
    pub async fn get_json<T: DeserializeOwned>(&mut self, path: &str) -> Result<T> {
        let answer = self.send(&RequestSpec::get(path)).await?;
        Ok(serde_json::from_slice(&answer.body)?)
    }
}

/// A response: status, `Location` and body.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: Bytes,
}

/// A request to send, again and again.
#[derive(Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl RequestSpec {
    pub fn get(path: impl Into<String>) -> Self {
        RequestSpec {
            method: Method::GET,
            path: path.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }
}

/// A worker's keep-alive connection: opened on first use and dropped after a failed request,
/// so that the next request opens a fresh one instead of reusing a broken one.
pub struct Reconnecting {
    addr: SocketAddr,
    conn: Option<Conn>,
}

impl Reconnecting {
    pub fn new(addr: SocketAddr) -> Reconnecting {
        Reconnecting { addr, conn: None }
    }

    pub async fn send(&mut self, spec: &RequestSpec) -> Result<Answer> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(Conn::open(self.addr).await?),
        };
        let answer = conn.send(spec).await;
        if answer.is_err() {
            self.conn = None;
        }
        answer
    }

    /// Drops the connection (after a failure the connection itself did not see).
    pub fn reset(&mut self) {
        self.conn = None;
    }
}
