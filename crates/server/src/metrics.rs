//! Prometheus metrics (text exposition format at `/metrics`). One registry, owned by the app
//! state; nothing global.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicI64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignLabels {
    pub key: String,
    pub algorithm: String,
}

/// A certificate Signet manages, for its time-to-expiry gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabels {
    pub key: String,
    pub kind: String,
    pub serial: String,
}

pub struct Metrics {
    registry: Registry,
    /// Seconds until each unrevoked certificate expires (negative once expired); refreshed on
    /// every scrape.
    pub certificate_expiry: Family<CertLabels, Gauge<i64, AtomicI64>>,
    pub requests: Family<HttpLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub signatures: Family<SignLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("signet");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        let signatures = Family::<SignLabels, Counter>::default();
        let certificate_expiry = Family::<CertLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "certificate_expiry_seconds",
            "Seconds until a certificate of a Signet key expires (negative: expired); revoked certificates are not listed",
            certificate_expiry.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "signatures",
            "Signatures made, by key and algorithm",
            signatures.clone(),
        );
        Metrics {
            registry,
            certificate_expiry,
            requests,
            latency,
            signatures,
        }
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Middleware: counts requests and observes latency per matched route (never the raw path, so
/// label cardinality stays bounded).
pub async fn track(
    State(metrics): State<std::sync::Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}
