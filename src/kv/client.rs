//! `DistributedMemory`: the KV client SDK, mirroring the original C++ API.
//!
//! Unlike the original it keeps no silent cache and never turns a failure
//! into a default: reads say *absent* (`Ok(None)`), *unreachable*, or
//! *rejected*, and writes report failure instead of being lost.

use super::error::KvError;
use super::model::{validate_key, validate_namespace, BatchItem, Entry, Listing, ValueType};
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::json;
use std::time::Duration;

/// Where the original worker looks when `CONTROLLER_BASE` is unset.
pub const DEFAULT_CONTROLLER_BASE: &str = "http://127.0.0.1:8080";

/// Characters escaped in a key; `/` stays as it is (keys may contain it and
/// the original sends it raw).
const KEY_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');
const NAMESPACE_ESCAPES: &AsciiSet = &KEY_ESCAPES.add(b'/');

/// How to reach a controller.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub token: Option<String>,
    /// Send `Connection: close` and keep no idle connections, as the
    /// original C++ client does.
    pub connection_close: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Sent as `X-Plum-Instance` on every request: the instance this client
    /// writes for, fenced by the controller once a failover replaced it.
    pub instance: Option<String>,
    /// The controller's address as messages name it, when this client
    /// reaches it some other way (the dashboard reads its embedded
    /// controller through a listener of its own: an error naming that
    /// private port would name an address the user never gave).
    pub known_as: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: std::env::var("PLUM_TOKEN").ok().filter(|t| !t.is_empty()),
            connection_close: false,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            instance: None,
            known_as: None,
        }
    }
}

/// A handle on one namespace of one controller. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DistributedMemory {
    /// Reads: redirects followed within the controller's origin only.
    http: reqwest::Client,
    /// Writes: no redirect followed (a 3xx is an error naming where it pointed).
    http_write: reqwest::Client,
    base: String,
    namespace: String,
    options: ClientOptions,
}

impl DistributedMemory {
    /// A client for `namespace` at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn create(namespace: &str, base_url: &str) -> Result<Self, KvError> {
        Self::with_options(namespace, base_url, ClientOptions::default())
    }

    pub fn with_options(
        namespace: &str,
        base_url: &str,
        options: ClientOptions,
    ) -> Result<Self, KvError> {
        validate_namespace(namespace).map_err(KvError::Invalid)?;
        let base = normalize_base(base_url)?;
        let client = |redirects: reqwest::redirect::Policy| {
            let mut builder = crate::http_client::builder()
                .connect_timeout(options.connect_timeout)
                .timeout(options.request_timeout)
                // Under the controller's 10 s idle keep-alive timeout, so a pooled
                // connection is never reused just as the server closes it.
                .pool_idle_timeout(Duration::from_secs(5))
                .redirect(redirects);
            if options.connection_close {
                builder = builder.pool_max_idle_per_host(0);
            }
            builder
                .build()
                .map_err(|e| KvError::Invalid(format!("building the HTTP client: {e}")))
        };
        Ok(DistributedMemory {
            http: client(same_origin_redirects())?,
            // A write is never sent anywhere but where it was addressed.
            http_write: client(reqwest::redirect::Policy::none())?,
            base,
            namespace: namespace.to_string(),
            options,
        })
    }

    /// The same controller, another namespace.
    pub fn for_namespace(&self, namespace: &str) -> Result<Self, KvError> {
        validate_namespace(namespace).map_err(KvError::Invalid)?;
        Ok(DistributedMemory {
            namespace: namespace.to_string(),
            ..self.clone()
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The controller's address as messages name it (see
    /// [`ClientOptions::known_as`]).
    pub fn shown_url(&self) -> &str {
        self.options.known_as.as_deref().unwrap_or(&self.base)
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    // ---- strings ----

    pub async fn put(&self, key: &str, value: &str) -> Result<(), KvError> {
        self.put_typed(key, value, ValueType::String).await
    }

    /// The string value, `None` when the key is absent.
    pub async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        Ok(self.get_entry(key).await?.map(|e| e.value))
    }

    /// The string value, or `default` when the key is absent (never when the
    /// controller is unreachable: that is an error).
    pub async fn get_or(&self, key: &str, default: &str) -> Result<String, KvError> {
        Ok(self.get(key).await?.unwrap_or_else(|| default.to_string()))
    }

    // ---- typed values ----

    pub async fn put_int(&self, key: &str, value: i64) -> Result<(), KvError> {
        self.put_typed(key, &value.to_string(), ValueType::Int)
            .await
    }

    pub async fn get_int(&self, key: &str) -> Result<Option<i64>, KvError> {
        self.get_parsed(key, "an int", |v| v.trim().parse().ok())
            .await
    }

    pub async fn put_double(&self, key: &str, value: f64) -> Result<(), KvError> {
        self.put_typed(key, &format!("{value:.6}"), ValueType::Double)
            .await
    }

    pub async fn get_double(&self, key: &str) -> Result<Option<f64>, KvError> {
        self.get_parsed(key, "a double", |v| v.trim().parse().ok())
            .await
    }

    pub async fn put_bool(&self, key: &str, value: bool) -> Result<(), KvError> {
        self.put_typed(key, if value { "true" } else { "false" }, ValueType::Bool)
            .await
    }

    pub async fn get_bool(&self, key: &str) -> Result<Option<bool>, KvError> {
        self.get_parsed(key, "a bool", |v| match v {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        })
        .await
    }

    pub async fn put_bytes(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        self.put_typed(key, &encoded, ValueType::Bytes).await
    }

    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.get_parsed(key, "base64 bytes", |v| {
            base64::engine::general_purpose::STANDARD.decode(v).ok()
        })
        .await
    }

    async fn get_parsed<T>(
        &self,
        key: &str,
        wanted: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, KvError> {
        let Some(entry) = self.get_entry(key).await? else {
            return Ok(None);
        };
        match parse(&entry.value) {
            Some(v) => Ok(Some(v)),
            None => Err(KvError::WrongType {
                key: key.to_string(),
                value: entry.value,
                stored_type: entry.value_type.to_string(),
                wanted,
            }),
        }
    }

    // ---- raw operations ----

    /// `PUT /v1/kv/{ns}/{key}`; success is exactly 200, as the original counts it.
    pub async fn put_typed(&self, key: &str, value: &str, ty: ValueType) -> Result<(), KvError> {
        validate_key(key).map_err(KvError::Invalid)?;
        ty.validate(value).map_err(KvError::Invalid)?;
        let body = json!({ "type": ty.as_str(), "value": value });
        let resp = self
            .send(self.request(Method::PUT, &self.key_url(key)).json(&body))
            .await?;
        expect_status(resp, &[StatusCode::OK]).await.map(drop)
    }

    /// The whole entry, `None` when absent.
    pub async fn get_entry(&self, key: &str) -> Result<Option<Entry>, KvError> {
        validate_key(key).map_err(KvError::Invalid)?;
        let resp = self
            .send(self.request(Method::GET, &self.key_url(key)))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = expect_status(resp, &[StatusCode::OK]).await?;
        // Read as a listing's entry is (an original controller leaves the
        // namespace out): JSON that is not an entry says which field, not
        // "bad JSON".
        let item: serde_json::Value = read_json(resp).await?;
        match super::model::read_entry(item, &self.namespace) {
            super::model::EntryRead::Entry(entry) => Ok(Some(entry)),
            super::model::EntryRead::Foreign(other) => Err(KvError::Protocol(format!(
                "the answer for key {:?} is namespace {:?}'s",
                super::model::preview(key),
                super::model::preview(&other)
            ))),
            super::model::EntryRead::Unreadable(u) => Err(KvError::Protocol(format!(
                "key {:?} does not read as an entry: {}",
                super::model::preview(key),
                u.reason
            ))),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.get_entry(key).await?.is_some())
    }

    /// `DELETE`; removing an absent key succeeds.
    pub async fn remove(&self, key: &str) -> Result<(), KvError> {
        validate_key(key).map_err(KvError::Invalid)?;
        let resp = self
            .send(self.request(Method::DELETE, &self.key_url(key)))
            .await?;
        expect_status(resp, &[StatusCode::OK, StatusCode::NO_CONTENT])
            .await
            .map(drop)
    }

    /// Writes all items in one request: the controller applies all or none.
    pub async fn put_batch(&self, items: &[BatchItem]) -> Result<usize, KvError> {
        if items.is_empty() {
            return Err(KvError::Invalid("a batch needs at least one item".into()));
        }
        for item in items {
            validate_key(&item.key).map_err(KvError::Invalid)?;
            item.value_type
                .validate(&item.value)
                .map_err(|e| KvError::Invalid(format!("{}: {e}", item.key)))?;
        }
        let url = format!("{}/batch", self.namespace_url());
        let resp = self
            .send(
                self.request(Method::POST, &url)
                    .json(&json!({ "items": items })),
            )
            .await?;
        let resp = expect_status(resp, &[StatusCode::OK]).await?;
        let answer: serde_json::Value = read_json(resp).await?;
        Ok(answer
            .get("count")
            .and_then(|c| c.as_u64())
            .map_or(items.len(), |c| c as usize))
    }

    /// Every entry of the namespace, sorted by key.
    ///
    /// An original Plum controller lists a `bytes` entry with its decoded
    /// length in place of the value; such entries are fetched one by one.
    pub async fn get_all(&self) -> Result<Vec<Entry>, KvError> {
        self.list(None).await
    }

    /// Entries whose key starts with `prefix`; an error if any entry does not
    /// read (a worker must not take a malformed entry for an absent one).
    pub async fn list(&self, prefix: Option<&str>) -> Result<Vec<Entry>, KvError> {
        let listing = self.listing(prefix).await?;
        if let Some(bad) = listing.unreadable.first() {
            return Err(KvError::Protocol(format!(
                "entry {:?} of namespace {:?} is unreadable: {}{}",
                bad.key_text(),
                self.namespace,
                bad.reason,
                match listing.unreadable.len() {
                    1 => String::new(),
                    n => format!(" ({} more)", n - 1),
                }
            )));
        }
        Ok(listing.entries)
    }

    /// Entries whose key starts with `prefix`, each read on its own: the
    /// malformed ones come apart (`unreadable`), entries naming another
    /// namespace are left out (counted), the rest are used.
    pub async fn listing(&self, prefix: Option<&str>) -> Result<Listing, KvError> {
        let mut req = self.request(Method::GET, &self.namespace_url());
        if let Some(p) = prefix {
            req = req.query(&[("prefix", p)]);
        }
        let resp = expect_status(self.send(req).await?, &[StatusCode::OK]).await?;
        // An original controller may answer `null` for an empty list (a Go nil slice).
        let items = read_json::<Option<Vec<serde_json::Value>>>(resp)
            .await?
            .unwrap_or_default();
        let mut listing = Listing::read(items, &self.namespace);
        for entry in &mut listing.entries {
            if entry.value_type == ValueType::Bytes && entry.bytes().is_none() {
                if let Some(full) = self.get_entry(&entry.key).await? {
                    *entry = full;
                }
            }
        }
        Ok(listing)
    }

    /// `GET /v1/kv`: every namespace on the controller.
    pub async fn namespaces(&self) -> Result<Vec<String>, KvError> {
        let url = format!("{}/v1/kv", self.base);
        let resp = expect_status(
            self.send(self.request(Method::GET, &url)).await?,
            &[StatusCode::OK],
        )
        .await?;
        // The original controller answers `{"namespaces":null}` when there are none.
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            namespaces: Option<Vec<String>>,
        }
        Ok(read_json::<Answer>(resp)
            .await?
            .namespaces
            .unwrap_or_default())
    }

    /// `GET /healthz`: Ok when the controller answers 200.
    pub async fn health(&self) -> Result<(), KvError> {
        let url = format!("{}/healthz", self.base);
        let resp = self.send(self.request(Method::GET, &url)).await?;
        expect_status(resp, &[StatusCode::OK]).await.map(drop)
    }

    // ---- plumbing shared with the watcher ----

    pub(super) fn namespace_url(&self) -> String {
        format!(
            "{}/v1/kv/{}",
            self.base,
            utf8_percent_encode(&self.namespace, NAMESPACE_ESCAPES)
        )
    }

    fn key_url(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.namespace_url(),
            utf8_percent_encode(key, KEY_ESCAPES)
        )
    }

    pub(super) fn stream_url(&self) -> String {
        format!("{}/v1/stream", self.base)
    }

    pub(super) fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let http = if matches!(method, Method::GET | Method::HEAD) {
            &self.http
        } else {
            &self.http_write
        };
        let mut req = http.request(method, url);
        if self.options.connection_close {
            req = req.header(reqwest::header::CONNECTION, "close");
        }
        if let Some(token) = &self.options.token {
            req = req.bearer_auth(token);
        }
        if let Some(instance) = &self.options.instance {
            req = req.header(super::model::INSTANCE_HEADER, instance);
        }
        // Names this process, so plumdash's controller can tell which run
        // made each write (others ignore the header).
        req.header(super::model::WRITER_HEADER, std::process::id())
    }

    pub(super) async fn send(&self, req: RequestBuilder) -> Result<Response, KvError> {
        req.send().await.map_err(|e| {
            if e.is_redirect() {
                KvError::Protocol(root_cause(&e))
            } else if not_http(&e) {
                // It answered, with what is not HTTP: not an outage.
                KvError::Protocol(format!("{} ({})", super::error::NOT_HTTP, root_cause(&e)))
            } else {
                self.unreachable(&e)
            }
        })
    }

    pub(super) fn unreachable(&self, e: &reqwest::Error) -> KvError {
        let reason = if e.is_connect() {
            "connection refused or failed".to_string()
        } else if e.is_timeout() {
            // Connected and sent: whether a write took is not known.
            "no answer in time (the request was sent: it may have taken effect)".to_string()
        } else {
            root_cause(e)
        };
        KvError::Unreachable {
            url: self.shown_url().to_string(),
            reason,
        }
    }
}

/// Redirects of reads are followed while they stay on the controller's origin
/// (scheme, host, port), at most 5; one elsewhere is an error naming both URLs.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(first) = attempt.previous().first().cloned() else {
            return attempt.follow();
        };
        if attempt.url().origin() != first.origin() {
            let message = format!(
                "the controller at {} redirected to another origin, {}: not followed",
                first,
                attempt.url()
            );
            attempt.error(message)
        } else if attempt.previous().len() > 5 {
            attempt.error(format!("more than 5 redirects from {first}"))
        } else {
            attempt.follow()
        }
    })
}

/// A controller's base URL as given on a command line: `http://host:port`
/// (the reason, in one line, when it is not one).
pub fn check_base(base_url: &str) -> Result<String, String> {
    normalize_base(base_url).map_err(|e| match e {
        KvError::Invalid(why) => why,
        other => other.to_string(),
    })
}

fn normalize_base(base_url: &str) -> Result<String, KvError> {
    let trimmed = base_url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed)
        .map_err(|e| KvError::Invalid(format!("controller URL {trimmed:?} is not a URL: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(KvError::Invalid(format!(
            "controller URL {trimmed:?} must start with http:// (TLS is not supported)"
        )));
    }
    Ok(trimmed.to_string())
}

/// Accepts only the listed statuses; anything else becomes `Rejected` with
/// the controller's one-line reason.
pub(super) async fn expect_status(resp: Response, ok: &[StatusCode]) -> Result<Response, KvError> {
    let status = resp.status();
    if ok.contains(&status) {
        return Ok(resp);
    }
    if status.is_redirection() {
        return Err(KvError::Rejected {
            status: status.as_u16(),
            reason: format!(
                "redirected from {} to {}: a write is not redirected",
                resp.url(),
                crate::http_client::redirect_target(&resp)
            ),
        });
    }
    let html = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    // Only its first line is kept: no need to read a long answer whole.
    let text = crate::http_body::read_capped(resp, MAX_ERROR_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let reason = if html || text.trim_start().starts_with('<') {
        crate::http_body::html_excerpt(&text)
    } else {
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.lines().next().unwrap_or("").trim().to_string())
    };
    // One bounded line, whatever the server sent (escaped when printed).
    let reason: String = reason.chars().take(300).collect();
    Err(KvError::Rejected {
        status: status.as_u16(),
        reason: if reason.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_string()
        } else {
            reason
        },
    })
}

/// Largest answer read: a namespace of many big values fits (a value is at
/// most 1 MiB on plumdash's controller); an endless answer does not.
const MAX_ANSWER: usize = 256 << 20;
/// An error answer is read for its first line only.
const MAX_ERROR_BODY: usize = 64 << 10;

pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
    resp: Response,
) -> Result<T, KvError> {
    let bytes = crate::http_body::read_capped(resp, MAX_ANSWER)
        .await
        .map_err(KvError::Protocol)?;
    // A byte that is not UTF-8 inside one value costs that value (shown with
    // U+FFFD where it was), not the whole answer; valid text is not copied.
    let text = String::from_utf8_lossy(&bytes);
    serde_json::from_str(&text).map_err(|e| KvError::Protocol(format!("bad JSON: {e}")))
}

/// Did the server answer with bytes that do not parse as HTTP (a TLS port, a
/// garbage status line, a broken header)?
fn not_http(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_what_must_be_escaped_and_keep_slashes_in_keys() {
        let dm = DistributedMemory::create("kv-demo", "http://127.0.0.1:8080/").unwrap();
        assert_eq!(dm.base_url(), "http://127.0.0.1:8080");
        assert_eq!(
            dm.key_url("a/b c?.ключ"),
            "http://127.0.0.1:8080/v1/kv/kv-demo/a/b%20c%3F.%D0%BA%D0%BB%D1%8E%D1%87"
        );
    }

    /// One byte that is not UTF-8 in one value: that value reads with U+FFFD
    /// in its place, the rest of the answer as sent (it was "bad JSON" whole).
    #[tokio::test]
    async fn a_byte_that_is_not_utf8_costs_its_value_not_the_answer() {
        let mut body = br#"[{"key":"a","value":"ok"},{"key":"b","value":"x"#.to_vec();
        body.push(0xff);
        body.extend_from_slice(br#"y"}]"#);
        let resp = reqwest::Response::from(axum::http::Response::new(body));
        let read: serde_json::Value = read_json(resp).await.unwrap();
        assert_eq!(read[0]["value"], "ok");
        assert_eq!(read[1]["value"], "x\u{fffd}y");
    }

    /// The dashboard reads its embedded controller through a private port;
    /// an outage names the controller's address, the one the user knows.
    #[tokio::test]
    async fn an_unreachable_controller_is_named_as_it_is_known() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let options = |known_as: Option<&str>| ClientOptions {
            known_as: known_as.map(str::to_string),
            ..ClientOptions::default()
        };
        let private = format!("http://127.0.0.1:{port}");
        let dm = DistributedMemory::with_options("ns", &private, options(None)).unwrap();
        let plain = dm.get("k").await.unwrap_err().to_string();
        assert!(plain.contains(&private), "{plain}");
        let known = "http://127.0.0.1:8080";
        let dm = DistributedMemory::with_options("ns", &private, options(Some(known))).unwrap();
        let named = dm.get("k").await.unwrap_err().to_string();
        assert!(
            named.starts_with(&format!("controller at {known} is unreachable")),
            "{named}"
        );
        assert!(!named.contains(&private), "{named}");
    }

    #[test]
    fn bad_inputs_are_refused_before_sending() {
        assert!(DistributedMemory::create("a/b", "http://x").is_err());
        assert!(DistributedMemory::create("ns", "ftp://x").is_err());
        assert!(DistributedMemory::create("ns", "not a url").is_err());
    }
}
