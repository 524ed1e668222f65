//! Browsers: the complete login, each browser with its own cookie jar, and the relying party's
//! back-channel requests made over the browser's client.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{err, Result, REQUEST_TIMEOUT};

/// A registered bench client.
#[derive(Clone)]
pub struct BenchClient {
    pub id: String,
    pub secret: String,
    pub redirect_uri: String,
}

impl BenchClient {
    /// A client with a fresh secret.
    pub fn new(id: &str) -> BenchClient {
        BenchClient {
            id: id.to_string(),
            secret: wecom_oidc::random::token(24),
            redirect_uri: "http://127.0.0.1/bench/callback".to_string(),
        }
    }
}

/// One browser with its own cookie jar, walking redirects by hand.
pub struct Browser {
    http: reqwest::Client,
    pub issuer: String,
    /// In the cluster comparison: the issuer every instance names in its redirects, sent to this
    /// browser's instance (`issuer`) instead, as a load balancer would.
    public_issuer: Option<String>,
}

/// A code ready for the token endpoint.
pub struct PreparedCode {
    pub code: String,
    pub verifier: String,
}

/// What a code exchange answered.
pub struct TokenAnswer {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// `alg` of the id_token's JOSE header.
    pub alg: String,
}

/// Reads a token response: an error unless it is a 200 with an access token and an id_token.
pub fn token_answer(status: u16, v: &Value) -> Result<TokenAnswer> {
    if status != 200 {
        return Err(err(format!("token answered {status}: {}", v["error"])));
    }
    let access_token = v["access_token"]
        .as_str()
        .ok_or_else(|| err("no access_token"))?
        .to_string();
    let id_token = v["id_token"].as_str().ok_or_else(|| err("no id_token"))?;
    let header = id_token.split('.').next().unwrap_or("");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
    Ok(TokenAnswer {
        access_token,
        refresh_token: v["refresh_token"].as_str().map(str::to_string),
        alg: header["alg"].as_str().unwrap_or("").to_string(),
    })
}

impl Browser {
    pub fn new(issuer: &str) -> Result<Browser> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            issuer: issuer.to_string(),
            public_issuer: None,
        })
    }

    /// A browser whose requests to `public_issuer` go to `instance`.
    pub fn behind(public_issuer: &str, instance: &str) -> Result<Browser> {
        let mut b = Browser::new(instance)?;
        b.public_issuer = Some(public_issuer.to_string());
        Ok(b)
    }

    /// Where a GET of `url` redirects to.
    pub async fn location(&self, url: &str) -> Result<String> {
        let resp = self.http.get(url).send().await?;
        let status = resp.status();
        if !status.is_redirection() {
            return Err(err(format!("expected a redirect, got {status}")));
        }
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| err("redirect without Location"))?;
        // Relative locations resolve against the issuer.
        let loc = url::Url::parse(&self.issuer)?.join(loc)?.to_string();
        match &self.public_issuer {
            Some(public) if loc.starts_with(&format!("{public}/")) => {
                Ok(format!("{}{}", self.issuer, &loc[public.len()..]))
            }
            _ => Ok(loc),
        }
    }

    /// authorize → simulator → callback, asking for `scope`: the code at the client's redirect
    /// URI.
    pub async fn code(&self, client: &BenchClient, scope: &str) -> Result<PreparedCode> {
        let state = wecom_oidc::random::alphanumeric(22);
        let nonce = wecom_oidc::random::alphanumeric(22);
        let verifier = wecom_oidc::random::token(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut authorize = url::Url::parse(&format!("{}/authorize", self.issuer))?;
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            // A complete login every time: without it the browser's provider session would
            // answer from single sign-on and skip WeCom.
            .append_pair("prompt", "login");
        let upstream = self.location(authorize.as_str()).await?;
        let callback = self.location(&upstream).await?;
        let back = url::Url::parse(&self.location(&callback).await?)?;
        if !back.as_str().starts_with(&client.redirect_uri) {
            return Err(err("the login did not end at the client's redirect URI"));
        }
        let q: HashMap<_, _> = back.query_pairs().into_owned().collect();
        if q.get("state") != Some(&state) {
            return Err(err(format!(
                "the callback lost the state (error {:?})",
                q.get("error")
            )));
        }
        let code = q
            .get("code")
            .cloned()
            .ok_or_else(|| err(format!("no code (error {:?})", q.get("error"))))?;
        Ok(PreparedCode { code, verifier })
    }

    /// A token request as the confidential client (client_secret_basic, RFC 6749 §2.3.1), over
    /// this browser's connection (the RP's back channel): the status and the JSON body.
    async fn post_token(
        &self,
        client: &BenchClient,
        form: &[(&str, &str)],
    ) -> Result<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(&client.id, Some(&client.secret))
            .form(form)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await?))
    }

    /// The code exchange (RFC 6749 §4.1.3, with the PKCE verifier of RFC 7636 §4.5).
    pub async fn token(&self, client: &BenchClient, code: &PreparedCode) -> Result<TokenAnswer> {
        let (status, v) = self
            .post_token(
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code.code.as_str()),
                    ("redirect_uri", client.redirect_uri.as_str()),
                    ("code_verifier", code.verifier.as_str()),
                ],
            )
            .await?;
        token_answer(status, &v)
    }

    /// One refresh (RFC 6749 §6): the new (access, refresh) pair.
    pub async fn refresh(&self, client: &BenchClient, rt: &str) -> Result<(String, String)> {
        let (status, v) = self
            .post_token(
                client,
                &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            )
            .await?;
        if status != 200 {
            return Err(err(format!("refresh answered {status}: {}", v["error"])));
        }
        let field = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| err(format!("no {k}")))
        };
        Ok((field("access_token")?, field("refresh_token")?))
    }

    pub async fn userinfo(&self, access_token: &str) -> Result<()> {
        let resp = self
            .http
            .get(format!("{}/userinfo", self.issuer))
            .bearer_auth(access_token)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        if status != 200 || body.get("sub").is_none() {
            return Err(err(format!("userinfo answered {status}")));
        }
        Ok(())
    }
}
