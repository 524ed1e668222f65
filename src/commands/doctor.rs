//! `wecom-oidc check`: a doctor for the configuration. It validates the file, lets each
//! connector ask its upstream its own questions (for WeCom: `gettoken`, a data API and the login
//! page, each error explained in Chinese and English with where to fix it), prints the exact
//! trusted domain (可信域名, host[:port]) and callback URL to enter upstream, and checks that the
//! issuer, the clients' redirect URIs and the signing keys fit together.
//!
//! It never writes: missing keys are reported, not generated, and upstream tokens it obtains live
//! in a throw-away memory store and are never shown.

use std::fmt::Write as _;
use std::path::Path;

use crate::clock::SharedClock;
use crate::config::{self, Config};
use crate::connector::registry::CheckContext;
use crate::tokens::KeyStore;

pub use crate::check::{Finding, Level};

/// The doctor's verdict.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every finding, in the order checked.
    pub findings: Vec<Finding>,
    /// The trusted domain (host[:port]) to enter in the WeCom console, when the issuer is valid.
    pub trusted_domain: Option<String>,
    /// The callback URL WeCom sends browsers back to.
    pub callback_url: Option<String>,
}

impl Report {
    /// True when nothing failed (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(|f| f.level == Level::Fail)
    }

    /// The first finding with WeCom error `code`, if any.
    pub fn wecom_error(&self, code: i64) -> Option<&Finding> {
        self.findings.iter().find(|f| f.wecom_errcode == Some(code))
    }

    /// The report as the terminal shows it: one block per finding, English then Chinese, then
    /// what to enter in the WeCom admin console, then the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Pass => "[ OK ]",
                Level::Warn => "[WARN]",
                Level::Fail => "[FAIL]",
            };
            let _ = writeln!(out, "{tag} {}: {}", f.topic, f.en);
            let _ = writeln!(out, "       {}", f.zh);
        }
        if let (Some(domain), Some(callback)) = (&self.trusted_domain, &self.callback_url) {
            out.push_str("\nEnter in the WeCom admin console / 在企业微信管理后台填写:\n");
            let _ = writeln!(
                out,
                "  App → 网页授权及JS-SDK → 可信域名 (trusted domain):        {domain}"
            );
            let _ = writeln!(
                out,
                "  App → 企业微信授权登录 → Web网页 → 授权回调域 (callback domain): {domain}"
            );
            let _ = writeln!(
                out,
                "  Callback URL used by wecom-oidc / 回调地址: {callback}"
            );
        }
        let fails = self
            .findings
            .iter()
            .filter(|f| f.level == Level::Fail)
            .count();
        let warns = self
            .findings
            .iter()
            .filter(|f| f.level == Level::Warn)
            .count();
        if fails == 0 {
            let _ = writeln!(
                out,
                "\nPASS: ready for logins ({warns} warning(s)). / 检查通过（{warns} 个警告）。"
            );
        } else {
            let _ = writeln!(
                out,
                "\nFAIL: {fails} problem(s) to fix before logins can work. / 有 {fails} 个问题需要修复。"
            );
        }
        out
    }
}

/// Reads, validates and checks the configuration file at `path`.
pub async fn check_file(path: &Path, clock: SharedClock) -> Report {
    match config::load(path) {
        Ok(cfg) => {
            let mut report = check(&cfg, clock).await;
            report.findings.insert(
                0,
                Finding::new(
                    Level::Pass,
                    "config",
                    format!("{} is valid", path.display()),
                    format!("配置文件 {} 格式正确", path.display()),
                ),
            );
            report
        }
        Err(errors) => Report {
            findings: errors
                .problems
                .iter()
                .map(|p| {
                    Finding::new(
                        Level::Fail,
                        "config",
                        format!("{}: {p}", errors.file),
                        format!("配置文件 {} 有误：{p}", errors.file),
                    )
                })
                .collect(),
            ..Report::default()
        },
    }
}

/// Checks a validated configuration: issuer, redirect URIs, keys, and WeCom `gettoken`.
pub async fn check(cfg: &Config, clock: SharedClock) -> Report {
    let mut report = Report::default();
    check_issuer(cfg, &mut report);
    check_clients(cfg, &mut report);
    let app_findings = super::app_checks::check(cfg, clock.clone()).await;
    report.findings.extend(app_findings);
    check_keys(&cfg.keys_dir, &mut report);
    // Every connector asks its upstream its own questions (secret, trusted domain …).
    let several = cfg.connectors.len() > 1;
    let store = if cfg.connectors.iter().any(|c| c.check_reads_store()) {
        crate::app::open_store(cfg)
            .await
            .ok()
            .map(crate::storage::upstream_role)
    } else {
        None
    };
    for c in &cfg.connectors {
        let label = if several {
            format!(" ({})", c.id())
        } else {
            String::new()
        };
        let domain = report.trusted_domain.clone();
        let ctx = CheckContext {
            issuer: &cfg.issuer,
            trusted_domain: domain.as_deref(),
            label: &label,
            clock: clock.clone(),
            store: store.clone(),
        };
        let findings = c.check(&ctx).await;
        report.findings.extend(findings);
    }
    report
}

/// The issuer gives the trusted domain and the callback URL (wecom-api.md §2 domain rule: exact
/// host, port included when it is not the scheme's default).
fn check_issuer(cfg: &Config, report: &mut Report) {
    let Ok(url) = url::Url::parse(&cfg.issuer) else {
        report.findings.push(Finding::new(
            Level::Fail,
            "issuer",
            format!("{:?} is not a URL", cfg.issuer),
            format!("issuer {:?} 不是合法的 URL", cfg.issuer),
        ));
        return;
    };
    let Some(host) = url.host_str() else {
        report.findings.push(Finding::new(
            Level::Fail,
            "issuer",
            "has no host",
            "issuer 缺少主机名",
        ));
        return;
    };
    let domain = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    report.trusted_domain = Some(domain.clone());
    report.callback_url = Some(format!(
        "{}/callback/{}",
        cfg.issuer,
        cfg.connectors[0].id()
    ));
    if url.scheme() == "https" {
        report.findings.push(Finding::new(
            Level::Pass,
            "issuer",
            format!("{} (https); WeCom trusted domain is {domain}", cfg.issuer),
            format!("{}（https）；企业微信可信域名应为 {domain}", cfg.issuer),
        ));
    } else {
        report.findings.push(Finding::new(
            Level::Warn,
            "issuer",
            format!(
                "{} uses plain http: fine for a local trial, but real WeCom trusted domains must \
                 be ICP-registered public hosts and clients expect https (OIDC Discovery §3)",
                cfg.issuer
            ),
            format!(
                "{} 使用 http：仅适合本机试用；正式环境的可信域名须为已备案域名并使用 https",
                cfg.issuer
            ),
        ));
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        report.findings.push(Finding::new(
            Level::Warn,
            "issuer",
            "the issuer host is an IP address: WeCom only accepts a registered domain name as \
             trusted domain",
            "issuer 的主机是 IP 地址：企业微信的可信域名只能是已备案的域名",
        ));
    }
}

/// Redirect URIs: exact absolute URIs (RFC 6749 §3.1.2), https except on loopback
/// (RFC 6749 §3.1.2.1), and never our own callback (that would loop the login).
fn check_clients(cfg: &Config, report: &mut Report) {
    let our_callback = format!("{}/callback/", cfg.issuer);
    for (i, c) in cfg.clients.iter().enumerate() {
        let topic = format!("clients[{i}] {}", c.id);
        let mut ok = true;
        for uri in &c.redirect_uris {
            let Ok(u) = url::Url::parse(uri) else {
                continue;
            };
            let loopback = matches!(
                u.host_str(),
                Some("localhost") | Some("127.0.0.1") | Some("[::1]")
            );
            if u.scheme() == "http" && !loopback {
                ok = false;
                report.findings.push(Finding::new(
                    Level::Warn,
                    topic.clone(),
                    format!(
                        "redirect URI {uri} uses plain http: codes travel in clear (RFC 6749 §3.1.2.1 asks for TLS)"
                    ),
                    format!("回调地址 {uri} 使用 http，授权码会明文传输，应改用 https"),
                ));
            }
            if uri.starts_with(&our_callback) {
                ok = false;
                report.findings.push(Finding::new(
                    Level::Fail,
                    topic.clone(),
                    format!(
                        "redirect URI {uri} is wecom-oidc's own WeCom callback: put the \
                         application's callback there, not ours"
                    ),
                    format!(
                        "回调地址 {uri} 是 wecom-oidc 自己的企业微信回调，应填写应用自己的回调地址"
                    ),
                ));
            }
        }
        if ok {
            report.findings.push(Finding::new(
                Level::Pass,
                topic,
                format!(
                    "{} client, {} redirect URI(s)",
                    if c.is_public() {
                        "public (PKCE)"
                    } else {
                        "confidential"
                    },
                    c.redirect_uris.len()
                ),
                format!(
                    "{}客户端，{} 个回调地址",
                    if c.is_public() {
                        "公开（PKCE）"
                    } else {
                        "机密"
                    },
                    c.redirect_uris.len()
                ),
            ));
        }
    }
}

/// Keys are loaded when present and reported missing otherwise: the doctor never generates.
fn check_keys(dir: &Path, report: &mut Report) {
    let has_any = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name == "keys.json" || name.ends_with(".pem")
            })
        })
        .unwrap_or(false);
    if !has_any {
        report.findings.push(Finding::new(
            Level::Warn,
            "keys",
            format!(
                "no signing key in {}: one is generated at first start; back it up, relying \
                 parties cache it",
                dir.display()
            ),
            format!(
                "{} 中还没有签名密钥：首次启动时会自动生成，请备份",
                dir.display()
            ),
        ));
        return;
    }
    match KeyStore::load_or_generate(dir) {
        Ok(keys) => report.findings.push(Finding::new(
            Level::Pass,
            "keys",
            format!(
                "{} key(s) in {}, active kid {} ({})",
                keys.keys().len(),
                dir.display(),
                keys.active_kid(),
                keys.signing_alg()
            ),
            format!(
                "{} 中有 {} 个密钥，当前签名密钥 {}（{}）",
                dir.display(),
                keys.keys().len(),
                keys.active_kid(),
                keys.signing_alg()
            ),
        )),
        Err(e) => report.findings.push(Finding::new(
            Level::Fail,
            "keys",
            format!("cannot load the signing keys: {e}"),
            format!("无法加载签名密钥：{e}"),
        )),
    }
}

/// `wecom-oidc check`: prints the report; an error (non-zero exit) when anything failed.
pub async fn run(config_path: Option<&Path>, clock: SharedClock) -> Result<(), String> {
    let path = config_path.unwrap_or(Path::new("wecom-oidc.toml"));
    let report = check_file(path, clock).await;
    print!("{}", report.render());
    if report.passed() {
        Ok(())
    } else {
        Err("the check found problems (see above)".into())
    }
}
