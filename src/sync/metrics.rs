//! Prometheus metrics of mirror jobs (OpenMetrics text, as
//! `prometheus-client` writes it): images by job and action, bytes, job
//! runs (last success, duration, runs skipped because the previous one was
//! still going), and, read from the transports at each scrape, requests by
//! registry, method and status, retries, and the pull budget a registry
//! states.
//!
//! Owns the metric names and labels (an interface: dashboards read them).
//! Never serves HTTP: the app does, with [`Metrics::encode`].

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::report::{Action, ImageReport};
use crate::store::Stores;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImageLabels {
    job: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    registry: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    registry: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    sender: String,
    outcome: String,
}

/// Job durations, in seconds: a no-op run of a small job takes under a
/// second, a first mirror of a namespace can take an hour.
const DURATION_BUCKETS: [f64; 10] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

pub struct Metrics {
    registry: Registry,
    images: Family<ImageLabels, Counter>,
    bytes: Family<JobLabels, Counter>,
    last_success: Family<JobLabels, Gauge<f64, AtomicU64>>,
    duration: Family<JobLabels, Histogram>,
    runs_skipped: Family<JobLabels, Counter>,
    requests: Family<RequestLabels, Counter>,
    retries: Family<RegistryLabels, Counter>,
    ratelimit: Family<RegistryLabels, Gauge>,
    events: Family<EventLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ocirepl");
        let images = Family::<ImageLabels, Counter>::default();
        registry.register(
            "images",
            "Images handled, by job and action",
            images.clone(),
        );
        let bytes = Family::<JobLabels, Counter>::default();
        registry.register("bytes_copied", "Blob bytes copied", bytes.clone());
        let last_success = Family::<JobLabels, Gauge<f64, AtomicU64>>::default();
        registry.register_with_unit(
            "job_last_success_timestamp",
            "When a run of the job last ended without a failed image (Unix time)",
            Unit::Seconds,
            last_success.clone(),
        );
        let duration = Family::<JobLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(DURATION_BUCKETS)
        });
        registry.register_with_unit(
            "job_duration",
            "How long a run of the job took",
            Unit::Seconds,
            duration.clone(),
        );
        let runs_skipped = Family::<JobLabels, Counter>::default();
        registry.register(
            "job_runs_skipped",
            "Scheduled runs skipped because the previous run was still going",
            runs_skipped.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests to registries, by method and status (0: no answer)",
            requests.clone(),
        );
        let retries = Family::<RegistryLabels, Counter>::default();
        registry.register(
            "retries",
            "Requests sent again after a transient failure",
            retries.clone(),
        );
        let ratelimit = Family::<RegistryLabels, Gauge>::default();
        registry.register(
            "ratelimit_remaining",
            "Pulls left in the registry's rate-limit window, as it last stated",
            ratelimit.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Registry events and webhooks, by sender and outcome (queued, ignored, duplicate, invalid, unauthorized)",
            events.clone(),
        );
        Metrics {
            events,
            registry,
            images,
            bytes,
            last_success,
            duration,
            runs_skipped,
            requests,
            retries,
            ratelimit,
        }
    }

    /// An image's outcome.
    pub fn image(&self, r: &ImageReport) {
        let job = r.job.clone().unwrap_or_default();
        let action = match r.action {
            Action::Copied => "copied",
            Action::UpToDate => "up_to_date",
            Action::Skipped => "skipped",
            Action::Failed => "failed",
            Action::Copy => "planned",
            Action::Pruned => "pruned",
            Action::Prune => "planned_prune",
            Action::Unverified => "unverified",
        };
        self.images
            .get_or_create(&ImageLabels {
                job: job.clone(),
                action: action.into(),
            })
            .inc();
        if r.action == Action::Copied {
            self.bytes
                .get_or_create(&JobLabels { job })
                .inc_by(r.bytes_copied);
        }
    }

    /// A run of a job ended after `seconds`; `ok` without a failed image.
    pub fn job_run(&self, job: &str, seconds: f64, ok: bool) {
        let labels = JobLabels { job: job.into() };
        self.duration.get_or_create(&labels).observe(seconds);
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.last_success.get_or_create(&labels).set(now);
        }
    }

    /// An event (or a request that was not one) from `sender`.
    pub fn event(&self, sender: &str, outcome: &str) {
        self.events
            .get_or_create(&EventLabels {
                sender: sender.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// A scheduled run of `job` did not start: the last one was still going.
    pub fn run_skipped(&self, job: &str) {
        self.runs_skipped
            .get_or_create(&JobLabels { job: job.into() })
            .inc();
    }

    /// The text a scrape gets, with the transports' counters brought up to date.
    pub fn encode(&self, stores: &Stores) -> String {
        // One registry may be reached by several transports (other
        // credentials): the counters add up across them.
        let mut requests: BTreeMap<(String, String, u16), u64> = BTreeMap::new();
        let mut retries: BTreeMap<String, u64> = BTreeMap::new();
        for registry in stores.registries() {
            let name = registry.name().to_string();
            let stats = registry.stats();
            for (method, status, n) in stats.requests() {
                *requests.entry((name.clone(), method, status)).or_default() += n;
            }
            *retries.entry(name.clone()).or_default() += stats.retries();
            if let Some(limit) = stats.ratelimit() {
                self.ratelimit
                    .get_or_create(&RegistryLabels { registry: name })
                    .set(i64::try_from(limit.remaining).unwrap_or(i64::MAX));
            }
        }
        for ((registry, method, status), n) in requests {
            let labels = RequestLabels {
                registry,
                method,
                code: status.to_string(),
            };
            let c = self.requests.get_or_create(&labels);
            c.inc_by(n.saturating_sub(c.get()));
        }
        for (registry, n) in retries {
            let r = self.retries.get_or_create(&RegistryLabels { registry });
            r.inc_by(n.saturating_sub(r.get()));
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// The Content-Type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
