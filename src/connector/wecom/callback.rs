//! WeCom server callbacks (接收事件, wecom-api.md §11): URL verification, the SHA-1 signature,
//! AES-256-CBC with 32-byte PKCS#7 blocks, and the events about members we act on: a contact
//! change (`update_user` with a rename or a status, `delete_user`) and a member leaving an app's
//! visible range (`unsubscribe`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::symm::{Cipher, Crypter, Mode};

use crate::random::constant_time_eq;

/// WeCom pads to multiples of 32 bytes, not AES's 16 (§11): a standard unpadder rejects real
/// messages.
const BLOCK: usize = 32;
/// `random(16) ‖ uint32 length`.
const HEADER: usize = 20;
/// The largest `Encrypt` / `echostr` we decrypt. Contact events are a few hundred bytes.
const MAX_ENCRYPTED_CHARS: usize = 64 * 1024;

/// Why a callback was refused; the numbers are WeCom's own (§11), for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// −40001: the signature does not match.
    #[error("-40001 signature mismatch")]
    Signature,
    /// −40002: the XML has no `Encrypt` (or is not XML).
    #[error("-40002 XML parse error")]
    Xml,
    /// −40004: the EncodingAESKey is not 43 base64 characters.
    #[error("-40004 invalid EncodingAESKey")]
    AesKey,
    /// −40005: the message is for another corp (receiveid mismatch).
    #[error("-40005 receiveid mismatch")]
    ReceiveId,
    /// −40007: decryption or padding failed.
    #[error("-40007 decryption failed")]
    Decrypt,
    /// −40010: the ciphertext is not base64.
    #[error("-40010 base64 decode failed")]
    Base64,
}

/// The callback settings of one WeCom app: Token and EncodingAESKey from the admin console.
#[derive(Clone)]
pub struct CallbackSettings {
    /// The callback Token (signature key).
    pub token: String,
    /// The 43-character EncodingAESKey.
    pub encoding_aes_key: String,
}

impl std::fmt::Debug for CallbackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackSettings")
            .field("token", &"[redacted]")
            .field("encoding_aes_key", &"[redacted]")
            .finish()
    }
}

impl CallbackSettings {
    /// Why these settings cannot work, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.token.is_empty() {
            return Some("the callback token is empty");
        }
        if aes_key(&self.encoding_aes_key).is_err() {
            return Some("the EncodingAESKey must be the 43 characters from the admin console");
        }
        None
    }
}

/// `AESKey = Base64Decode(EncodingAESKey + "=")`, 32 bytes (§11).
fn aes_key(encoding_aes_key: &str) -> Result<[u8; 32], CallbackError> {
    if encoding_aes_key.len() != 43 {
        return Err(CallbackError::AesKey);
    }
    // WeCom's keys carry non-zero bits after the 256th (43 characters hold 258 bits), which a
    // strict decoder rejects; the official implementations ignore them, and so do we.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let bytes = lenient
        .decode(format!("{encoding_aes_key}="))
        .map_err(|_| CallbackError::AesKey)?;
    bytes.try_into().map_err(|_| CallbackError::AesKey)
}

/// `lower_hex(SHA1(join(sort([token, timestamp, nonce, msg_encrypt]))))` (§11).
pub fn signature(token: &str, timestamp: &str, nonce: &str, msg_encrypt: &str) -> String {
    let mut parts = [token, timestamp, nonce, msg_encrypt];
    parts.sort_unstable();
    hex::encode(openssl::sha::sha1(parts.concat().as_bytes()))
}

/// The callback messages handled lately, by digest: WeCom retries a delivery it did not see
/// answered within 5 s (wecom-api.md §11), so one message may arrive more than once. Bounded:
/// the oldest are forgotten first.
#[derive(Debug, Default)]
pub(crate) struct RecentMessages(std::sync::Mutex<std::collections::VecDeque<String>>);

impl RecentMessages {
    /// How many digests are remembered.
    const CAPACITY: usize = 1024;

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `digest` was remembered.
    pub(crate) fn contains(&self, digest: &str) -> bool {
        self.lock().iter().any(|d| d == digest)
    }

    /// Remembers `digest`; `false` when it already was.
    pub(crate) fn insert(&self, digest: &str) -> bool {
        let mut recent = self.lock();
        if recent.iter().any(|d| d == digest) {
            return false;
        }
        if recent.len() >= Self::CAPACITY {
            recent.pop_front();
        }
        recent.push_back(digest.to_owned());
        true
    }

    /// Forgets `digest`, so its next delivery is acted on.
    pub(crate) fn forget(&self, digest: &str) {
        self.lock().retain(|d| d != digest);
    }
}

/// Decrypts and checks WeCom callbacks for one app.
pub(crate) struct CallbackCrypto {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

crate::secret::debug_showing!(CallbackCrypto: receive_id);

impl CallbackCrypto {
    /// For `settings`, accepting messages addressed to `receive_id` (the CorpID).
    pub(crate) fn new(
        settings: &CallbackSettings,
        receive_id: &str,
    ) -> Result<Self, CallbackError> {
        Ok(Self {
            token: settings.token.clone(),
            key: aes_key(&settings.encoding_aes_key)?,
            receive_id: receive_id.to_owned(),
        })
    }

    /// Checks the signature over `encrypted` and decrypts it to the message.
    pub(crate) fn open(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<String, CallbackError> {
        if encrypted.len() > MAX_ENCRYPTED_CHARS {
            return Err(CallbackError::Decrypt);
        }
        let expected = signature(&self.token, timestamp, nonce, encrypted);
        if !constant_time_eq(
            expected.as_bytes(),
            msg_signature.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(CallbackError::Signature);
        }
        self.decrypt(encrypted)
    }

    /// Base64 → AES-256-CBC (IV = key[0..16]) → 32-byte PKCS#7 → `random ‖ len ‖ msg ‖ receiveid`.
    fn decrypt(&self, encrypted: &str) -> Result<String, CallbackError> {
        let ciphertext = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| CallbackError::Base64)?;
        if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
            return Err(CallbackError::Decrypt);
        }
        let mut crypter = Crypter::new(
            Cipher::aes_256_cbc(),
            Mode::Decrypt,
            &self.key,
            Some(&self.key[..16]),
        )
        .map_err(|_| CallbackError::Decrypt)?;
        crypter.pad(false);
        let mut plain = vec![0; ciphertext.len() + BLOCK];
        let mut n = crypter
            .update(&ciphertext, &mut plain)
            .map_err(|_| CallbackError::Decrypt)?;
        n += crypter
            .finalize(&mut plain[n..])
            .map_err(|_| CallbackError::Decrypt)?;
        plain.truncate(n);
        let pad = usize::from(*plain.last().ok_or(CallbackError::Decrypt)?);
        if pad == 0 || pad > BLOCK || pad > plain.len() {
            return Err(CallbackError::Decrypt);
        }
        if !plain[plain.len() - pad..]
            .iter()
            .all(|b| usize::from(*b) == pad)
        {
            return Err(CallbackError::Decrypt);
        }
        plain.truncate(plain.len() - pad);
        if plain.len() < HEADER {
            return Err(CallbackError::Decrypt);
        }
        let len_bytes: [u8; 4] = plain[16..HEADER]
            .try_into()
            .map_err(|_| CallbackError::Decrypt)?;
        let len =
            usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| CallbackError::Decrypt)?;
        let end = HEADER.checked_add(len).ok_or(CallbackError::Decrypt)?;
        if end > plain.len() {
            return Err(CallbackError::Decrypt);
        }
        if !constant_time_eq(&plain[end..], self.receive_id.as_bytes()) {
            return Err(CallbackError::ReceiveId);
        }
        String::from_utf8(plain[HEADER..end].to_vec()).map_err(|_| CallbackError::Decrypt)
    }
}

/// The text of the first `<name>` element of a flat WeCom XML message, CDATA or not (§11:
/// official samples send `ChangeType` without CDATA). `None` when absent.
pub(crate) fn xml_field(xml: &str, name: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    // Depth 1 is the root (`<xml>`); WeCom's fields are its children (depth 2). A field's name
    // inside another field's text or CDATA is text, never a field.
    let mut depth = 0usize;
    let mut inside = false;
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && e.name().as_ref() == name.as_bytes() {
                    inside = true;
                    text.clear();
                }
            }
            Event::Empty(e) if depth == 1 && e.name().as_ref() == name.as_bytes() => {
                return Some(String::new());
            }
            Event::Text(t) if inside => text.push_str(&t.decode().ok()?),
            Event::GeneralRef(r) if inside => text.push(entity(&r.decode().ok()?)?),
            Event::CData(c) if inside => text.push_str(std::str::from_utf8(&c).ok()?),
            Event::End(_) => {
                if inside && depth == 2 {
                    return Some(text.trim().to_owned());
                }
                depth = depth.checked_sub(1)?;
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// The character an entity or character reference (`amp`, `#38`, `#x26`) stands for; `None` for
/// any other (XML without a DTD defines only these).
fn entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => name.strip_prefix('#')?.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// A decrypted event we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContactEvent {
    /// `change_contact` / `update_user`: the member `userid` changed — renamed to `new_userid`
    /// when that is present and differs, and with `status` when WeCom sent it (callback URLs
    /// set after 2022-08-15 get neither status nor most attributes, §11).
    Updated {
        /// `UserID`: the id before this change.
        userid: String,
        /// `NewUserID`, when the id changed.
        new_userid: Option<String>,
        /// `Status` (§6: 1 active, 2 disabled, 4 not activated, 5 left), when sent.
        status: Option<i64>,
    },
    /// `change_contact` / `delete_user`: the member was removed from the corp.
    Deleted {
        /// `UserID`.
        userid: String,
    },
    /// `unsubscribe` (official doc 90376, 成员关注及取消关注事件): sent to an app when an admin
    /// takes a member out of its visible range (or the member unfollows it). `FromUserName`
    /// is the member's UserID.
    Unsubscribed {
        /// `FromUserName`.
        userid: String,
    },
    /// Any other event: acknowledged, nothing to do.
    Other,
}

/// Reads a decrypted message (§11 "Decrypted contact events").
pub(crate) fn contact_event(xml: &str) -> ContactEvent {
    let field = |name: &str| xml_field(xml, name).filter(|v| !v.is_empty());
    let is = |name: &str, value: &str| xml_field(xml, name).as_deref() == Some(value);
    if is("Event", "unsubscribe") {
        return match field("FromUserName") {
            Some(userid) => ContactEvent::Unsubscribed { userid },
            None => ContactEvent::Other,
        };
    }
    if !is("Event", "change_contact") {
        return ContactEvent::Other;
    }
    let Some(userid) = field("UserID") else {
        return ContactEvent::Other;
    };
    match xml_field(xml, "ChangeType").as_deref() {
        Some("delete_user") => ContactEvent::Deleted { userid },
        Some("update_user") => ContactEvent::Updated {
            new_userid: field("NewUserID").filter(|n| *n != userid),
            status: field("Status").and_then(|s| s.parse().ok()),
            userid,
        },
        _ => ContactEvent::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // wecom-api.md §11 test vectors (official sample keys).
    const TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
    const AES_KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
    const CORP: &str = "ww1436e0e65a779aee";

    fn crypto() -> CallbackCrypto {
        CallbackCrypto::new(
            &CallbackSettings {
                token: TOKEN.into(),
                encoding_aes_key: AES_KEY.into(),
            },
            CORP,
        )
        .expect("valid keys")
    }

    /// The plaintext of a §11 vector, which must open.
    fn open(msg_signature: &str, timestamp: &str, nonce: &str, encrypted: &str) -> String {
        crypto()
            .open(msg_signature, timestamp, nonce, encrypted)
            .expect("the vector opens")
    }

    #[test]
    fn vector_a1_url_verification_decrypts_echostr() {
        let echostr = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
        let sig = "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb";
        assert_eq!(signature(TOKEN, "1476416373", "47744683", echostr), sig);
        let reply = open(sig, "1476416373", "47744683", echostr);
        assert_eq!(reply, "1288432023552776189");
    }

    #[test]
    fn vector_a2_post_uses_32_byte_padding() {
        let encrypt = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+";
        let msg = open(
            "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            "1476422779",
            "1597212914",
            encrypt,
        );
        assert_eq!(
            msg,
            "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
        );
        assert_eq!(contact_event(&msg), ContactEvent::Other);
    }

    #[test]
    fn vector_d_update_user_carries_the_rename() {
        let encrypt = "/K4xJYsBwQssQzE/v2nbvPiz8m9hNp0ww+8LDzsdpZ/NcqD8q6xAFVzsVUG1+zQYNvItjZgVzmFxrX71LjPP6f4P0nQemIw9Ks2isQHNpdUWKB4HRsJhA3NV9m5ZBh759awIau6jPTl3NQjYVtMBWtv4elmfhreeMdmj6P7ZB0NTgomgnFW08h+SDi2hIenXgWEX/BIGJUAM2JRBx3hqH8CLmxCjWi4JpB6Kl0dItCaOLyZ0xtyQXJSE7z3Vjfo7H31qcVTqpM+/F+EVB3+aeFHqYgCEXc7hco3uxYlA/G1XyPN3nUCo2pwCQYKQbZQhRSXVJVS8tdn5HkRdIwCACexDFMPHVB5A33juhIGLBxp1peKLuvvfxOOCJzvRMhOVLCgRrGrUUy5o0GqltbI7Gufn5GGjqhUNIX0ZTt4j8fJsdVF3OVGQE7RsB1hMw3R1jgjJLuJFbKfrhsoOaz1550LTdhAjoXRpUqXOEXXiTpzjcXQ+FJlm5YlSq52FdjKHQSXXyp0y9kmnaDCHBvEFiWgsa7lMIPq2OrZvXrnTOgs=";
        let msg = open(
            "5527913e6e2607115d352e341a1e1f99e1e00e09",
            "1700000000",
            "1372623149",
            encrypt,
        );
        assert!(msg.starts_with("<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]>"));
        assert_eq!(
            contact_event(&msg),
            ContactEvent::Updated {
                userid: "zhangsan".into(),
                new_userid: Some("zhangsan001".into()),
                status: None,
            }
        );
    }

    #[test]
    fn a_wrong_signature_is_refused_before_decrypting() {
        let echostr = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
        assert_eq!(
            crypto().open("0".repeat(40).as_str(), "1476416373", "47744683", echostr),
            Err(CallbackError::Signature)
        );
    }

    #[test]
    fn another_corps_message_is_refused_receiveid_mismatch() {
        let echostr = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
        let other = CallbackCrypto::new(
            &CallbackSettings {
                token: TOKEN.into(),
                encoding_aes_key: AES_KEY.into(),
            },
            "wwsomeoneelse",
        )
        .expect("keys");
        assert_eq!(
            other.open(
                "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
                "1476416373",
                "47744683",
                echostr
            ),
            Err(CallbackError::ReceiveId)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let c = crypto();
        for bad in [
            "",
            "!!!",
            "AAAA",
            &"A".repeat(44),
            &STANDARD.encode([0u8; 32]),
        ] {
            let sig = signature(TOKEN, "1", "2", bad);
            assert!(c.open(&sig, "1", "2", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_encoding_aes_keys_are_reported() {
        let s = |k: &str| CallbackSettings {
            token: "t".into(),
            encoding_aes_key: k.into(),
        };
        assert!(s(AES_KEY).problem().is_none());
        assert!(s("short").problem().is_some());
        assert!(s(&"!".repeat(43)).problem().is_some());
    }

    #[test]
    fn xml_fields_are_read_with_or_without_cdata() {
        let xml = "<xml><ChangeType>update_user</ChangeType><UserID><![CDATA[a&b]]></UserID><Name>x &amp; y</Name></xml>";
        assert_eq!(xml_field(xml, "ChangeType").as_deref(), Some("update_user"));
        assert_eq!(xml_field(xml, "UserID").as_deref(), Some("a&b"));
        assert_eq!(xml_field(xml, "Name").as_deref(), Some("x & y"));
        assert_eq!(xml_field(xml, "NewUserID"), None);
    }

    #[test]
    fn a_field_name_inside_another_fields_text_is_not_a_field() {
        let xml = "<xml><Name><![CDATA[<UserID>mallory</UserID>]]></Name><UserID><![CDATA[zhangsan]]></UserID></xml>";
        assert_eq!(xml_field(xml, "UserID").as_deref(), Some("zhangsan"));
        assert_eq!(
            xml_field(xml, "Name").as_deref(),
            Some("<UserID>mallory</UserID>")
        );
        assert_eq!(xml_field("<xml><UserID>", "UserID"), None);
        assert_eq!(xml_field("not xml at all", "UserID"), None);
        assert_eq!(
            xml_field("<xml><Name>a &#38; b &#x3C; &lt;</Name></xml>", "Name").as_deref(),
            Some("a & b < <")
        );
    }

    #[test]
    fn member_events_are_read_delete_status_and_leaving_the_visible_range() {
        let contact = |body: &str| {
            format!("<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>{body}</xml>")
        };
        assert_eq!(
            contact_event(&contact(
                "<ChangeType>delete_user</ChangeType><UserID><![CDATA[lisi]]></UserID>"
            )),
            ContactEvent::Deleted {
                userid: "lisi".into()
            }
        );
        assert_eq!(
            contact_event(&contact("<ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[lisi]]></UserID><Status>2</Status>")),
            ContactEvent::Updated { userid: "lisi".into(), new_userid: None, status: Some(2) }
        );
        assert_eq!(
            contact_event(&contact("<ChangeType>update_user</ChangeType><UserID>lisi</UserID><NewUserID>lisi</NewUserID><Department>1,2</Department>")),
            ContactEvent::Updated { userid: "lisi".into(), new_userid: None, status: None }
        );
        assert_eq!(
            contact_event(&contact("<ChangeType>delete_user</ChangeType>")),
            ContactEvent::Other,
            "no UserID: nothing to act on"
        );
        assert_eq!(
            contact_event(&contact(
                "<ChangeType>create_user</ChangeType><UserID>new</UserID>"
            )),
            ContactEvent::Other
        );
        let unsubscribe = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[wangwu]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey><AgentID>1000002</AgentID></xml>";
        assert_eq!(
            contact_event(unsubscribe),
            ContactEvent::Unsubscribed {
                userid: "wangwu".into()
            }
        );
    }
}
