//! The simulator as WeCom's callback sender (wecom-api.md §11): it encrypts and signs events the
//! way WeCom does (AES-256-CBC, IV = key[0..16], PKCS#7 to 32-byte blocks, SHA-1 over the sorted
//! token, timestamp, nonce and ciphertext) and delivers them to a callback URL. Written from
//! the reference on its own, apart from the connector's decryption, so the two check each other.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::symm::{Cipher, Crypter, Mode};

use super::Simulator;
use crate::random;

/// Where and how the simulated app delivers callbacks (the admin console's 接收事件服务器).
#[derive(Clone)]
pub struct CallbackTarget {
    /// The callback URL, e.g. `https://sso.example.com/callback/wecom/events`.
    pub url: String,
    /// The Token.
    pub token: String,
    /// The 43-character EncodingAESKey.
    pub encoding_aes_key: String,
}

crate::secret::debug_showing!(CallbackTarget: url);

/// What a delivery got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// HTTP status of the answer.
    pub status: u16,
    /// The answer's body.
    pub body: String,
}

/// The WeCom signature: SHA-1 hex of the four values sorted and joined (§11).
fn sign(token: &str, timestamp: &str, nonce: &str, encrypted: &str) -> String {
    let mut v = [token, timestamp, nonce, encrypted];
    v.sort();
    let joined: String = v.concat();
    hex::encode(openssl::sha::sha1(joined.as_bytes()))
}

/// `Base64(AES-256-CBC(random16 ‖ be32(len) ‖ msg ‖ receiveid, PKCS#7 to 32 bytes))` (§11).
fn encrypt(encoding_aes_key: &str, receive_id: &str, msg: &str) -> Result<String, String> {
    // 43 characters hold 258 bits: the last 2 are ignored, as WeCom's own code does.
    let key = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    )
    .decode(format!("{encoding_aes_key}="))
    .map_err(|_| "the EncodingAESKey is not base64".to_string())?;
    if key.len() != 32 {
        return Err("the EncodingAESKey does not decode to 32 bytes".into());
    }
    let mut plain = random::alphanumeric(16).into_bytes();
    let len = u32::try_from(msg.len()).map_err(|_| "message too long".to_string())?;
    plain.extend_from_slice(&len.to_be_bytes());
    plain.extend_from_slice(msg.as_bytes());
    plain.extend_from_slice(receive_id.as_bytes());
    let pad = 32 - plain.len() % 32;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let mut c = Crypter::new(Cipher::aes_256_cbc(), Mode::Encrypt, &key, Some(&key[..16]))
        .map_err(|e| e.to_string())?;
    c.pad(false);
    let mut out = vec![0; plain.len() + 32];
    let mut n = c.update(&plain, &mut out).map_err(|e| e.to_string())?;
    n += c.finalize(&mut out[n..]).map_err(|e| e.to_string())?;
    out.truncate(n);
    Ok(STANDARD.encode(out))
}

/// WeCom's encryption and signature of a callback message `msg` (§11) for the app with
/// `token` and `encoding_aes_key` of corp `receive_id`: `(msg_signature, Encrypt)`. Public for
/// the fuzz harness (`crate::fuzzing`), which must reach the connector's decryption with
/// well-formed ciphertexts.
pub fn seal_callback(
    token: &str,
    encoding_aes_key: &str,
    receive_id: &str,
    timestamp: &str,
    nonce: &str,
    msg: &str,
) -> Result<(String, String), String> {
    let encrypted = encrypt(encoding_aes_key, receive_id, msg)?;
    Ok((sign(token, timestamp, nonce, &encrypted), encrypted))
}

impl Simulator {
    /// Delivers `msg` (a plaintext event XML) to `target` as WeCom's encrypted POST (§11).
    pub async fn deliver(&self, target: &CallbackTarget, msg: &str) -> Result<Delivery, String> {
        let encrypted = encrypt(&target.encoding_aes_key, &self.config().corp_id, msg)?;
        let timestamp = self.now().to_string();
        let nonce = random::alphanumeric(10);
        let signature = sign(&target.token, &timestamp, &nonce, &encrypted);
        let body = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[{}]]></AgentID></xml>",
            self.config().corp_id,
            self.config().agent_id
        );
        post_signed(target, [&signature, &timestamp, &nonce], body).await
    }

    /// WeCom's URL verification (§11): a GET with an encrypted `echostr`; `Ok(true)` when the
    /// answer is exactly the plaintext, as WeCom requires before saving the callback URL.
    pub async fn verify_callback_url(&self, target: &CallbackTarget) -> Result<bool, String> {
        let plain = random::alphanumeric(19);
        let echostr = encrypt(&target.encoding_aes_key, &self.config().corp_id, &plain)?;
        let timestamp = self.now().to_string();
        let nonce = random::alphanumeric(10);
        let signature = sign(&target.token, &timestamp, &nonce, &echostr);
        let mut url = url::Url::parse(&target.url).map_err(|e| e.to_string())?;
        // `query_pairs_mut` percent-encodes `+`, `/` and `=` of the base64, as WeCom does.
        url.query_pairs_mut()
            .append_pair("msg_signature", &signature)
            .append_pair("timestamp", &timestamp)
            .append_pair("nonce", &nonce)
            .append_pair("echostr", &echostr);
        let d = send(reqwest::Client::new().get(url)).await?;
        Ok(d.status == 200 && d.body == plain)
    }
}

/// POSTs the encrypted message `body` to `target` with its `[msg_signature, timestamp, nonce]`
/// in the query (§11).
pub(super) async fn post_signed(
    target: &CallbackTarget,
    [signature, timestamp, nonce]: [&str; 3],
    body: String,
) -> Result<Delivery, String> {
    let mut url = url::Url::parse(&target.url).map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .append_pair("msg_signature", signature)
        .append_pair("timestamp", timestamp)
        .append_pair("nonce", nonce);
    send(reqwest::Client::new().post(url).body(body)).await
}

/// Delivers one callback request and reads the answer.
async fn send(request: reqwest::RequestBuilder) -> Result<Delivery, String> {
    // §11: WeCom waits 5 s for the answer.
    let resp = request
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    Ok(Delivery { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_vector_a1() {
        assert_eq!(
            sign(
                "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
                "1476416373",
                "47744683",
                "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
            ),
            "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb"
        );
    }

    #[test]
    fn ciphertext_is_whole_32_byte_blocks() {
        let key = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
        for len in [0, 1, 11, 12, 31, 32, 100] {
            let msg = "x".repeat(len);
            let c = STANDARD
                .decode(encrypt(key, "ww1436e0e65a779aee", &msg).expect("encrypts"))
                .expect("base64");
            assert_eq!(c.len() % 32, 0, "{len}");
        }
        assert!(encrypt("short", "ww", "m").is_err());
    }
}
