//! A small in-process metrics registry rendered in the Prometheus text exposition format
//! (version 0.0.4): HTTP requests by route template and status, logins by outcome, WeCom API
//! calls by endpoint and errcode with their latency, and the WeCom token cache's hits and
//! refreshes.
//!
//! It sits below every other layer (web, connector) so each can record into the one shared
//! [`Metrics`] handed to it at assembly time; there is no global registry. Labels only ever hold
//! route templates, endpoint paths, numeric codes and fixed outcome words, never request data,
//! so the number of series stays bounded and no secret can reach `/metrics`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the WeCom latency histogram buckets.
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

/// How the WeCom token cache answered one request for the app's access_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCacheEvent {
    /// Served from memory.
    MemoryHit,
    /// Served from the store (e.g. after a restart).
    StoreHit,
    /// Fetched with `gettoken` because none was cached or it was about to expire.
    Refresh,
    /// Fetched with `gettoken` because WeCom rejected the cached one (40014 / 42001).
    Replace,
}

/// Request counts of one route template by (method, status).
type RouteCounts = HashMap<(&'static str, u16), u64>;

/// The registry. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per route template, per (method, status). Keyed by route first so that counting a
    /// request looks the route up by `&str` and allocates nothing once the series exists.
    requests: Mutex<HashMap<String, RouteCounts>>,
    logins: Mutex<BTreeMap<String, u64>>,
    wecom_calls: Mutex<BTreeMap<(String, String), u64>>,
    wecom_latency: Mutex<BTreeMap<String, Histogram>>,
    token_memory_hits: AtomicU64,
    token_store_hits: AtomicU64,
    token_refreshes: AtomicU64,
    token_replacements: AtomicU64,
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

    /// Counts one WeCom API call to `endpoint` (a path such as `/cgi-bin/gettoken`) that ended
    /// with `errcode` (`"0"` on success, `"transport"` when no JSON answer came) after `elapsed`.
    pub fn record_wecom_call(&self, endpoint: &str, errcode: &str, elapsed: Duration) {
        *lock(&self.wecom_calls)
            .entry((endpoint.to_owned(), errcode.to_owned()))
            .or_default() += 1;
        lock(&self.wecom_latency)
            .entry(endpoint.to_owned())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// Counts how the token cache served one request.
    pub fn record_token_cache(&self, event: TokenCacheEvent) {
        let counter = match event {
            TokenCacheEvent::MemoryHit => &self.token_memory_hits,
            TokenCacheEvent::StoreHit => &self.token_store_hits,
            TokenCacheEvent::Refresh => &self.token_refreshes,
            TokenCacheEvent::Replace => &self.token_replacements,
        };
        counter.fetch_add(1, Ordering::Relaxed);
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
        out.push_str(
            "# HELP wecom_oidc_wecom_api_calls_total WeCom API calls by endpoint and errcode.\n",
        );
        out.push_str("# TYPE wecom_oidc_wecom_api_calls_total counter\n");
        for ((endpoint, errcode), n) in lock(&self.wecom_calls).iter() {
            let _ = writeln!(
                out,
                "wecom_oidc_wecom_api_calls_total{{endpoint=\"{}\",errcode=\"{}\"}} {n}",
                escape(endpoint),
                escape(errcode)
            );
        }
        out.push_str(
            "# HELP wecom_oidc_wecom_api_duration_seconds Latency of WeCom API calls by endpoint.\n",
        );
        out.push_str("# TYPE wecom_oidc_wecom_api_duration_seconds histogram\n");
        for (endpoint, h) in lock(&self.wecom_latency).iter() {
            let ep = escape(endpoint);
            for (bound, n) in LATENCY_BUCKETS.iter().zip(&h.buckets) {
                let _ = writeln!(
                    out,
                    "wecom_oidc_wecom_api_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "wecom_oidc_wecom_api_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "wecom_oidc_wecom_api_duration_seconds_sum{{endpoint=\"{ep}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "wecom_oidc_wecom_api_duration_seconds_count{{endpoint=\"{ep}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP wecom_oidc_wecom_token_cache_total How the WeCom access_token cache served requests.\n");
        out.push_str("# TYPE wecom_oidc_wecom_token_cache_total counter\n");
        for (result, counter) in [
            ("memory_hit", &self.token_memory_hits),
            ("store_hit", &self.token_store_hits),
            ("refresh", &self.token_refreshes),
            ("replace", &self.token_replacements),
        ] {
            let _ = writeln!(
                out,
                "wecom_oidc_wecom_token_cache_total{{result=\"{result}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
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
        let text = Metrics::new().render();
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
        m.record_token_cache(TokenCacheEvent::Refresh);
        m.record_token_cache(TokenCacheEvent::MemoryHit);
        m.record_token_cache(TokenCacheEvent::MemoryHit);
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
        m.record_wecom_call("/cgi-bin/gettoken", "0", Duration::from_millis(30));
        m.record_wecom_call("/cgi-bin/gettoken", "40001", Duration::from_secs(3));
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
        m.record_wecom_call("/cgi-bin/gettoken", "0", Duration::from_millis(30));
        m.record_wecom_call("/cgi-bin/gettoken", "40001", Duration::from_secs(3));
        m.record_token_cache(TokenCacheEvent::StoreHit);
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
