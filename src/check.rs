//! What a check found, in both languages: the unit of `wecom-oidc check`'s report, written by the
//! core checks and by each connector type's own (which know their upstream's error codes).

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Checked and fine.
    Pass,
    /// Works, but deserves attention.
    Warn,
    /// Logins will fail until this is fixed.
    Fail,
}

/// One finding, in both languages.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// What was checked (`config`, `wecom`, `keys`, `issuer`, `clients[0]` …).
    pub topic: String,
    /// What was found, in English.
    pub en: String,
    /// What was found, in Chinese.
    pub zh: String,
    /// The upstream's error code when the finding comes from an upstream answer.
    pub wecom_errcode: Option<i64>,
}

impl Finding {
    /// A finding without an upstream error code.
    pub fn new(
        level: Level,
        topic: impl Into<String>,
        en: impl Into<String>,
        zh: impl Into<String>,
    ) -> Self {
        Self {
            level,
            topic: topic.into(),
            en: en.into(),
            zh: zh.into(),
            wecom_errcode: None,
        }
    }

    /// This finding, caused by WeCom's error `code`.
    pub fn with_errcode(mut self, code: i64) -> Self {
        self.wecom_errcode = Some(code);
        self
    }
}
