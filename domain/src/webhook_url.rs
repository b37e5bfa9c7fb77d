//! The URL a webhook delivers to. [`WebhookUrl::parse`] is the only way to make one, so a
//! value of this type has passed every rule of the spec's section 4.

use std::fmt;
use std::net::IpAddr;

use crate::input_error::InputError;
use crate::net::AddressPolicy;

pub const MAX_URL_LEN: usize = 2048;

#[derive(Clone, Debug, Default)]
pub struct UrlPolicy {
    pub addresses: AddressPolicy,
    /// Whether `http://` is accepted, for hosts inside the allowed networks only.
    pub allow_http: bool,
}

impl UrlPolicy {
    /// Every address, and `http://`: only the rules that need no configuration. What the
    /// dashboard checks in the browser, which does not know the operator's networks; the
    /// server checks again with its own policy.
    pub fn syntax_only() -> Self {
        let everywhere = ["0.0.0.0/0", "::/0"].iter().filter_map(|net| net.parse().ok()).collect();
        UrlPolicy { addresses: AddressPolicy { allowed_networks: everywhere }, allow_http: true }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(input: &str, policy: &UrlPolicy) -> Result<Self, InputError> {
        let invalid = |message: String| InputError::new("url", message);
        let raw = input.trim();
        if raw.is_empty() {
            return Err(invalid("Enter the URL that should receive the events.".into()));
        }
        if raw.len() > MAX_URL_LEN {
            return Err(invalid(format!(
                "The URL is {} characters long; the limit is {MAX_URL_LEN}.",
                raw.len()
            )));
        }
        if raw.chars().any(char::is_whitespace) {
            return Err(invalid("The URL must not contain spaces.".into()));
        }
        if raw.contains('#') {
            return Err(invalid("The URL must not contain a fragment (the part after #).".into()));
        }
        if let Some(c) = raw.chars().find(|c| !is_rfc2396_char(*c)) {
            return Err(invalid(format!(
                "The URL contains '{c}', which a URL may not contain; percent-encode it."
            )));
        }
        if let Some(bad) = bad_percent_escape(raw) {
            return Err(invalid(format!(
                "The URL has an incomplete percent-escape at \"{bad}\"; write % followed by two hex digits."
            )));
        }
        let scheme_end = raw.find("://");
        let scheme = scheme_end.map(|i| raw[..i].to_ascii_lowercase());
        match scheme.as_deref() {
            Some("https") | Some("http") => {}
            _ => return Err(invalid("The URL must start with https://.".into())),
        }
        let parsed = url::Url::parse(raw).map_err(|e| invalid(format!("This is not a valid URL: {e}.")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid("The URL must not contain a user name or password.".into()));
        }
        let host = match parsed.host() {
            Some(host) => host,
            None => {
                return Err(invalid("The URL must name a host, as in https://example.com/hooks.".into()));
            }
        };
        let literal_ip: Option<IpAddr> = match host {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(_) => None,
        };
        let host_name = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let is_localhost = host_name == "localhost" || host_name.ends_with(".localhost");
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let allowlisted = match literal_ip {
            Some(ip) => policy.addresses.is_allowlisted(ip),
            None => is_localhost && policy.addresses.is_allowlisted(loopback),
        };
        if let Some(ip) = literal_ip {
            if !policy.addresses.permits(ip) {
                return Err(invalid(format!(
                    "The URL points to {ip}, a private, loopback or link-local address that cannot receive webhooks."
                )));
            }
        } else if is_localhost && !allowlisted {
            return Err(invalid("The URL points to localhost, which cannot receive webhooks.".to_string()));
        }
        if parsed.scheme() == "http" && !(policy.allow_http && allowlisted) {
            return Err(invalid("The URL must start with https://.".into()));
        }
        Ok(WebhookUrl(raw.to_string()))
    }

    /// What the dashboard says of a URL as the user types it: the rules that need no
    /// configuration, in the server's words, and nothing while the scheme is still being typed.
    pub fn problem_while_typing(input: &str) -> Option<String> {
        let lower = input.trim().to_ascii_lowercase();
        if !lower.is_empty() && "https://".starts_with(&lower) {
            return None;
        }
        WebhookUrl::parse(input, &UrlPolicy::syntax_only()).err().map(|e| e.message)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 2396 allows unreserved, reserved and escaped characters; `[` and `]` are allowed for
/// IPv6 literals as RFC 2732 amends it.
fn is_rfc2396_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'();/?:@&=+$,%[]".contains(c)
}

fn bad_percent_escape(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok =
                bytes.len() > i + 2 && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Some(&s[i..(i + 3).min(s.len())]);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<WebhookUrl, String> {
        WebhookUrl::parse(url, &UrlPolicy::default()).map_err(|e| e.to_string())
    }

    fn loopback_policy() -> UrlPolicy {
        UrlPolicy {
            addresses: AddressPolicy { allowed_networks: vec!["127.0.0.0/8".parse().unwrap()] },
            allow_http: true,
        }
    }

    #[test]
    fn accepts_an_https_url() {
        assert_eq!(
            check("https://hooks.example.com/yotpo?x=1").unwrap().as_str(),
            "https://hooks.example.com/yotpo?x=1"
        );
    }

    #[test]
    fn each_mistake_has_its_own_message() {
        let cases = [
            ("", "Enter the URL"),
            ("http://hooks.example.com", "must start with https://"),
            ("ftp://hooks.example.com", "must start with https://"),
            ("hooks.example.com", "must start with https://"),
            ("https://hooks.example.com/a b", "must not contain spaces"),
            ("https://hooks.example.com/#top", "must not contain a fragment"),
            ("https://hooks.example.com/<x>", "'<'"),
            ("https://hooks.example.com/%zz", "percent-escape"),
            ("https://user:pw@hooks.example.com/", "user name or password"),
            ("https://127.0.0.1/hook", "127.0.0.1"),
            ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("https://10.0.0.8/", "private"),
            ("https://[::1]/", "::1"),
            ("https://[::ffff:10.0.0.1]/", "private"),
            ("https://localhost:8080/", "localhost"),
        ];
        for (url, expected) in cases {
            let message = check(url).expect_err(url);
            assert!(message.contains(expected), "{url}: {message}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(check(&long).unwrap_err().contains("limit is 2048"));
    }

    #[test]
    fn refuses_private_addresses_unless_the_policy_allows_their_network() {
        for url in ["https://192.168.1.10/hook", "https://[fd00::1]/hook", "https://[64:ff9b::a00:1]/"] {
            assert!(check(url).is_err(), "{url}");
        }
        let policy = UrlPolicy {
            addresses: AddressPolicy { allowed_networks: vec!["192.168.0.0/16".parse().unwrap()] },
            allow_http: false,
        };
        assert!(WebhookUrl::parse("https://192.168.1.10/hook", &policy).is_ok());
        assert!(WebhookUrl::parse("https://10.0.0.1/hook", &policy).is_err());
        assert_eq!(
            WebhookUrl::parse(" https://hooks.example.com/x ", &policy).unwrap().as_str(),
            "https://hooks.example.com/x"
        );
    }

    #[test]
    fn the_browser_checks_what_needs_no_configuration() {
        assert_eq!(WebhookUrl::problem_while_typing("htt"), None, "still typing the scheme");
        assert_eq!(WebhookUrl::problem_while_typing("https://example.com/hooks"), None);
        // The operator's networks are the server's to judge.
        assert_eq!(WebhookUrl::problem_while_typing("http://127.0.0.1:9000/hook"), None);
        let said = |url| WebhookUrl::problem_while_typing(url).unwrap_or_default();
        assert!(said("").contains("Enter the URL"));
        assert!(said("ftp://example.com").contains("https://"));
        assert!(said("https://exa mple.com").contains("spaces"));
        assert!(said("https://example.com/#x").contains("fragment"));
        assert!(said("https://me:pw@example.com/").contains("password"));
        assert!(said(&format!("https://example.com/{}", "a".repeat(2050))).contains("limit"));
    }

    #[test]
    fn allowlisted_loopback_may_use_http_when_the_operator_allows_it() {
        let policy = loopback_policy();
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", &policy).is_ok());
        assert!(WebhookUrl::parse("http://localhost:9000/hook", &policy).is_ok());
        assert!(WebhookUrl::parse("http://hooks.example.com/", &policy).is_err());
        let no_http = UrlPolicy { allow_http: false, ..policy };
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", &no_http).is_err());
        assert!(WebhookUrl::parse("https://127.0.0.1:9000/hook", &no_http).is_ok());
    }
}
