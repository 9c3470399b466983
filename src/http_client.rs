//! How plumdash builds every HTTP client of a controller or an agent.
//!
//! - No proxy from the environment: they sit on loopback or a private
//!   network, and a proxy would be handed every request and its bearer token.
//! - No redirect followed: a hostile or confused server cannot send a
//!   request (a write, a token) anywhere else. A 3xx comes back as the answer
//!   it is, and [`Success::success`] turns it into an error that says so.
//!   (The KV SDK's reads follow redirects within the controller's origin:
//!   `kv/client.rs`.)

use anyhow::{bail, Result};

pub fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
}

/// For an app package's download: redirects followed, at most 5 (a release
/// host often sends the file from its storage elsewhere). reqwest drops the
/// `Authorization` header when a redirect leaves the host, and the agent only
/// sends its token to the controller in the first place.
pub fn download_builder() -> reqwest::ClientBuilder {
    builder().redirect(reqwest::redirect::Policy::limited(5))
}

/// reqwest's `error_for_status` lets a 3xx through as if it were an answer:
/// with redirects not followed, it must be an error too.
pub trait Success: Sized {
    /// The answer if its status is 2xx; otherwise an error naming the
    /// status (and, for a redirect, where it pointed).
    fn success(self) -> Result<Self>;
}

impl Success for reqwest::Response {
    fn success(self) -> Result<Self> {
        let status = self.status();
        if status.is_success() {
            return Ok(self);
        }
        if status.is_redirection() {
            let to = crate::text_safety::escape_controls(&redirect_target(&self)).into_owned();
            bail!("HTTP {status}: a redirect to {to}, not followed");
        }
        bail!("HTTP {status}")
    }
}

/// Where a redirect points, cut short for a message (not yet escaped).
pub fn redirect_target(response: &reqwest::Response) -> String {
    let to = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
        .unwrap_or_else(|| "nowhere (no Location)".into());
    crate::kv::model::preview(&to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn a_redirect_elsewhere_is_answered_not_followed() {
        let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = elsewhere.local_addr().unwrap();
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/nodes", server.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut conn, _) = server.accept().await.unwrap();
            let mut head = [0u8; 1024];
            let _ = conn.read(&mut head).await;
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target}/steal\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(answer.as_bytes()).await.unwrap();
        });
        // Bounded: a client that followed would wait on the other address.
        let client = builder()
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap();
        let answer = client
            .post(&url)
            .bearer_auth("secret")
            .body("{}")
            .send()
            .await
            .expect("the 307 itself is the answer");
        assert_eq!(answer.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        let refused = answer.success().unwrap_err().to_string();
        assert_eq!(
            refused,
            format!(
                "HTTP 307 Temporary Redirect: a redirect to http://{target}/steal, not followed"
            )
        );
        // Nothing reached the other address.
        let reached =
            tokio::time::timeout(std::time::Duration::from_millis(200), elsewhere.accept()).await;
        assert!(reached.is_err(), "the redirect was followed");
    }
}
