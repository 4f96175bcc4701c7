//! Request counters and latency sums per route, rendered in Prometheus text format.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// (method, route, status)
type RouteKey = (String, String, u16);

#[derive(Default)]
pub struct Metrics {
    /// Requests served and seconds spent, per route.
    routes: Mutex<BTreeMap<RouteKey, (u64, f64)>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = routes.entry((method.to_owned(), route.to_owned(), status)).or_default();
        entry.0 += 1;
        entry.1 += elapsed.as_secs_f64();
    }

    pub fn render(&self, db_backend: &str) -> String {
        use std::fmt::Write;
        let routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        let _ = writeln!(out, "# HELP rapport_http_requests_total HTTP requests served.");
        let _ = writeln!(out, "# TYPE rapport_http_requests_total counter");
        for ((method, route, status), (count, _)) in routes.iter() {
            let _ = writeln!(
                out,
                "rapport_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(out, "# HELP rapport_http_request_seconds_sum Time spent serving HTTP requests.");
        let _ = writeln!(out, "# TYPE rapport_http_request_seconds_sum counter");
        for ((method, route, status), (_, seconds)) in routes.iter() {
            let _ = writeln!(
                out,
                "rapport_http_request_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {seconds:.6}"
            );
        }
        let _ = writeln!(out, "# HELP rapport_info Build and backend information.");
        let _ = writeln!(out, "# TYPE rapport_info gauge");
        let _ = writeln!(out, "rapport_info{{version=\"{}\",backend=\"{db_backend}\"}} 1", env!("CARGO_PKG_VERSION"));
        out
    }
}
