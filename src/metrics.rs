//! A small in-process metrics registry rendered in the Prometheus text exposition format
//! (version 0.0.4): HTTP requests by route template and status, logins by outcome, and for each
//! upstream service its API calls by endpoint and error code with their latency and its token
//! cache's hits and refreshes. An upstream's families carry its name
//! (`wecom_oidc_{upstream}_api_calls_total`, e.g. `wecom_oidc_wecom_api_calls_total`), given by
//! the connector that calls it: the registry itself names no upstream.
//!
//! It sits below every other layer (web, connector) so each can record into the one shared
//! [`Metrics`] handed to it at assembly time; there is no global registry. Labels only ever hold
//! route templates, endpoint paths, numeric codes and fixed outcome words, never request data,
//! so the number of series stays bounded and no secret can reach `/metrics`.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the upstream latency histogram buckets.
const LATENCY_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// One histogram: cumulative bucket counts, count and sum.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; LATENCY_BUCKETS.len()];
        }
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// How an upstream token cache answered one request for the upstream's access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCacheEvent {
    /// Served from memory.
    MemoryHit,
    /// Served from the store (e.g. after a restart).
    StoreHit,
    /// Fetched because none was cached or it was about to expire.
    Refresh,
    /// Fetched because the upstream rejected the cached one (WeCom: 40014 / 42001).
    Replace,
}

impl TokenCacheEvent {
    /// Every event, in the order of the exposition's `result` label values.
    const ALL: [TokenCacheEvent; 4] = [
        TokenCacheEvent::MemoryHit,
        TokenCacheEvent::StoreHit,
        TokenCacheEvent::Refresh,
        TokenCacheEvent::Replace,
    ];

    fn label(self) -> &'static str {
        match self {
            TokenCacheEvent::MemoryHit => "memory_hit",
            TokenCacheEvent::StoreHit => "store_hit",
            TokenCacheEvent::Refresh => "refresh",
            TokenCacheEvent::Replace => "replace",
        }
    }
}

/// The metric-name part that names an upstream service (`wecom`): it becomes part of family
/// names, so it is checked once, where a connector hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Upstream(&'static str);

impl Upstream {
    /// `name` must be lower-case ASCII letters, digits and `_`, starting with a letter, as
    /// Prometheus metric names allow; anything else is a programming error.
    pub const fn new(name: &'static str) -> Self {
        let b = name.as_bytes();
        assert!(!b.is_empty() && b[0].is_ascii_lowercase());
        let mut i = 0;
        while i < b.len() {
            assert!(b[i].is_ascii_lowercase() || b[i].is_ascii_digit() || b[i] == b'_');
            i += 1;
        }
        Upstream(name)
    }
}

/// Request counts of one route template by (method, status).
///
/// Both maps of request counts hash with `FxHash`, not the default SipHash: their keys are route
/// templates, fixed method names and status codes, never text a client chooses, so they need no
/// protection from crafted collisions, and SipHash was two-thirds of counting a request.
type RouteCounts = FxHashMap<(&'static str, u16), u64>;

/// The registry. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per route template, per (method, status). Keyed by route first so that counting a
    /// request looks the route up by `&str` and allocates nothing once the series exists.
    requests: Mutex<FxHashMap<String, RouteCounts>>,
    logins: Mutex<BTreeMap<String, u64>>,
    upstream_calls: Mutex<BTreeMap<(Upstream, String, String), u64>>,
    upstream_latency: Mutex<BTreeMap<(Upstream, String), Histogram>>,
    /// Per upstream, a count per [`TokenCacheEvent`] (in the order of `TokenCacheEvent::ALL`).
    token_cache: Mutex<BTreeMap<Upstream, [u64; 4]>>,
}

/// Locks `m`, going on with the data if a panicking thread poisoned it: counters stay usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one HTTP request answered with `status` on the route template `route`
    /// (`/callback/{connector}`, never the concrete path) with `method`.
    /// Methods other than the standard ones are counted as `OTHER`: each distinct one would be
    /// a new series.
    pub fn record_request(&self, method: &str, route: &str, status: u16) {
        let method = match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            "PATCH" => "PATCH",
            _ => "OTHER",
        };
        let mut requests = lock(&self.requests);
        let per_route = match requests.get_mut(route) {
            Some(m) => m,
            None => requests.entry(route.to_owned()).or_default(),
        };
        *per_route.entry((method, status)).or_default() += 1;
    }

    /// Counts one finished login attempt; `outcome` is a fixed word such as `success`,
    /// `access_denied` or `server_error`.
    pub fn record_login(&self, outcome: &str) {
        *lock(&self.logins).entry(outcome.to_owned()).or_default() += 1;
    }

    /// Counts one call to `upstream`'s API at `endpoint` (a path such as `/cgi-bin/gettoken`)
    /// that ended with `errcode` (`"0"` on success, `"transport"` when no answer came, or a
    /// word of the connector's such as `"backoff"`) after `elapsed`.
    pub fn record_upstream_call(
        &self,
        upstream: Upstream,
        endpoint: &str,
        errcode: &str,
        elapsed: Duration,
    ) {
        *lock(&self.upstream_calls)
            .entry((upstream, endpoint.to_owned(), errcode.to_owned()))
            .or_default() += 1;
        lock(&self.upstream_latency)
            .entry((upstream, endpoint.to_owned()))
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// Shows `upstream`'s token cache family from now on, at zero until something is counted.
    pub fn register_token_cache(&self, upstream: Upstream) {
        lock(&self.token_cache).entry(upstream).or_default();
    }

    /// Counts how `upstream`'s token cache served one request.
    pub fn record_token_cache(&self, upstream: Upstream, event: TokenCacheEvent) {
        // `ALL` lists the events in declaration order, so the discriminant is the index.
        lock(&self.token_cache).entry(upstream).or_default()[event as usize] += 1;
    }

    /// How many logins ended with `outcome` so far.
    pub fn logins(&self, outcome: &str) -> u64 {
        lock(&self.logins).get(outcome).copied().unwrap_or(0)
    }

    /// The registry in the Prometheus text format (content type
    /// `text/plain; version=0.0.4; charset=utf-8`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP wecom_oidc_http_requests_total HTTP requests by method, route template and status.\n");
        out.push_str("# TYPE wecom_oidc_http_requests_total counter\n");
        let guard = lock(&self.requests);
        // Sorted, so the exposition is stable from one scrape to the next.
        let requests: BTreeMap<(&str, &str, u16), u64> = guard
            .iter()
            .flat_map(|(route, m)| {
                m.iter()
                    .map(move |((method, status), n)| ((*method, route.as_str(), *status), *n))
            })
            .collect();
        for ((method, route, status), n) in requests {
            let _ = writeln!(
                out,
                "wecom_oidc_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str("# HELP wecom_oidc_logins_total Finished login callbacks by outcome.\n");
        out.push_str("# TYPE wecom_oidc_logins_total counter\n");
        for (outcome, n) in lock(&self.logins).iter() {
            let _ = writeln!(
                out,
                "wecom_oidc_logins_total{{outcome=\"{}\"}} {n}",
                escape(outcome)
            );
        }
        let calls = lock(&self.upstream_calls);
        let latency = lock(&self.upstream_latency);
        let caches = lock(&self.token_cache);
        let upstreams: BTreeSet<Upstream> = calls
            .keys()
            .map(|k| k.0)
            .chain(latency.keys().map(|k| k.0))
            .chain(caches.keys().copied())
            .collect();
        for up in upstreams {
            let name = up.0;
            let family = format!("wecom_oidc_{name}_api_calls_total");
            let _ = writeln!(
                out,
                "# HELP {family} Calls to the {name} API by endpoint and error code."
            );
            let _ = writeln!(out, "# TYPE {family} counter");
            for ((_, endpoint, errcode), n) in calls.iter().filter(|(k, _)| k.0 == up) {
                let _ = writeln!(
                    out,
                    "{family}{{endpoint=\"{}\",errcode=\"{}\"}} {n}",
                    escape(endpoint),
                    escape(errcode)
                );
            }
            let family = format!("wecom_oidc_{name}_api_duration_seconds");
            let _ = writeln!(
                out,
                "# HELP {family} Latency of calls to the {name} API by endpoint."
            );
            let _ = writeln!(out, "# TYPE {family} histogram");
            for ((_, endpoint), h) in latency.iter().filter(|(k, _)| k.0 == up) {
                let ep = escape(endpoint);
                for (bound, n) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
                    let _ = writeln!(
                        out,
                        "{family}_bucket{{endpoint=\"{ep}\",le=\"{bound}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "{family}_bucket{{endpoint=\"{ep}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(out, "{family}_sum{{endpoint=\"{ep}\"}} {}", h.sum);
                let _ = writeln!(out, "{family}_count{{endpoint=\"{ep}\"}} {}", h.count);
            }
            if let Some(counts) = caches.get(&up) {
                let family = format!("wecom_oidc_{name}_token_cache_total");
                let _ = writeln!(
                    out,
                    "# HELP {family} How the {name} access token cache served requests."
                );
                let _ = writeln!(out, "# TYPE {family} counter");
                for (event, n) in TokenCacheEvent::ALL.iter().zip(counts) {
                    let _ = writeln!(out, "{family}{{result=\"{}\"}} {n}", event.label());
                }
            }
        }
        out
    }
}

/// Escapes a label value as the text format requires: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const WECOM: Upstream = Upstream::new("wecom");

    /// Label names and values.
    type Labels = Vec<(String, String)>;

    /// One sample line: metric name and labels (sorted by name), value.
    type Samples = BTreeMap<(String, Labels), f64>;

    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    /// `{name="value",…}` at the start of `s`: the labels (values unescaped) and the rest.
    fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
        let mut labels = Vec::new();
        let Some(mut rest) = s.strip_prefix('{') else {
            return Ok((labels, s));
        };
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                return Ok((labels, after));
            }
            let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
            if !is_name(name) || name.starts_with("__") {
                return Err(format!("bad label name {name:?}"));
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    (_, '\n') => return Err("raw newline in a label value".into()),
                    (_, c) => value.push(c),
                }
            };
            if labels.iter().any(|(n, _)| n == name) {
                return Err(format!("label {name} twice"));
            }
            labels.push((name.to_owned(), value));
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }

    /// Parses `text` by the Prometheus text exposition format 0.0.4: every family has one
    /// `# HELP` and one `# TYPE` line before its samples, which are contiguous and named after
    /// it (`_bucket`, `_sum`, `_count` for a histogram, whose buckets are cumulative and end with
    /// `le="+Inf"` equal to `_count`).
    fn parse(text: &str) -> Result<Samples, String> {
        if !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        let mut samples = Samples::new();
        let mut seen = HashSet::new();
        let mut family: Option<(String, String)> = None;
        let mut help: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').ok_or("HELP without text")?;
                help = Some(name.to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or("TYPE without type")?;
                if help.as_deref() != Some(name) || !is_name(name) || !seen.insert(name.to_owned())
                {
                    return Err(format!(
                        "TYPE {name}: no HELP just before, or declared twice"
                    ));
                }
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(format!("bad type {kind}"));
                }
                family = Some((name.to_owned(), kind.to_owned()));
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                return Err(format!("unexpected line {line:?}"));
            }
            let (name_end, _) = line
                .char_indices()
                .find(|(_, c)| *c == '{' || *c == ' ')
                .ok_or("sample without value")?;
            let name = &line[..name_end];
            let (fam, kind) = family.as_ref().ok_or("sample before any TYPE")?;
            let belongs = match kind.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(fam.as_str())),
                _ => name == fam,
            };
            if !belongs {
                return Err(format!("sample {name} outside its family {fam}"));
            }
            let (mut labels, rest) = parse_labels(&line[name_end..])?;
            let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
            };
            labels.sort();
            if samples.insert((name.to_owned(), labels), value).is_some() {
                return Err(format!("duplicate series in {line:?}"));
            }
        }
        check_histograms(&samples)?;
        Ok(samples)
    }

    fn check_histograms(samples: &Samples) -> Result<(), String> {
        let mut buckets: BTreeMap<(String, Labels), Vec<(f64, f64)>> = BTreeMap::new();
        for ((name, labels), value) in samples {
            let Some(base) = name.strip_suffix("_bucket") else {
                continue;
            };
            let le = labels
                .iter()
                .find(|(n, _)| n == "le")
                .ok_or("bucket without le")?;
            let bound: f64 = match le.1.as_str() {
                "+Inf" => f64::INFINITY,
                v => v.parse().map_err(|_| format!("bad le {v:?}"))?,
            };
            let rest: Vec<_> = labels.iter().filter(|(n, _)| n != "le").cloned().collect();
            buckets
                .entry((base.to_owned(), rest))
                .or_default()
                .push((bound, *value));
        }
        for ((base, labels), mut series) in buckets {
            series.sort_by(|a, b| a.0.total_cmp(&b.0));
            if series.windows(2).any(|w| w[0].1 > w[1].1) {
                return Err(format!("{base} buckets not cumulative"));
            }
            let count = samples.get(&(format!("{base}_count"), labels.clone()));
            let last = series.last().ok_or("no buckets")?;
            if last.0 != f64::INFINITY || Some(&last.1) != count {
                return Err(format!("{base}: +Inf bucket missing or not _count"));
            }
            if !samples.contains_key(&(format!("{base}_sum"), labels)) {
                return Err(format!("{base}: no _sum"));
            }
        }
        Ok(())
    }

    fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut key: Labels = labels
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        key.sort();
        samples.get(&(name.to_owned(), key)).copied()
    }

    #[test]
    fn every_family_has_help_and_type_lines_even_when_empty() {
        // Before any connector opens: the core's own families.
        let text = Metrics::new().render();
        for family in ["wecom_oidc_http_requests_total", "wecom_oidc_logins_total"] {
            assert!(text.contains(&format!("# HELP {family} ")), "{text}");
            assert!(text.contains(&format!("# TYPE {family} ")), "{text}");
        }
        // A connector registers its upstream's cache when it opens, before any call: from then
        // on every family of that upstream is there, at zero.
        let m = Metrics::new();
        m.register_token_cache(WECOM);
        let text = m.render();
        for family in [
            "wecom_oidc_http_requests_total",
            "wecom_oidc_logins_total",
            "wecom_oidc_wecom_api_calls_total",
            "wecom_oidc_wecom_api_duration_seconds",
            "wecom_oidc_wecom_token_cache_total",
        ] {
            assert!(text.contains(&format!("# HELP {family} ")), "{text}");
            assert!(text.contains(&format!("# TYPE {family} ")), "{text}");
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn counters_accumulate_per_label_set() {
        let m = Metrics::new();
        m.record_request("GET", "/authorize", 302);
        m.record_request("GET", "/authorize", 302);
        m.record_request("POST", "/token", 400);
        m.record_login("success");
        m.record_token_cache(WECOM, TokenCacheEvent::Refresh);
        m.record_token_cache(WECOM, TokenCacheEvent::MemoryHit);
        m.record_token_cache(WECOM, TokenCacheEvent::MemoryHit);
        let text = m.render();
        assert!(text.contains(
            "wecom_oidc_http_requests_total{method=\"GET\",route=\"/authorize\",status=\"302\"} 2\n"
        ));
        assert!(text.contains(
            "wecom_oidc_http_requests_total{method=\"POST\",route=\"/token\",status=\"400\"} 1\n"
        ));
        assert!(text.contains("wecom_oidc_logins_total{outcome=\"success\"} 1\n"));
        assert!(text.contains("wecom_oidc_wecom_token_cache_total{result=\"memory_hit\"} 2\n"));
        assert!(text.contains("wecom_oidc_wecom_token_cache_total{result=\"refresh\"} 1\n"));
        assert_eq!(m.logins("success"), 1);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let m = Metrics::new();
        m.record_upstream_call(WECOM, "/cgi-bin/gettoken", "0", Duration::from_millis(30));
        m.record_upstream_call(WECOM, "/cgi-bin/gettoken", "40001", Duration::from_secs(3));
        let text = m.render();
        assert!(text.contains(
            "wecom_oidc_wecom_api_calls_total{endpoint=\"/cgi-bin/gettoken\",errcode=\"40001\"} 1\n"
        ));
        assert!(text.contains("_bucket{endpoint=\"/cgi-bin/gettoken\",le=\"0.025\"} 0\n"));
        assert!(text.contains("_bucket{endpoint=\"/cgi-bin/gettoken\",le=\"0.05\"} 1\n"));
        assert!(text.contains("_bucket{endpoint=\"/cgi-bin/gettoken\",le=\"5\"} 2\n"));
        assert!(text.contains("_bucket{endpoint=\"/cgi-bin/gettoken\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("_count{endpoint=\"/cgi-bin/gettoken\"} 2\n"));
    }

    #[test]
    fn each_upstream_has_its_own_families_named_after_it() {
        let m = Metrics::new();
        let other = Upstream::new("feishu");
        m.register_token_cache(other);
        m.record_upstream_call(WECOM, "/cgi-bin/gettoken", "0", Duration::from_millis(5));
        m.record_upstream_call(
            other,
            "/open-apis/auth",
            "99991663",
            Duration::from_millis(7),
        );
        let text = m.render();
        let samples = parse(&text).expect(&text);
        let wecom = [("endpoint", "/cgi-bin/gettoken"), ("errcode", "0")];
        let feishu = [("endpoint", "/open-apis/auth"), ("errcode", "99991663")];
        assert_eq!(
            value(&samples, "wecom_oidc_wecom_api_calls_total", &wecom),
            Some(1.0)
        );
        assert_eq!(
            value(&samples, "wecom_oidc_feishu_api_calls_total", &feishu),
            Some(1.0)
        );
        assert_eq!(
            value(&samples, "wecom_oidc_wecom_api_calls_total", &feishu),
            None
        );
        // A registered cache shows at zero; an upstream without a cache has no cache family.
        let hits = [("result", "memory_hit")];
        assert_eq!(
            value(&samples, "wecom_oidc_feishu_token_cache_total", &hits),
            Some(0.0)
        );
        assert!(
            !text.contains("wecom_oidc_wecom_token_cache_total"),
            "{text}"
        );
    }

    #[test]
    #[should_panic]
    fn an_upstream_name_that_is_no_metric_name_part_is_refused() {
        let _ = Upstream::new("We-Com");
    }

    #[test]
    fn label_values_are_escaped_per_text_format() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_exposition_parses_as_text_format_0_0_4_with_every_family_and_label() {
        let m = Metrics::new();
        assert!(parse(&m.render()).is_ok(), "{}", m.render());
        let route = "/a\"b\\c\nd";
        m.record_request("GET", route, 200);
        m.record_request("FOO", "/token", 405);
        m.record_login("success");
        m.record_upstream_call(WECOM, "/cgi-bin/gettoken", "0", Duration::from_millis(30));
        m.record_upstream_call(WECOM, "/cgi-bin/gettoken", "40001", Duration::from_secs(3));
        m.record_token_cache(WECOM, TokenCacheEvent::StoreHit);
        let text = m.render();
        let samples = parse(&text).expect(&text);
        for (family, kind) in [
            ("wecom_oidc_http_requests_total", "counter"),
            ("wecom_oidc_logins_total", "counter"),
            ("wecom_oidc_wecom_api_calls_total", "counter"),
            ("wecom_oidc_wecom_api_duration_seconds", "histogram"),
            ("wecom_oidc_wecom_token_cache_total", "counter"),
        ] {
            assert!(
                text.contains(&format!("\n# TYPE {family} {kind}\n")),
                "{text}"
            );
        }
        let requests = "wecom_oidc_http_requests_total";
        let get = [("method", "GET"), ("route", route), ("status", "200")];
        assert_eq!(value(&samples, requests, &get), Some(1.0), "{text}");
        let other = [("method", "OTHER"), ("route", "/token"), ("status", "405")];
        assert_eq!(value(&samples, requests, &other), Some(1.0), "{text}");
        let calls = [("endpoint", "/cgi-bin/gettoken"), ("errcode", "40001")];
        let calls_total = "wecom_oidc_wecom_api_calls_total";
        assert_eq!(value(&samples, calls_total, &calls), Some(1.0));
        let sum = "wecom_oidc_wecom_api_duration_seconds_sum";
        let sum = value(&samples, sum, &[("endpoint", "/cgi-bin/gettoken")]);
        assert!(sum.is_some_and(|s| (s - 3.03).abs() < 1e-9), "{text}");
        let cache = [("result", "store_hit")];
        let cache_total = "wecom_oidc_wecom_token_cache_total";
        assert_eq!(value(&samples, cache_total, &cache), Some(1.0));
        // 1 + 1 requests, 1 login, 2 calls, 10 + 1 buckets with sum and count, 4 cache results.
        assert_eq!(samples.len(), 2 + 1 + 2 + 13 + 4, "{text}");
    }

    #[test]
    fn the_parser_refuses_what_the_format_forbids() {
        let ok = "# HELP a_total x.\n# TYPE a_total counter\na_total{l=\"v\"} 1\n";
        assert!(parse(ok).is_ok());
        for bad in [
            "a_total 1\n",
            "# HELP a_total x.\n# TYPE a_total counter\nb_total 1\n",
            "# HELP a_total x.\n# TYPE a_total counter\na_total{l=\"v\\q\"} 1\n",
            "# HELP a_total x.\n# TYPE a_total counter\na_total{l=\"v} 1\n",
            "# HELP a_total x.\n# TYPE a_total counter\na_total one\n",
            "# HELP h x.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
