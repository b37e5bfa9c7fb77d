//! The URL rules of SPEC section 4 that need no network or configuration, checked in the
//! browser as the user types, with the server's wording. The server checks everything again
//! (and more: the address policy, whether `http://` is allowed).

const MAX_URL_LEN: usize = 2048;

pub fn url_problem(input: &str) -> Option<String> {
    let raw = input.trim();
    if raw.is_empty() {
        return Some("Enter the URL that should receive the events.".into());
    }
    if raw.len() > MAX_URL_LEN {
        return Some(format!("The URL is {} characters long; the limit is {MAX_URL_LEN}.", raw.len()));
    }
    if raw.chars().any(char::is_whitespace) {
        return Some("The URL must not contain spaces.".into());
    }
    if raw.contains('#') {
        return Some("The URL must not contain a fragment (the part after #).".into());
    }
    let lower = raw.to_ascii_lowercase();
    // Still typing the scheme: say nothing yet.
    if "https://".starts_with(&lower) {
        return None;
    }
    let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
        return Some("The URL must start with https://.".into());
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Some("The URL must name a host, as in https://example.com/hooks.".into());
    }
    if rest.split(['/', '?']).next().is_some_and(|authority| authority.contains('@')) {
        return Some("The URL must not contain a user name or password.".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::url_problem;

    #[test]
    fn flags_what_can_be_seen_while_typing() {
        assert_eq!(url_problem("https://example.com/hooks"), None);
        assert_eq!(url_problem("htt"), None);
        assert!(url_problem("ftp://example.com").unwrap().contains("https://"));
        assert!(url_problem("https://exa mple.com").unwrap().contains("spaces"));
        assert!(url_problem("https://example.com/#x").unwrap().contains("fragment"));
        assert_eq!(url_problem("https://"), None, "still typing");
        assert!(url_problem("https:///hooks").unwrap().contains("host"));
        assert!(url_problem("https://me:pw@example.com/").unwrap().contains("password"));
        assert!(url_problem(&format!("https://example.com/{}", "a".repeat(2050))).unwrap().contains("limit"));
    }
}
