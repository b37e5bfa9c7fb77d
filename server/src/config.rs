//! Configuration: environment variables (SPEC section 6), optionally over a TOML file named by
//! `HOOKLINE_CONFIG` whose keys are the variables' names without the prefix, in lower case
//! (`listen = "0.0.0.0:3000"`, `retry_schedule = "5s,30s"`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookline_core::{AddressPolicy, Settings, UrlPolicy};
use ipnet::IpNet;

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub admin_email: Option<String>,
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
    /// How many deliveries one process sends at once.
    pub delivery_concurrency: usize,
    /// How many deliveries one webhook may have in flight at once.
    pub per_webhook_concurrency: usize,
    /// Whether this process runs delivery workers at all.
    pub workers: bool,
}

pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

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
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Some(path) = env.get("HOOKLINE_CONFIG") {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err("HOOKLINE_CONFIG", format!("cannot read {path}: {e}")))?;
            let table: toml::Table =
                text.parse().map_err(|e| err("HOOKLINE_CONFIG", format!("{path} is not valid TOML: {e}")))?;
            for (key, value) in table {
                let value = match value {
                    toml::Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
                    other => scalar(&other),
                };
                vars.insert(format!("HOOKLINE_{}", key.to_ascii_uppercase()), value);
            }
        }
        for (k, v) in env {
            if k.starts_with("HOOKLINE_") {
                vars.insert(k.clone(), v.clone());
            }
        }
        let get = |k: &str| vars.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());

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
        let allowed_networks = get("HOOKLINE_ALLOW_NETWORKS")
            .map(|s| {
                s.split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(|p| parse_network(p.trim()).map_err(|m| err("HOOKLINE_ALLOW_NETWORKS", m)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let default_site_root = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().and_then(|p| p.parent()).map(|t| t.join("site")))
            .filter(|p| p.join("pkg").exists())
            .unwrap_or_else(|| PathBuf::from("target/site"));

        Ok(Config {
            database_url: get("HOOKLINE_DATABASE_URL")
                .unwrap_or_else(|| "sqlite://hookline.db?mode=rwc".into()),
            listen: get("HOOKLINE_LISTEN")
                .unwrap_or_else(|| "127.0.0.1:3000".into())
                .parse()
                .map_err(|e| err("HOOKLINE_LISTEN", format!("not an address like 127.0.0.1:3000: {e}")))?,
            admin_email: get("HOOKLINE_ADMIN_EMAIL"),
            admin_password: get("HOOKLINE_ADMIN_PASSWORD"),
            allowed_networks,
            allow_http: parse_bool(&get("HOOKLINE_ALLOW_HTTP").unwrap_or_else(|| "false".into()))
                .map_err(|m| err("HOOKLINE_ALLOW_HTTP", m))?,
            retry_schedule,
            delivery_timeout,
            disable_after_failures: parse_number(
                &get("HOOKLINE_DISABLE_AFTER_FAILURES").unwrap_or_else(|| "20".into()),
            )
            .map_err(|m| err("HOOKLINE_DISABLE_AFTER_FAILURES", m))?,
            disable_after_span: parse_duration(
                &get("HOOKLINE_DISABLE_AFTER_SPAN").unwrap_or_else(|| "24h".into()),
            )
            .map_err(|m| err("HOOKLINE_DISABLE_AFTER_SPAN", m))?,
            max_payload: parse_size(&get("HOOKLINE_MAX_PAYLOAD").unwrap_or_else(|| "256KiB".into()))
                .map_err(|m| err("HOOKLINE_MAX_PAYLOAD", m))?,
            header_prefix: get("HOOKLINE_HEADER_PREFIX")
                .unwrap_or_else(|| "x-webhooks-".into())
                .to_ascii_lowercase(),
            site_root: get("HOOKLINE_SITE_ROOT").map(PathBuf::from).unwrap_or(default_site_root),
            delivery_concurrency: parse_number(
                &get("HOOKLINE_DELIVERY_CONCURRENCY").unwrap_or_else(|| "256".into()),
            )
            .map_err(|m| err("HOOKLINE_DELIVERY_CONCURRENCY", m))? as usize,
            per_webhook_concurrency: parse_number(
                &get("HOOKLINE_PER_WEBHOOK_CONCURRENCY").unwrap_or_else(|| "32".into()),
            )
            .map_err(|m| err("HOOKLINE_PER_WEBHOOK_CONCURRENCY", m))?
                as usize,
            workers: parse_bool(&get("HOOKLINE_WORKERS").unwrap_or_else(|| "true".into()))
                .map_err(|m| err("HOOKLINE_WORKERS", m))?,
        })
    }

    pub fn settings(&self) -> Settings {
        Settings {
            url_policy: UrlPolicy { addresses: self.address_policy(), allow_http: self.allow_http },
            max_payload: self.max_payload,
            ..Settings::default()
        }
    }

    pub fn address_policy(&self) -> AddressPolicy {
        AddressPolicy { allowed_networks: self.allowed_networks.clone() }
    }
}

fn scalar(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// `250ms`, `5s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a duration like 250ms, 5s, 2m or 1h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?} is not a duration like 250ms, 5s, 2m or 1h")),
    };
    Ok(d)
}

/// `262144`, `256KiB`, `1MiB`, `300KB`.
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
        _ => return Err(format!("{s:?} is not a size like 256KiB")),
    };
    Ok(n * mult)
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
        ] {
            let e = config(&[(k, v)]).unwrap_err();
            assert_eq!(e.key, k);
        }
    }

    #[test]
    fn a_toml_file_sets_the_same_keys_and_the_environment_wins() {
        let dir = std::env::temp_dir().join(format!("hookline-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hookline.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:4000\"\nretry_schedule = \"1s,2s\"\ndisable_after_failures = 3\n",
        )
        .unwrap();
        let c = config(&[("HOOKLINE_CONFIG", path.to_str().unwrap()), ("HOOKLINE_RETRY_SCHEDULE", "7s")])
            .unwrap();
        assert_eq!(c.listen.port(), 4000);
        assert_eq!(c.disable_after_failures, 3);
        assert_eq!(c.retry_schedule, vec![Duration::from_secs(7)]);
    }
}
