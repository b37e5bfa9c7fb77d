//! The one way Hookline sends email: an SMTP relay named by `HOOKLINE_SMTP_URL`, through
//! lettre on the process's rustls. Plain text messages, one per alert, to every recipient at
//! once.

use std::fmt;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long one send may take, connection included: a slow relay delays the next alert,
/// never a delivery.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// `HOOKLINE_SMTP_URL`, checked: `smtp://host:25` (plain, or `?tls=required` for STARTTLS),
/// `smtps://user:pass@host` (TLS from the start). Its debug output hides the password.
#[derive(Clone)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|e| format!("not a URL like smtp://mail.example:25: {e}"))?;
        if !matches!(url.scheme(), "smtp" | "smtps") {
            return Err(format!("{:?} is not smtp:// or smtps://", url.scheme()));
        }
        AsyncSmtpTransport::<Tokio1Executor>::from_url(s)
            .map_err(|e| format!("not a usable SMTP URL: {e}"))?;
        Ok(SmtpUrl(s.to_string()))
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => self.0.clone(),
        };
        f.debug_tuple("SmtpUrl").field(&shown).finish()
    }
}

/// `HOOKLINE_SMTP_FROM`: `alerts@example.com` or `Hookline <alerts@example.com>`.
pub fn parse_sender(s: &str) -> Result<Mailbox, String> {
    s.trim().parse::<Mailbox>().map_err(|e| format!("{s:?} is not an email address: {e}"))
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the message could not be built: {0}")]
    Message(String),
    #[error("the SMTP server did not take the message: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// The SMTP relay and the sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(url: &SmtpUrl, from: Mailbox) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url.0)
            .map_err(|e| e.to_string())?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        Ok(Mailer { transport, from })
    }

    /// Sends one plain-text message to all of `to`; returns once the relay accepted it.
    pub async fn send(&self, to: &[String], subject: &str, body: String) -> Result<(), MailError> {
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for address in to {
            let mailbox =
                address.parse::<Mailbox>().map_err(|e| MailError::Message(format!("{address}: {e}")))?;
            message = message.to(mailbox);
        }
        let message = message
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Message(e.to_string()))?;
        self.transport.send(message).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_checked_and_their_passwords_hidden() {
        assert!(SmtpUrl::parse("smtp://127.0.0.1:2525").is_ok());
        let url = SmtpUrl::parse("smtps://user:s3cret@mail.example").unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(SmtpUrl::parse("http://mail.example").is_err());
        assert!(SmtpUrl::parse("mail.example:25").is_err());
    }

    #[test]
    fn senders_are_addresses() {
        assert_eq!(
            parse_sender("Hookline <alerts@example.com>").unwrap().email.to_string(),
            "alerts@example.com"
        );
        assert!(parse_sender("not an address").is_err());
    }
}
