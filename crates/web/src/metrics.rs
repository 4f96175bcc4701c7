//! Request counters and latency sums per route, rendered in Prometheus text format.
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// (method, status) → (requests, seconds)
type RouteStats = BTreeMap<(&'static str, u16), (u64, f64)>;

#[derive(Default)]
pub struct Metrics {
    /// Keyed by route template; looked up by `&str`, so counting allocates nothing.
    routes: Mutex<HashMap<String, RouteStats>>,
}

/// The standard methods as static names (anything else counts as OTHER).
pub fn method_name(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl Metrics {
    pub fn observe(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = match routes.get_mut(route) {
            Some(stats) => stats,
            None => routes.entry(route.to_owned()).or_default(),
        };
        let entry = stats.entry((method, status)).or_default();
        entry.0 += 1;
        entry.1 += elapsed.as_secs_f64();
    }

    pub fn render(&self, db_backend: &str) -> String {
        use std::fmt::Write;
        let routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut sorted: Vec<(&String, &RouteStats)> = routes.iter().collect();
        sorted.sort_by_key(|(route, _)| *route);
        let mut out = String::new();
        let _ = writeln!(out, "# HELP rapport_http_requests_total HTTP requests served.");
        let _ = writeln!(out, "# TYPE rapport_http_requests_total counter");
        for (route, stats) in &sorted {
            for ((method, status), (count, _)) in stats.iter() {
                let _ = writeln!(
                    out,
                    "rapport_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
                );
            }
        }
        let _ = writeln!(out, "# HELP rapport_http_request_seconds_sum Time spent serving HTTP requests.");
        let _ = writeln!(out, "# TYPE rapport_http_request_seconds_sum counter");
        for (route, stats) in &sorted {
            for ((method, status), (_, seconds)) in stats.iter() {
                let _ = writeln!(
                    out,
                    "rapport_http_request_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {seconds:.6}"
                );
            }
        }
        let _ = writeln!(out, "# HELP rapport_info Build and backend information.");
        let _ = writeln!(out, "# TYPE rapport_info gauge");
        let _ = writeln!(out, "rapport_info{{version=\"{}\",backend=\"{db_backend}\"}} 1", env!("CARGO_PKG_VERSION"));
        out
    }
}
