//! What Hookline tells its operators: the metrics every part of the server records through the
//! `metrics` facade (their names, descriptions and histogram buckets, and the one recorder per
//! process that holds them), and the logs (text or JSON, with a span per delivery attempt).
//! `/metrics` itself is served by [`crate::ops`]. docs/operations.md lists every metric.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use hookline_core::{AttemptTrigger, DisabledReason};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::{DEFAULT_LOG_FILTER, LogFormat, LogSettings};
use crate::delivery::{ErrorClass, Outcome};

/// Events accepted, by `source`: `api` (a producer) or `internal` (`webhook.disabled`).
pub const EVENTS_PUBLISHED: &str = "hookline_events_published_total";
/// Attempts made, by `outcome` (`succeeded`, `failed`) and `error_class`.
pub const ATTEMPTS: &str = "hookline_delivery_attempts_total";
pub const ATTEMPT_DURATION: &str = "hookline_delivery_attempt_duration_seconds";
/// From the event's acceptance to the end of the attempt that delivered it.
pub const DELIVERY_LATENCY: &str = "hookline_delivery_latency_seconds";
pub const IN_FLIGHT: &str = "hookline_deliveries_in_flight";
pub const CONCURRENCY: &str = "hookline_delivery_concurrency";
pub const DUE: &str = "hookline_deliveries_due";
pub const OLDEST_DUE_AGE: &str = "hookline_oldest_due_delivery_age_seconds";
/// Webhooks the engine turned off, by `reason` (`automatic`, `gone`).
pub const WEBHOOKS_DISABLED: &str = "hookline_webhooks_disabled_total";
/// Parked ordered deliveries the janitor's sweep woke: nothing held their key any more.
pub const WOKEN_BY_SWEEP: &str = "hookline_ordered_deliveries_woken_by_sweep_total";
/// Database connections, by `state` (`in_use`, `idle`).
pub const POOL_CONNECTIONS: &str = "hookline_db_pool_connections";
pub const POOL_MAX: &str = "hookline_db_pool_max_connections";

/// Where `hookline_deliveries_due` stops counting: counting further would be a scan.
pub const DUE_CAP: u64 = 100_000;

const ATTEMPT_DURATION_BUCKETS: [f64; 12] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Up to a day: a delivery that waits out its retries is still a delivery.
const DELIVERY_LATENCY_BUCKETS: [f64; 16] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0, 86400.0];
/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

struct Recorder {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// The process's recorder, installed on first use. Every [`crate::Application`] of a process
/// (tests run several) shares it, so counters are the process's, not one application's.
pub fn prometheus() -> &'static PrometheusHandle {
    &recorder().handle
}

fn recorder() -> &'static Recorder {
    RECORDER.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
        }
        describe();
        let process = metrics_process::Collector::default();
        process.describe();
        let upkeep = handle.clone();
        // A thread, not a task: tests end their runtimes, and the recorder outlives them.
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
        }
        Recorder { handle, process }
    })
}

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(ATTEMPT_DURATION.into()), &ATTEMPT_DURATION_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(DELIVERY_LATENCY.into()), &DELIVERY_LATENCY_BUCKETS)
        })
        .expect("the bucket lists are not empty")
}

fn describe() {
    describe_counter!(EVENTS_PUBLISHED, "Events accepted by this process, by source (api or internal).");
    describe_counter!(
        ATTEMPTS,
        "Delivery attempts made by this process, by outcome and error class (none when it succeeded)."
    );
    describe_histogram!(ATTEMPT_DURATION, Unit::Seconds, "Time from sending an attempt to its answer.");
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "Time from accepting an event to the end of the scheduled attempt that delivered it, retries included."
    );
    describe_gauge!(
        IN_FLIGHT,
        "Deliveries this process holds: claimed or sending, until their attempt is recorded."
    );
    describe_gauge!(
        CONCURRENCY,
        "Most deliveries this process holds at once (HOOKLINE_DELIVERY_CONCURRENCY)."
    );
    describe_gauge!(
        DUE,
        "Deliveries due now, counted every 15 s and capped at 100000 (the count stops there)."
    );
    describe_gauge!(
        OLDEST_DUE_AGE,
        Unit::Seconds,
        "How long the oldest due delivery has waited (its due time read every 5 s)."
    );
    describe_counter!(WEBHOOKS_DISABLED, "Webhooks this process turned off, by reason (automatic or gone).");
    describe_counter!(
        WOKEN_BY_SWEEP,
        "Parked ordered deliveries this process's sweep woke because nothing held their key any more \
         (a lost wake-up, or a key's earlier event deleted by retention)."
    );
    describe_gauge!(
        POOL_CONNECTIONS,
        "Database connections of this process's pool, by state (in_use or idle)."
    );
    describe_gauge!(POOL_MAX, "Most connections this process's database pool opens.");
    // Every series of a counter exists from the start, at 0: `rate()` and `increase()` miss
    // the first increment of a series that appears with it.
    for source in ["api", "internal"] {
        counter!(EVENTS_PUBLISHED, "source" => source).increment(0);
    }
    counter!(ATTEMPTS, "outcome" => "succeeded", "error_class" => "none").increment(0);
    for class in ErrorClass::ALL {
        counter!(ATTEMPTS, "outcome" => "failed", "error_class" => class.as_str()).increment(0);
    }
    for reason in DisabledReason::BY_HOOKLINE {
        counter!(WEBHOOKS_DISABLED, "reason" => reason.as_str()).increment(0);
    }
    counter!(WOKEN_BY_SWEEP).increment(0);
}

/// Records one attempt: its outcome, how long it took and, for a scheduled delivery that
/// succeeded, how long after publishing the event arrived.
pub fn attempt_made(outcome: &Outcome, trigger: AttemptTrigger, received_at: i64, ended_at: i64) {
    // Not sent (no signing secret opens): no request, so no duration to count.
    if !matches!(outcome.error, Some((ErrorClass::SigningSecret, _))) {
        histogram!(ATTEMPT_DURATION).record(outcome.duration.as_secs_f64());
    }
    // Resends and tests are asked for later by a person: not the producer's latency.
    if outcome.succeeded() && trigger == AttemptTrigger::Scheduled {
        histogram!(DELIVERY_LATENCY).record((ended_at - received_at).max(0) as f64 / 1000.0);
    }
    // Last, so that a scrape that sees the attempt counted sees it timed too.
    let (result, class) = attempt_labels(outcome);
    counter!(ATTEMPTS, "outcome" => result, "error_class" => class).increment(1);
}

/// `(outcome, error_class)`: a bounded pair whatever the endpoint answered.
fn attempt_labels(outcome: &Outcome) -> (&'static str, &'static str) {
    match &outcome.error {
        _ if outcome.succeeded() => ("succeeded", "none"),
        Some((class, _)) => ("failed", class.as_str()),
        // Answered, but not with a 2xx.
        None => ("failed", ErrorClass::HttpStatus.as_str()),
    }
}

/// The oldest due delivery's due time as the janitor last read it: `UNKNOWN` until a janitor
/// runs in this process (an API-only process has none), `NOTHING_DUE` when none is due.
static OLDEST_DUE_AT: AtomicI64 = AtomicI64::new(UNKNOWN);
const UNKNOWN: i64 = i64::MIN;
const NOTHING_DUE: i64 = i64::MAX;

/// Notes when the oldest due delivery came due (`None`: nothing is due).
pub fn set_oldest_due(at: Option<i64>) {
    OLDEST_DUE_AT.store(at.unwrap_or(NOTHING_DUE), Ordering::Relaxed);
}

/// The age of the oldest due delivery at `now`, in seconds; `None` when not known.
fn oldest_due_age(at: i64, now: i64) -> Option<f64> {
    match at {
        UNKNOWN => None,
        NOTHING_DUE => Some(0.0),
        at => Some((now - at).max(0) as f64 / 1000.0),
    }
}

/// Brings the figures read at scrape time up to date: the oldest due delivery's age, the
/// database pool's connections and the process's own figures. Memory and /proc only: a
/// scrape never waits on the database.
pub fn refresh_for_scrape(services: &hookline_core::Services) {
    let recorder = recorder();
    if let Some(age) = oldest_due_age(OLDEST_DUE_AT.load(Ordering::Relaxed), hookline_core::now_ms()) {
        gauge!(OLDEST_DUE_AGE).set(age);
    }
    if let Some((in_use, idle, max)) = services.store().pool_usage() {
        gauge!(POOL_CONNECTIONS, "state" => "in_use").set(in_use as f64);
        gauge!(POOL_CONNECTIONS, "state" => "idle").set(idle as f64);
        gauge!(POOL_MAX).set(max as f64);
    }
    recorder.process.collect();
}

/// Logs to stderr as text, or as JSON lines with `HOOKLINE_LOG_FORMAT=json`; `HOOKLINE_LOG`
/// filters (tracing's `EnvFilter` syntax). In JSON each line carries its span's fields under
/// `span` (an attempt's ids, a request's id) and the spans around it under `spans`. In a build
/// with the `otlp` feature and `HOOKLINE_OTLP_ENDPOINT` set, the same spans are exported as
/// traces. Keep what this returns until the process ends: dropping it sends the spans still
/// buffered.
pub fn init_logging(settings: &LogSettings) -> Telemetry {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    // The configuration checked the filter; the default stands in should it not parse.
    let filter = EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match settings.format {
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let endpoint = settings.otlp_endpoint.clone();
    #[cfg(feature = "otlp")]
    {
        let (provider, problem) = match endpoint.as_deref().map(otlp::provider) {
            Some(Ok(provider)) => (Some(provider), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let layer = provider.as_ref().map(|p| {
            use opentelemetry::trace::TracerProvider as _;
            tracing_opentelemetry::layer().with_tracer(p.tracer("hookline"))
        });
        tracing_subscriber::registry().with(filter).with(fmt).with(layer).init();
        match (&endpoint, problem) {
            (Some(endpoint), None) => tracing::info!(endpoint = %endpoint, "exporting traces over OTLP"),
            (_, Some(e)) => tracing::error!(error = %e, "HOOKLINE_OTLP_ENDPOINT: traces are not exported"),
            _ => {}
        }
        Telemetry { provider }
    }
    #[cfg(not(feature = "otlp"))]
    {
        tracing_subscriber::registry().with(filter).with(fmt).init();
        if endpoint.is_some() {
            tracing::warn!(
                "HOOKLINE_OTLP_ENDPOINT is set, but this build exports no traces: build with `--features otlp`"
            );
        }
        Telemetry {}
    }
}

/// Held by `main` until the process ends.
#[must_use = "dropping it stops trace export"]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

#[cfg(feature = "otlp")]
impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("hookline: sending the last traces failed: {e}");
        }
    }
}

/// Trace export over OTLP/HTTP (protobuf), batched on a thread of its own.
#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    pub fn provider(endpoint: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
        // An https collector needs the TLS implementation before the exporter's client exists.
        crate::install_tls_provider();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(super::traces_endpoint(endpoint))
            .build()?;
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("hookline").build())
            .build())
    }
}

/// Where traces go, given `HOOKLINE_OTLP_ENDPOINT`: like `OTEL_EXPORTER_OTLP_ENDPOINT`, the
/// collector's base URL, to which the traces path is added (a URL naming it already is kept).
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
fn traces_endpoint(endpoint: &str) -> String {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") { endpoint.to_string() } else { format!("{endpoint}/v1/traces") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Option<u16>, error: Option<ErrorClass>, millis: u64) -> Outcome {
        Outcome {
            duration: Duration::from_millis(millis),
            status,
            headers: Vec::new(),
            body: None,
            error: error.map(|class| (class, "why".to_string())),
            retry_after: None,
        }
    }

    /// Records into a recorder of the test's own, so tests running at once do not mix.
    fn rendered(record: impl FnOnce()) -> String {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, record);
        handle.render()
    }

    #[test]
    fn attempts_are_counted_by_outcome_and_error_class() {
        let text = rendered(|| {
            attempt_made(&outcome(Some(200), None, 30), AttemptTrigger::Scheduled, 1_000, 3_500);
            attempt_made(
                &outcome(Some(503), Some(ErrorClass::HttpStatus), 40),
                AttemptTrigger::Scheduled,
                0,
                0,
            );
            attempt_made(&outcome(None, Some(ErrorClass::Timeout), 2_000), AttemptTrigger::Manual, 0, 0);
            attempt_made(&outcome(None, Some(ErrorClass::SigningSecret), 0), AttemptTrigger::Scheduled, 0, 0);
        });
        for line in [
            r#"hookline_delivery_attempts_total{outcome="succeeded",error_class="none"} 1"#,
            r#"hookline_delivery_attempts_total{outcome="failed",error_class="http_status"} 1"#,
            r#"hookline_delivery_attempts_total{outcome="failed",error_class="timeout"} 1"#,
            r#"hookline_delivery_attempts_total{outcome="failed",error_class="signing_secret"} 1"#,
            // The attempt never sent is not timed.
            "hookline_delivery_attempt_duration_seconds_count 3",
            r#"hookline_delivery_attempt_duration_seconds_bucket{le="0.05"} 2"#,
            r#"hookline_delivery_attempt_duration_seconds_bucket{le="2.5"} 3"#,
            // Accepted at 1.0 s, delivered at 3.5 s.
            "hookline_delivery_latency_seconds_count 1",
            "hookline_delivery_latency_seconds_sum 2.5",
            r#"hookline_delivery_latency_seconds_bucket{le="1"} 0"#,
            r#"hookline_delivery_latency_seconds_bucket{le="2.5"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_resend_that_succeeds_is_not_publish_to_delivery_latency() {
        let text = rendered(|| {
            attempt_made(&outcome(Some(204), None, 10), AttemptTrigger::Manual, 0, 86_400_000);
            attempt_made(&outcome(Some(200), None, 10), AttemptTrigger::Test, 0, 1_000);
        });
        assert!(!text.contains("hookline_delivery_latency_seconds_count"), "{text}");
        assert!(
            text.contains(r#"hookline_delivery_attempts_total{outcome="succeeded",error_class="none"} 2"#)
        );
    }

    #[test]
    fn a_non_2xx_answer_without_an_error_counts_as_an_http_status_failure() {
        assert_eq!(attempt_labels(&outcome(Some(302), None, 1)), ("failed", "http_status"));
        assert_eq!(attempt_labels(&outcome(Some(299), None, 1)), ("succeeded", "none"));
    }

    #[test]
    fn the_otlp_endpoint_is_the_collectors_base_url() {
        assert_eq!(traces_endpoint("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_endpoint(" https://otel.example/ "), "https://otel.example/v1/traces");
        assert_eq!(traces_endpoint("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    }

    #[test]
    fn the_oldest_due_age_is_unknown_zero_or_the_wait() {
        assert_eq!(oldest_due_age(UNKNOWN, 5_000), None);
        assert_eq!(oldest_due_age(NOTHING_DUE, 5_000), Some(0.0));
        assert_eq!(oldest_due_age(2_000, 5_500), Some(3.5));
        // A due time just read as later than this clock: no negative age.
        assert_eq!(oldest_due_age(6_000, 5_000), Some(0.0));
    }
}
