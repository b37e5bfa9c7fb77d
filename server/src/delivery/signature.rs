//! Standard Webhooks signatures. The signer lives in `hookline_domain::signature`, so the
//! dashboard's signature check in the browser runs the very code that signs deliveries; this
//! module keeps the engine's name for it.

pub use hookline_domain::signature::{sign, signature_header};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_the_core_secrets() {
        let secrets = vec![hookline_core::generate_secret(), hookline_core::generate_secret()];
        let header = signature_header(&secrets, "id", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
        assert_eq!(hookline_core::SECRET_PREFIX, hookline_domain::signature::SECRET_PREFIX);
    }
}
