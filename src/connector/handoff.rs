//! A hand-off: the connector's answer when this browser cannot complete the upstream login
//! itself (a phone's ordinary browser in front of an upstream that logs phones in only inside
//! its own app). The core then shows a generic "continue in that app, or on another device"
//! page instead of redirecting; only the connector knows when that is and what to say.

/// A text in the two languages our pages speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bilingual {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Bilingual {
    /// A text from its Chinese and English forms.
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            zh: zh.into(),
            en: en.into(),
        }
    }
}

/// What the hand-off page needs from the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The app the person should continue in (for WeCom: 企业微信 / WeCom).
    pub app_name: Bilingual,
    /// Why this browser cannot go on by itself.
    pub why: Bilingual,
    /// How to open a link inside that app.
    pub how: Bilingual,
    /// The upstream's own login page for this login, in this browser (for WeCom: the QR page).
    /// Always offered, so the page never dead-ends.
    pub other_device_url: String,
    /// The link text for [`Self::other_device_url`].
    pub other_device_label: Bilingual,
}
