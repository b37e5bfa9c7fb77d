//! Configuration: environment variables (SPEC section 6), optionally over a TOML file named by
//! `HOOKLINE_CONFIG` whose keys are the variables' names without the prefix, in lower case
//! (`listen = "0.0.0.0:3000"`, `retry_schedule = "5s,30s"`). Read once, at start, into
//! [`Config`]: nothing else in Hookline reads the environment. A key the file does not know is
//! an error, so a typo does not silently leave a default in force.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookline_core::{AddressPolicy, Keyring, SecretKey, Settings, UrlPolicy};
use ipnet::IpNet;

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    /// Most connections the database pool opens (`HOOKLINE_DATABASE_POOL_SIZE`; 8 on
    /// PostgreSQL, 4 on SQLite, whose busiest writers have a connection of their own).
    pub database_pool_size: u32,
    pub listen: SocketAddr,
    pub admin_email: Option<String>,
    /// The first admin's password, and the password `create-admin` and `create-user` take
    /// (`HOOKLINE_ADMIN_PASSWORD`): as given, spaces included; blank counts as unset.
    pub admin_password: Option<String>,
    pub allowed_networks: Vec<IpNet>,
    pub allow_http: bool,
    pub retry_schedule: Vec<Duration>,
    pub delivery_timeout: Duration,
    pub disable_after_failures: u32,
    pub disable_after_span: Duration,
    pub max_payload: usize,
    pub header_prefix: String,
    /// Where the compiled dashboard assets (`pkg/hookline.js`, `.wasm`, `.css`) live.
    pub site_root: PathBuf,
    /// How many deliveries one process holds at once, from its claim until its attempt is
    /// written (`HOOKLINE_DELIVERY_CONCURRENCY`, 1024). The writing counts: on a database
    /// with durable commits an attempt waits a while to be written, and 256 held the
    /// delivery rate to about 2,000/s on this project's bench (BENCHMARKS.md, Change 6).
    pub delivery_concurrency: usize,
    /// How many deliveries one webhook may have in flight at once.
    pub per_webhook_concurrency: usize,
    /// How long the recorder may hold a small batch of attempts open while the engine is nearly
    /// idle (`HOOKLINE_RECORD_LINGER`, 100ms; 0 writes each at once; at most 5s, so a held
    /// attempt is always written within its delivery's lease).
    pub record_linger: Duration,
    /// How the receiver steers (docs/delivery-control.md): the longest `Retry-After` pause
    /// (`HOOKLINE_MAX_PAUSE`, 1h), the connection failures in a row that open the circuit
    /// breaker (`HOOKLINE_BREAKER_AFTER`, 5), its first and longest probe interval
    /// (`HOOKLINE_BREAKER_PROBE`, 5s; `HOOKLINE_BREAKER_PROBE_MAX`, 10m).
    pub steer: crate::delivery::SteerConfig,
    /// Whether this process runs delivery workers at all.
    pub workers: bool,
    /// Most webhooks one tenant may have (`HOOKLINE_MAX_WEBHOOKS_PER_TENANT`).
    pub max_webhooks_per_tenant: u32,
    /// Bearer token `/metrics` requires (`HOOKLINE_METRICS_TOKEN`); open when unset.
    pub metrics_token: Option<String>,
    /// The dashboard's address as users reach it (`HOOKLINE_PUBLIC_URL`).
    pub public_url: Option<url::Url>,
    /// The relay alert emails go through (`HOOKLINE_SMTP_URL`); alert emails are off when unset.
    pub smtp_url: Option<crate::alerts::mail::SmtpUrl>,
    /// Their sender (`HOOKLINE_SMTP_FROM`, default `hookline@` the public URL's host).
    pub smtp_from: lettre::message::Mailbox,
    /// How long a webhook fails before its first alert (`HOOKLINE_ALERT_FAILING_AFTER`, 1h).
    pub alert_failing_after: Duration,
    /// Most client connections held open at once (`HOOKLINE_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// The key that encrypts signing secrets at rest (`HOOKLINE_SECRET_KEY`, or the contents
    /// of the file `HOOKLINE_SECRET_KEY_FILE` names).
    pub secret_key: Option<SecretKey>,
    /// Keys that encrypted secrets before the current one (`HOOKLINE_PREVIOUS_SECRET_KEYS`,
    /// comma-separated), still read while `hookline reencrypt-secrets` moves them over.
    pub previous_secret_keys: Vec<SecretKey>,
    /// How long a client has to send a request's whole body once its headers arrived
    /// (`HOOKLINE_BODY_TIMEOUT`); raise it with `HOOKLINE_MAX_PAYLOAD` for slow senders.
    pub body_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` names the client (`HOOKLINE_TRUSTED_PROXIES`, CIDRs).
    pub trusted_proxies: Vec<IpNet>,
    /// What this process does (`HOOKLINE_ROLE`): everything, the dashboard and API only, or
    /// delivery only.
    pub role: Role,
    /// How long events, deliveries and attempts are kept (`HOOKLINE_RETENTION`, 30d).
    pub retention: Duration,
    /// How long payloads and response bodies are kept (`HOOKLINE_PAYLOAD_RETENTION`, at most
    /// the retention, which is its default).
    pub payload_retention: Duration,
    /// How the process logs and traces.
    pub log: LogSettings,
}

/// What the logs say and how (`HOOKLINE_LOG`, `HOOKLINE_LOG_FORMAT`, `HOOKLINE_OTLP_ENDPOINT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// tracing's filter (`EnvFilter` syntax): `HOOKLINE_LOG`, else `RUST_LOG`, else
    /// [`DEFAULT_LOG_FILTER`].
    pub filter: String,
    pub format: LogFormat,
    /// An OpenTelemetry collector's OTLP/HTTP base URL; used by builds with the `otlp` feature.
    pub otlp_endpoint: Option<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { filter: DEFAULT_LOG_FILTER.to_string(), format: LogFormat::Text, otlp_endpoint: None }
    }
}

/// Info from Hookline; only warnings from the libraries, whose info lines are per query or
/// per request.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,tower_http=warn";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// What one process does: several processes on one PostgreSQL split the work by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Dashboard, REST API and delivery workers (the default).
    All,
    /// Dashboard and REST API; publishing queues deliveries for the workers.
    Api,
    /// Delivery workers, with only `/healthz`, `/readyz` and `/metrics` served.
    Worker,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Some(Role::All),
            "api" => Some(Role::Api),
            "worker" => Some(Role::Worker),
            _ => None,
        }
    }
}

pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest the recorder may hold attempts: a delivery's lease outlasts its attempt by at
/// least the 5 s margin of [`crate::delivery::Engine`]'s leases, so a held attempt is written
/// before another process could claim its delivery again.
pub const MAX_RECORD_LINGER: Duration = Duration::from_secs(5);

/// Every key Hookline reads, as the variable's name without `HOOKLINE_`; a TOML file sets them
/// in lower case. `HOOKLINE_CONFIG` itself is not one: a file cannot name another.
const KEYS: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "LISTEN",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "ALLOW_NETWORKS",
    "ALLOW_HTTP",
    "RETRY_SCHEDULE",
    "DELIVERY_TIMEOUT",
    "DISABLE_AFTER_FAILURES",
    "DISABLE_AFTER_SPAN",
    "MAX_PAYLOAD",
    "HEADER_PREFIX",
    "SITE_ROOT",
    "DELIVERY_CONCURRENCY",
    "PER_WEBHOOK_CONCURRENCY",
    "RECORD_LINGER",
    "MAX_PAUSE",
    "BREAKER_AFTER",
    "BREAKER_PROBE",
    "BREAKER_PROBE_MAX",
    "ROLE",
    "WORKERS",
    "MAX_WEBHOOKS_PER_TENANT",
    "METRICS_TOKEN",
    "PUBLIC_URL",
    "MAX_CONNECTIONS",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "PREVIOUS_SECRET_KEYS",
    "BODY_TIMEOUT",
    "TRUSTED_PROXIES",
    "RETENTION",
    "PAYLOAD_RETENTION",
    "LOG",
    "LOG_FORMAT",
    "OTLP_ENDPOINT",
    "SMTP_URL",
    "SMTP_FROM",
    "ALERT_FAILING_AFTER",
];

#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.to_string(), message: message.into() }
}

impl Config {
    /// Reads the process environment (and the TOML file it names).
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_map(&env)
    }

    /// Builds a configuration from variables as the environment would hold them.
    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut vars: HashMap<String, String> = match env.get("HOOKLINE_CONFIG") {
            Some(path) => read_file(path)?,
            None => HashMap::new(),
        };
        for (k, v) in env {
            if k.starts_with("HOOKLINE_") {
                vars.insert(k.clone(), v.clone());
            }
        }
        let get = |k: &str| {
            debug_assert!(
                k.strip_prefix("HOOKLINE_").is_some_and(|k| KEYS.contains(&k)),
                "{k} is not in KEYS"
            );
            vars.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
        };

        let retry_schedule = get("HOOKLINE_RETRY_SCHEDULE")
            .unwrap_or_else(|| "5s,30s,2m,10m,30m,1h,2h,4h,8h,16h".into())
            .split(',')
            .map(|s| parse_duration(s.trim()).map_err(|m| err("HOOKLINE_RETRY_SCHEDULE", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let delivery_timeout =
            parse_duration(&get("HOOKLINE_DELIVERY_TIMEOUT").unwrap_or_else(|| "5s".into()))
                .map_err(|m| err("HOOKLINE_DELIVERY_TIMEOUT", m))?;
        if delivery_timeout > MAX_DELIVERY_TIMEOUT || delivery_timeout.is_zero() {
            return Err(err("HOOKLINE_DELIVERY_TIMEOUT", "must be more than 0 and at most 30s"));
        }
        let record_linger = parse_duration(&get("HOOKLINE_RECORD_LINGER").unwrap_or_else(|| "100ms".into()))
            .map_err(|m| err("HOOKLINE_RECORD_LINGER", m))?;
        if record_linger > MAX_RECORD_LINGER {
            return Err(err("HOOKLINE_RECORD_LINGER", "must be at most 5s"));
        }
        let allowed_networks = get("HOOKLINE_ALLOW_NETWORKS")
            .map(|s| {
                s.split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| parse_network(p.trim()).map_err(|m| err("HOOKLINE_ALLOW_NETWORKS", m)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let role = match get("HOOKLINE_ROLE").as_deref() {
            None => {
                // HOOKLINE_WORKERS=false, from before roles, means an API-only process.
                let workers = parse_bool(&get("HOOKLINE_WORKERS").unwrap_or_else(|| "true".into()))
                    .map_err(|m| err("HOOKLINE_WORKERS", m))?;
                if workers { Role::All } else { Role::Api }
            }
            Some(r) => Role::parse(r)
                .ok_or_else(|| err("HOOKLINE_ROLE", format!("{r:?} is not all, api or worker")))?,
        };
        let retention = parse_duration(&get("HOOKLINE_RETENTION").unwrap_or_else(|| "30d".into()))
            .and_then(
                |d| if d < Duration::from_secs(3600) { Err("must be at least 1h".into()) } else { Ok(d) },
            )
            .map_err(|m| err("HOOKLINE_RETENTION", m))?;
        let payload_retention = match get("HOOKLINE_PAYLOAD_RETENTION") {
            None => retention,
            Some(v) => parse_duration(&v)
                .and_then(|d| {
                    if d > retention {
                        Err(format!("must be at most HOOKLINE_RETENTION ({v} is longer)"))
                    } else if d < Duration::from_secs(3600) {
                        Err("must be at least 1h".into())
                    } else {
                        Ok(d)
                    }
                })
                .map_err(|m| err("HOOKLINE_PAYLOAD_RETENTION", m))?,
        };
        let default_site_root = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().and_then(|p| p.parent()).map(|t| t.join("site")))
            .filter(|p| p.join("pkg").exists())
            .unwrap_or_else(|| PathBuf::from("target/site"));

        let smtp_url = get("HOOKLINE_SMTP_URL")
            .map(|u| crate::alerts::mail::SmtpUrl::parse(&u))
            .transpose()
            .map_err(|m| err("HOOKLINE_SMTP_URL", m))?;
        let smtp_from = match get("HOOKLINE_SMTP_FROM") {
            Some(from) => {
                crate::alerts::mail::parse_sender(&from).map_err(|m| err("HOOKLINE_SMTP_FROM", m))?
            }
            None => {
                let host = get("HOOKLINE_PUBLIC_URL")
                    .and_then(|u| url::Url::parse(&u).ok())
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| "localhost".into());
                crate::alerts::mail::parse_sender(&format!("Hookline <hookline@{host}>")).map_err(|m| {
                    err("HOOKLINE_SMTP_FROM", format!("no default sender from the public URL: {m}"))
                })?
            }
        };
        let alert_failing_after =
            parse_duration(&get("HOOKLINE_ALERT_FAILING_AFTER").unwrap_or_else(|| "1h".into()))
                .map_err(|m| err("HOOKLINE_ALERT_FAILING_AFTER", m))?;
        let duration_of = |key: &str, default: &str| {
            parse_duration(&get(key).unwrap_or_else(|| default.into()))
                .and_then(|d| if d.is_zero() { Err("must be more than 0".into()) } else { Ok(d) })
                .map_err(|m| err(key, m))
        };
        let steer = crate::delivery::SteerConfig {
            max_pause: duration_of("HOOKLINE_MAX_PAUSE", "1h")?,
            breaker_after: parse_bounded(
                &get("HOOKLINE_BREAKER_AFTER").unwrap_or_else(|| "5".into()),
                1,
                1_000,
            )
            .map_err(|m| err("HOOKLINE_BREAKER_AFTER", m))?,
            probe_first: duration_of("HOOKLINE_BREAKER_PROBE", "5s")?,
            probe_max: duration_of("HOOKLINE_BREAKER_PROBE_MAX", "10m")?,
            slow_answer: delivery_timeout / 2,
        };
        if steer.probe_max < steer.probe_first {
            return Err(err("HOOKLINE_BREAKER_PROBE_MAX", "must be at least HOOKLINE_BREAKER_PROBE"));
        }
        let log = LogSettings {
            filter: match get("HOOKLINE_LOG").map(|f| (f, "HOOKLINE_LOG")).or_else(|| {
                env.get("RUST_LOG")
                    .map(|f| f.trim().to_string())
                    .filter(|f| !f.is_empty())
                    .map(|f| (f, "RUST_LOG"))
            }) {
                Some((filter, key)) => {
                    tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| {
                        err(key, format!("{filter:?} is not a log filter like info,hookline=debug: {e}"))
                    })?;
                    filter
                }
                None => DEFAULT_LOG_FILTER.to_string(),
            },
            format: match get("HOOKLINE_LOG_FORMAT").map(|f| f.to_ascii_lowercase()).as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(err("HOOKLINE_LOG_FORMAT", format!("{other:?} is not text or json")));
                }
            },
            otlp_endpoint: get("HOOKLINE_OTLP_ENDPOINT"),
        };

        let database_url =
            get("HOOKLINE_DATABASE_URL").unwrap_or_else(|| "sqlite://hookline.db?mode=rwc".into());
        Ok(Config {
            database_pool_size: parse_bounded(
                &get("HOOKLINE_DATABASE_POOL_SIZE")
                    .unwrap_or_else(|| hookline_core::default_pool_size(&database_url).to_string()),
                1,
                1_000,
            )
            .map_err(|m| err("HOOKLINE_DATABASE_POOL_SIZE", m))?,
            database_url,
            listen: get("HOOKLINE_LISTEN")
                .unwrap_or_else(|| "127.0.0.1:3000".into())
                .parse()
                .map_err(|e| err("HOOKLINE_LISTEN", format!("not an address like 127.0.0.1:3000: {e}")))?,
            admin_email: get("HOOKLINE_ADMIN_EMAIL"),
            // Not trimmed: a password's own spaces are part of it.
            admin_password: vars.get("HOOKLINE_ADMIN_PASSWORD").filter(|p| !p.trim().is_empty()).cloned(),
            allowed_networks,
            allow_http: parse_bool(&get("HOOKLINE_ALLOW_HTTP").unwrap_or_else(|| "false".into()))
                .map_err(|m| err("HOOKLINE_ALLOW_HTTP", m))?,
            retry_schedule,
            delivery_timeout,
            disable_after_failures: parse_bounded(
                &get("HOOKLINE_DISABLE_AFTER_FAILURES").unwrap_or_else(|| "20".into()),
                1,
                1_000_000,
            )
            .map_err(|m| err("HOOKLINE_DISABLE_AFTER_FAILURES", m))?,
            disable_after_span: parse_duration(
                &get("HOOKLINE_DISABLE_AFTER_SPAN").unwrap_or_else(|| "24h".into()),
            )
            .map_err(|m| err("HOOKLINE_DISABLE_AFTER_SPAN", m))?,
            max_payload: parse_size(&get("HOOKLINE_MAX_PAYLOAD").unwrap_or_else(|| "256KiB".into()))
                .map_err(|m| err("HOOKLINE_MAX_PAYLOAD", m))?,
            header_prefix: parse_header_prefix(
                &get("HOOKLINE_HEADER_PREFIX").unwrap_or_else(|| "x-webhooks-".into()),
            )
            .map_err(|m| err("HOOKLINE_HEADER_PREFIX", m))?,
            site_root: get("HOOKLINE_SITE_ROOT").map(PathBuf::from).unwrap_or(default_site_root),
            delivery_concurrency: parse_bounded(
                &get("HOOKLINE_DELIVERY_CONCURRENCY").unwrap_or_else(|| "1024".into()),
                1,
                100_000,
            )
            .map_err(|m| err("HOOKLINE_DELIVERY_CONCURRENCY", m))? as usize,
            record_linger,
            per_webhook_concurrency: parse_bounded(
                &get("HOOKLINE_PER_WEBHOOK_CONCURRENCY").unwrap_or_else(|| "32".into()),
                1,
                10_000,
            )
            .map_err(|m| err("HOOKLINE_PER_WEBHOOK_CONCURRENCY", m))?
                as usize,
            steer,
            workers: role != Role::Api,
            max_webhooks_per_tenant: parse_bounded(
                &get("HOOKLINE_MAX_WEBHOOKS_PER_TENANT").unwrap_or_else(|| "50".into()),
                1,
                100_000,
            )
            .map_err(|m| err("HOOKLINE_MAX_WEBHOOKS_PER_TENANT", m))?,
            metrics_token: get("HOOKLINE_METRICS_TOKEN"),
            public_url: get("HOOKLINE_PUBLIC_URL")
                .map(|u| parse_public_url(&u))
                .transpose()
                .map_err(|m| err("HOOKLINE_PUBLIC_URL", m))?,
            max_connections: parse_bounded(
                &get("HOOKLINE_MAX_CONNECTIONS").unwrap_or_else(|| "4096".into()),
                16,
                1_000_000,
            )
            .map_err(|m| err("HOOKLINE_MAX_CONNECTIONS", m))? as usize,
            secret_key: match (get("HOOKLINE_SECRET_KEY"), get("HOOKLINE_SECRET_KEY_FILE")) {
                (Some(key), _) => Some(SecretKey::parse(&key).map_err(|m| err("HOOKLINE_SECRET_KEY", m))?),
                (None, Some(path)) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {path}: {e}"))
                        .and_then(|key| SecretKey::parse(&key))
                        .map_err(|m| err("HOOKLINE_SECRET_KEY_FILE", m))?,
                ),
                (None, None) => None,
            },
            previous_secret_keys: get("HOOKLINE_PREVIOUS_SECRET_KEYS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .enumerate()
                .map(|(i, k)| SecretKey::parse(k).map_err(|m| format!("key {}: {m}", i + 1)))
                .collect::<Result<_, _>>()
                .map_err(|m| err("HOOKLINE_PREVIOUS_SECRET_KEYS", m))?,
            body_timeout: parse_duration(&get("HOOKLINE_BODY_TIMEOUT").unwrap_or_else(|| "30s".into()))
                .and_then(|d| if d.is_zero() { Err("must be more than 0".into()) } else { Ok(d) })
                .map_err(|m| err("HOOKLINE_BODY_TIMEOUT", m))?,
            trusted_proxies: get("HOOKLINE_TRUSTED_PROXIES")
                .map(|s| {
                    s.split(',')
                        .filter(|p| !p.trim().is_empty())
                        .map(|p| parse_network(p.trim()).map_err(|m| err("HOOKLINE_TRUSTED_PROXIES", m)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default(),
            role,
            retention,
            payload_retention,
            smtp_url,
            smtp_from,
            alert_failing_after,
            log,
        })
    }

    pub fn settings(&self) -> Settings {
        Settings {
            url_policy: UrlPolicy { addresses: self.address_policy(), allow_http: self.allow_http },
            max_payload: self.max_payload,
            max_webhooks_per_tenant: self.max_webhooks_per_tenant,
            keyring: Keyring::new(self.secret_key.clone(), self.previous_secret_keys.clone()),
            retention: self.retention,
            payload_retention: self.payload_retention,
            ..Settings::default()
        }
    }

    pub fn address_policy(&self) -> AddressPolicy {
        AddressPolicy { allowed_networks: self.allowed_networks.clone() }
    }
}

/// The TOML file's keys as the variables they stand for (`listen` or `HOOKLINE_LISTEN` is
/// `HOOKLINE_LISTEN`); an array is its items joined with commas, as the variable would list them.
fn read_file(path: &str) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("HOOKLINE_CONFIG", format!("cannot read {path}: {e}")))?;
    let table: toml::Table =
        text.parse().map_err(|e| err("HOOKLINE_CONFIG", format!("{path} is not valid TOML: {e}")))?;
    let mut vars = HashMap::new();
    for (key, value) in table {
        // `listen` and `HOOKLINE_LISTEN` name the same setting: the file may use either.
        let upper = key.to_ascii_uppercase();
        let name = upper.strip_prefix("HOOKLINE_").unwrap_or(&upper).to_owned();
        if !KEYS.contains(&name.as_str()) {
            let known = KEYS.iter().map(|k| k.to_ascii_lowercase()).collect::<Vec<_>>().join(", ");
            return Err(err("HOOKLINE_CONFIG", format!("{path}: unknown key {key:?}; the keys are {known}")));
        }
        let value = match &value {
            toml::Value::Array(items) => {
                items.iter().map(scalar).collect::<Option<Vec<_>>>().map(|v| v.join(","))
            }
            other => scalar(other),
        };
        let value = value.ok_or_else(|| {
            err(
                "HOOKLINE_CONFIG",
                format!("{path}: {key} must be a string, a number, true or false, or a list"),
            )
        })?;
        vars.insert(format!("HOOKLINE_{name}"), value);
    }
    Ok(vars)
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// Longest duration any setting takes: a year. Anything longer is a typo, and far longer
/// would overflow the millisecond timestamps it is added to.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `250ms`, `5s`, `2m`, `1h`, `30d`; at most a year.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let wrong = || format!("{s:?} is not a duration like 250ms, 5s, 2m, 1h or 30d");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| wrong())?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(wrong()),
    };
    let d = n.checked_mul(unit_ms).map(Duration::from_millis).filter(|d| *d <= MAX_DURATION);
    d.ok_or_else(|| format!("{s:?} is too long: at most 365d"))
}

/// Largest size any setting takes: 1 GiB.
const MAX_SIZE: usize = 1 << 30;

/// `262144`, `256KiB`, `1MiB`, `300KB`; at most 1 GiB.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n.parse().map_err(|_| format!("{s:?} is not a size like 256KiB"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "KB" | "kB" => 1000,
        "MiB" => 1024 * 1024,
        "MB" => 1_000_000,
        "GiB" => 1 << 30,
        _ => return Err(format!("{s:?} is not a size like 256KiB")),
    };
    n.checked_mul(mult)
        .filter(|size| *size <= MAX_SIZE)
        .ok_or_else(|| format!("{s:?} is too large: at most 1GiB"))
}

/// The prefix must start a valid header name: `{prefix}event-type` is sent as one.
fn parse_header_prefix(s: &str) -> Result<String, String> {
    let prefix = s.to_ascii_lowercase();
    if prefix.len() > 64 || http::HeaderName::from_bytes(format!("{prefix}event-type").as_bytes()).is_err() {
        return Err(format!(
            "{s:?} cannot start a header name: use letters, digits and '-', like x-webhooks-"
        ));
    }
    Ok(prefix)
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

fn parse_number(s: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("{s:?} is not a whole number"))
}

/// A whole number from `min` to `max`.
fn parse_bounded(s: &str, min: u32, max: u32) -> Result<u32, String> {
    let n = parse_number(s)?;
    if n < min || n > max {
        return Err(format!("{n} is out of range: from {min} to {max}"));
    }
    Ok(n)
}

/// `https://hookline.example` (a path is kept for links; the origin is what browsers send).
fn parse_public_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{s:?} is not an http:// or https:// address"));
    }
    Ok(url)
}

fn parse_network(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{s:?} is not a network like 127.0.0.0/8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// Reading the defaults reads every key, and `get` asserts that each is one a file may set.
    #[test]
    fn defaults_match_the_spec() {
        let c = config(&[]).unwrap();
        assert_eq!(c.database_url, "sqlite://hookline.db?mode=rwc");
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.retry_schedule.len(), 10);
        assert_eq!(c.retry_schedule[0], Duration::from_secs(5));
        assert_eq!(c.retry_schedule[9], Duration::from_secs(16 * 3600));
        assert_eq!(c.delivery_timeout, Duration::from_secs(5));
        assert_eq!(c.disable_after_failures, 20);
        assert_eq!(c.disable_after_span, Duration::from_secs(24 * 3600));
        assert_eq!(c.max_payload, 256 * 1024);
        assert_eq!(c.header_prefix, "x-webhooks-");
        assert!(!c.allow_http);
        assert_eq!(c.database_pool_size, 4, "SQLite's pool");
        assert_eq!(c.log, LogSettings::default());
        assert_eq!(c.log.filter, DEFAULT_LOG_FILTER);
        assert_eq!(c.admin_password, None);
        assert_eq!(c.steer.max_pause, Duration::from_secs(3600));
        assert_eq!(c.steer.breaker_after, 5);
        assert_eq!(c.steer.probe_first, Duration::from_secs(5));
        assert_eq!(c.steer.probe_max, Duration::from_secs(600));
    }

    #[test]
    fn log_settings_and_the_pool_size_come_from_the_environment() {
        let c = config(&[
            ("HOOKLINE_LOG", "warn,hookline::delivery=debug"),
            ("HOOKLINE_LOG_FORMAT", "json"),
            ("HOOKLINE_OTLP_ENDPOINT", "http://collector:4318"),
            ("HOOKLINE_DATABASE_POOL_SIZE", "16"),
        ])
        .unwrap();
        assert_eq!(c.log.filter, "warn,hookline::delivery=debug");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.otlp_endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(c.database_pool_size, 16);
        let postgres = config(&[("HOOKLINE_DATABASE_URL", "postgres://hookline@db/hookline")]).unwrap();
        assert_eq!(postgres.database_pool_size, 8, "PostgreSQL's default pool");
    }

    #[test]
    fn rust_log_filters_when_hookline_log_is_unset() {
        assert_eq!(config(&[("RUST_LOG", "debug")]).unwrap().log.filter, "debug");
        let c = config(&[("RUST_LOG", "debug"), ("HOOKLINE_LOG", "warn")]).unwrap();
        assert_eq!(c.log.filter, "warn");
        assert_eq!(config(&[("RUST_LOG", "hookline=loud")]).unwrap_err().key, "RUST_LOG");
    }

    #[test]
    fn the_admin_password_is_taken_as_given() {
        let c = config(&[("HOOKLINE_ADMIN_PASSWORD", " a long password ")]).unwrap();
        assert_eq!(c.admin_password.as_deref(), Some(" a long password "));
        assert_eq!(config(&[("HOOKLINE_ADMIN_PASSWORD", "  ")]).unwrap().admin_password, None);
    }

    #[test]
    fn environment_values_are_parsed() {
        let c = config(&[
            ("HOOKLINE_RETRY_SCHEDULE", "10ms, 20ms,1s"),
            ("HOOKLINE_ALLOW_NETWORKS", "127.0.0.0/8,::1"),
            ("HOOKLINE_ALLOW_HTTP", "true"),
            ("HOOKLINE_MAX_PAYLOAD", "1MiB"),
            ("HOOKLINE_HEADER_PREFIX", "X-Yotpo-Webhooks-"),
        ])
        .unwrap();
        assert_eq!(
            c.retry_schedule,
            vec![Duration::from_millis(10), Duration::from_millis(20), Duration::from_secs(1)]
        );
        assert_eq!(c.allowed_networks.len(), 2);
        assert!(c.allow_http);
        assert_eq!(c.max_payload, 1024 * 1024);
        assert_eq!(c.header_prefix, "x-yotpo-webhooks-");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("HOOKLINE_DELIVERY_TIMEOUT", "31s"),
            ("HOOKLINE_RETRY_SCHEDULE", "5x"),
            ("HOOKLINE_ALLOW_NETWORKS", "not-a-net"),
            ("HOOKLINE_LISTEN", "nowhere"),
            ("HOOKLINE_MAX_PAYLOAD", "big"),
            ("HOOKLINE_MAX_PAYLOAD", "99999999999999999999KiB"),
            ("HOOKLINE_MAX_PAYLOAD", "18446744073709551615MiB"),
            ("HOOKLINE_RETRY_SCHEDULE", "5s,18446744073709551615h"),
            ("HOOKLINE_DISABLE_AFTER_SPAN", "9999999999d"),
            ("HOOKLINE_HEADER_PREFIX", "x webhooks "),
            ("HOOKLINE_HEADER_PREFIX", "x-é-"),
            ("HOOKLINE_HEADER_PREFIX", "x:"),
            ("HOOKLINE_DELIVERY_CONCURRENCY", "99999999999"),
            ("HOOKLINE_PER_WEBHOOK_CONCURRENCY", "0"),
            ("HOOKLINE_RECORD_LINGER", "6s"),
            ("HOOKLINE_RECORD_LINGER", "soon"),
            ("HOOKLINE_MAX_WEBHOOKS_PER_TENANT", "0"),
            ("HOOKLINE_PUBLIC_URL", "not a url"),
            ("HOOKLINE_ROLE", "everything"),
            ("HOOKLINE_RETENTION", "10m"),
            ("HOOKLINE_PAYLOAD_RETENTION", "400d"),
            ("HOOKLINE_BODY_TIMEOUT", "0s"),
            ("HOOKLINE_SECRET_KEY", "hunter2"),
            ("HOOKLINE_SECRET_KEY_FILE", "/nonexistent/hookline.key"),
            ("HOOKLINE_PREVIOUS_SECRET_KEYS", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,hunter2"),
            ("HOOKLINE_DATABASE_POOL_SIZE", "0"),
            ("HOOKLINE_DATABASE_POOL_SIZE", "many"),
            ("HOOKLINE_LOG", "hookline=loud"),
            ("HOOKLINE_LOG_FORMAT", "xml"),
            ("HOOKLINE_MAX_PAUSE", "0s"),
            ("HOOKLINE_BREAKER_AFTER", "0"),
            ("HOOKLINE_BREAKER_PROBE", "soon"),
            ("HOOKLINE_BREAKER_PROBE_MAX", "1s"),
        ] {
            let e = config(&[(k, v)]).unwrap_err();
            assert_eq!(e.key, k);
        }
    }

    /// A TOML file of this test's own (tests run at once); removed when dropped.
    struct TomlFile(PathBuf);

    impl TomlFile {
        fn new(name: &str, text: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("hookline-config-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{name}.toml"));
            std::fs::write(&path, text).unwrap();
            TomlFile(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TomlFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn a_toml_file_sets_the_same_keys_and_the_environment_wins() {
        let file = TomlFile::new(
            "same-keys",
            "listen = \"127.0.0.1:4000\"\nretry_schedule = \"1s,2s\"\ndisable_after_failures = 3\n\
             allow_networks = [\"127.0.0.0/8\", \"::1\"]\ndatabase_pool_size = 4\nlog = \"debug\"\n\
             log_format = \"json\"\nadmin_password = \"from the file\"\n",
        );
        let c = config(&[("HOOKLINE_CONFIG", file.path()), ("HOOKLINE_RETRY_SCHEDULE", "7s")]).unwrap();
        assert_eq!(c.listen.port(), 4000);
        assert_eq!(c.disable_after_failures, 3);
        assert_eq!(c.retry_schedule, vec![Duration::from_secs(7)]);
        assert_eq!(c.allowed_networks.len(), 2);
        assert_eq!(c.database_pool_size, 4);
        assert_eq!(c.log.filter, "debug");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.admin_password.as_deref(), Some("from the file"));
        // The file's filter wins over RUST_LOG, which only stands in for HOOKLINE_LOG.
        let c = config(&[("HOOKLINE_CONFIG", file.path()), ("RUST_LOG", "trace")]).unwrap();
        assert_eq!(c.log.filter, "debug");
    }

    #[test]
    fn a_toml_file_may_name_keys_as_the_variables() {
        let file =
            TomlFile::new("variable-names", "HOOKLINE_LISTEN = \"127.0.0.1:4001\"\nmax_payload = \"1KiB\"\n");
        let c = config(&[("HOOKLINE_CONFIG", file.path())]).unwrap();
        assert_eq!(c.listen.port(), 4001);
        assert_eq!(c.max_payload, 1024);
    }

    #[test]
    fn an_unknown_key_in_the_toml_file_stops_the_start() {
        let file = TomlFile::new("unknown-key", "listen = \"127.0.0.1:4000\"\nretry_shedule = \"1s\"\n");
        let e = config(&[("HOOKLINE_CONFIG", file.path())]).unwrap_err();
        assert_eq!(e.key, "HOOKLINE_CONFIG");
        assert!(e.message.contains("unknown key \"retry_shedule\""), "{e}");
        assert!(e.message.contains("retry_schedule"), "the known keys are listed: {e}");

        // Nor can a file name another file, or hold a table.
        for (name, text) in [("config-key", "config = \"other.toml\"\n"), ("table", "[listen]\nport = 1\n")] {
            let file = TomlFile::new(name, text);
            assert_eq!(config(&[("HOOKLINE_CONFIG", file.path())]).unwrap_err().key, "HOOKLINE_CONFIG");
        }
    }
}
