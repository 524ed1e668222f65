//! The in-process metrics registry (a `prometheus-client` [`Registry`]) and its exposition in
//! the Prometheus text format 0.0.4: HTTP requests by route template and status, logins by
//! outcome, WeCom API calls by endpoint and errcode with their latency, and the WeCom token
//! cache's hits and refreshes.
//!
//! It sits below every other layer (web, connector) so each can record into the one shared
//! [`Metrics`] handed to it at assembly time; there is no global registry. Labels only ever hold
//! route templates, endpoint paths, numeric codes and fixed outcome words, never request data,
//! so the number of series stays bounded and no secret can reach `/metrics`.
//!
//! Counting a request takes a read lock on its family and bumps an atomic counter; only the
//! first request of a new (method, route, status) series takes the write lock.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the WeCom latency histogram buckets.
const LATENCY_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How the WeCom token cache answered one request for the app's access_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCacheEvent {
    // The order of `ALL`: the discriminant indexes `Metrics::token_cache`.
    /// Served from memory.
    MemoryHit,
    /// Served from the store (e.g. after a restart).
    StoreHit,
    /// Fetched with `gettoken` because none was cached or it was about to expire.
    Refresh,
    /// Fetched with `gettoken` because WeCom rejected the cached one (40014 / 42001).
    Replace,
}

impl TokenCacheEvent {
    const ALL: [Self; 4] = [
        Self::MemoryHit,
        Self::StoreHit,
        Self::Refresh,
        Self::Replace,
    ];

    /// The `result` label value.
    fn label(self) -> &'static str {
        match self {
            Self::MemoryHit => "memory_hit",
            Self::StoreHit => "store_hit",
            Self::Refresh => "refresh",
            Self::Replace => "replace",
        }
    }
}

/// `wecom_oidc_http_requests_total` labels, in exposition order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LoginLabels {
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    endpoint: String,
    errcode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

/// The registry. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    logins: Family<LoginLabels, Counter>,
    wecom_calls: Family<CallLabels, Counter>,
    wecom_latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// The four `wecom_oidc_wecom_token_cache_total` series, in [`TokenCacheEvent::ALL`] order:
    /// created up front, so they are exposed (at 0) before the first event.
    token_cache: [Counter; 4],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let logins = Family::<LoginLabels, Counter>::default();
        let wecom_calls = Family::<CallLabels, Counter>::default();
        let wecom_latency: Family<EndpointLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let token_family = Family::<CacheLabels, Counter>::default();
        let token_cache = TokenCacheEvent::ALL.map(|event| {
            token_family
                .get_or_create(&CacheLabels {
                    result: event.label(),
                })
                .clone()
        });
        // Counter names without `_total`: the encoder appends it (OpenMetrics naming), so the
        // exposed names are those of the help texts. The encoder also appends the final period.
        let mut registry = Registry::default();
        registry.register(
            "wecom_oidc_http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "wecom_oidc_logins",
            "Finished login callbacks by outcome",
            logins.clone(),
        );
        registry.register(
            "wecom_oidc_wecom_api_calls",
            "WeCom API calls by endpoint and errcode",
            wecom_calls.clone(),
        );
        registry.register(
            "wecom_oidc_wecom_api_duration_seconds",
            "Latency of WeCom API calls by endpoint",
            wecom_latency.clone(),
        );
        registry.register(
            "wecom_oidc_wecom_token_cache",
            "How the WeCom access_token cache served requests",
            token_family,
        );
        Self {
            registry,
            requests,
            logins,
            wecom_calls,
            wecom_latency,
            token_cache,
        }
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
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// Counts one finished login attempt; `outcome` is a fixed word such as `success`,
    /// `access_denied` or `server_error`.
    pub fn record_login(&self, outcome: &str) {
        self.logins
            .get_or_create(&LoginLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one WeCom API call to `endpoint` (a path such as `/cgi-bin/gettoken`) that ended
    /// with `errcode` (`"0"` on success, `"transport"` when no JSON answer came) after `elapsed`.
    pub fn record_wecom_call(&self, endpoint: &str, errcode: &str, elapsed: Duration) {
        self.wecom_calls
            .get_or_create(&CallLabels {
                endpoint: endpoint.to_owned(),
                errcode: errcode.to_owned(),
            })
            .inc();
        self.wecom_latency
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts how the token cache served one request.
    pub fn record_token_cache(&self, event: TokenCacheEvent) {
        self.token_cache[event as usize].inc();
    }

    /// How many logins ended with `outcome` so far.
    pub fn logins(&self, outcome: &str) -> u64 {
        self.logins
            .get(&LoginLabels {
                outcome: outcome.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// The registry in the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]). A family is listed
    /// once it has a series: the token cache's always, the others from their first event.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would only cut the text short.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

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
    fn a_fresh_registry_exposes_the_token_cache_series_at_zero() {
        let text = Metrics::new().render();
        let samples = parse(&text).expect(&text);
        for result in ["memory_hit", "store_hit", "refresh", "replace"] {
            let v = value(
                &samples,
                "wecom_oidc_wecom_token_cache_total",
                &[("result", result)],
            );
            assert_eq!(v, Some(0.0), "{text}");
        }
    }

    #[test]
    fn every_family_keeps_its_name_type_and_labels_and_the_text_parses() {
        let m = Metrics::new();
        m.record_request("GET", "/authorize", 302);
        m.record_login("success");
        m.record_wecom_call("/cgi-bin/gettoken", "0", Duration::from_millis(30));
        let text = m.render();
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
            assert!(text.contains(&format!("# HELP {family} ")), "{text}");
        }
        assert!(text.contains(
            "# HELP wecom_oidc_http_requests_total HTTP requests by method, route template and status.\n"
        ));
        let samples = parse(&text).expect(&text);
        assert_eq!(samples.len(), 1 + 1 + 1 + (11 + 2) + 4, "{text}");
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
        assert!(text.contains("wecom_oidc_wecom_token_cache_total{result=\"replace\"} 0\n"));
        assert_eq!(m.logins("success"), 1);
        assert_eq!(m.logins("access_denied"), 0);
    }

    #[test]
    fn unknown_methods_share_one_series() {
        let m = Metrics::new();
        m.record_request("FOO", "/token", 405);
        m.record_request("BAR", "/token", 405);
        let samples = parse(&m.render()).expect("parses");
        let labels = [("method", "OTHER"), ("route", "/token"), ("status", "405")];
        assert_eq!(
            value(&samples, "wecom_oidc_http_requests_total", &labels),
            Some(2.0)
        );
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
        let samples = parse(&text).expect(&text);
        let sum = value(
            &samples,
            "wecom_oidc_wecom_api_duration_seconds_sum",
            &[("endpoint", "/cgi-bin/gettoken")],
        );
        assert!(sum.is_some_and(|s| (s - 3.03).abs() < 1e-9), "{text}");
    }

    #[test]
    fn label_values_are_escaped_per_text_format() {
        let m = Metrics::new();
        let route = "/a\"b\\c\nd";
        m.record_request("GET", route, 200);
        let text = m.render();
        assert!(text.contains("route=\"/a\\\"b\\\\c\\nd\""), "{text}");
        let samples = parse(&text).expect(&text);
        let labels = [("method", "GET"), ("route", route), ("status", "200")];
        assert_eq!(
            value(&samples, "wecom_oidc_http_requests_total", &labels),
            Some(1.0)
        );
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
