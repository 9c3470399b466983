//! Request bodies of the KV API as types, and `JsonBody`, the extractor that reads
//! one: its rejection is the API's own one-line JSON error (413 over the limit,
//! 400 for malformed JSON or a body of the wrong shape).
//!
//! Fields are typed loosely on purpose (`Field`: absent, null, a string or
//! something else), so a wrong field is named in the answer the way the original
//! controller's clients expect (`"value" must be a JSON string`, `item 1 ("k"): …`).

use super::error::ApiError;
use crate::kv::model::{validate_key, BatchItem, ValueType};
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use http_body_util::LengthLimitError;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::fmt;
use std::marker::PhantomData;

/// Largest request body accepted (413 above it).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A JSON body of type `T`, or the API error that says why not.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        json_of(req.into_body()).await.map(JsonBody)
    }
}

/// How long a JSON body may take to arrive whole (1 MiB in a minute is
/// ~17 KiB/s; uploads of app packages have their own path).
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// A whole body of at most [`MAX_BODY_BYTES`], as `T`: what [`JsonBody`]
/// extracts, from the body alone (a PUT reads it so, keeping no request
/// in its future).
pub async fn json_of<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let too_large = || ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("request body is larger than {MAX_BODY_BYTES} bytes"),
    };
    // A Content-Length over the limit is refused before any of the body is
    // asked for (no `100 Continue`, no waiting for bytes that will not be kept).
    if axum::body::HttpBody::size_hint(&body).lower() > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    // A body that keeps moving, a byte now and then, would hold its
    // connection for ever (the stall timeout sees it move): whole in a minute.
    let reading = axum::body::to_bytes(body, MAX_BODY_BYTES);
    let bytes = tokio::time::timeout(BODY_DEADLINE, reading)
        .await
        .map_err(|_| ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            message: format!(
                "the request body did not arrive whole within {} s",
                BODY_DEADLINE.as_secs()
            ),
        })?
        .map_err(|e| {
            let e = e.into_inner();
            if e.downcast_ref::<LengthLimitError>().is_some() {
                too_large()
            } else {
                ApiError::bad_request(format!("failed to buffer the request body: {e}"))
            }
        })?;
    parse(&bytes).map_err(ApiError::bad_request)
}

/// A JSON object as `T` (never an array, which serde would take field by field).
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice::<Object<T>>(bytes)
        .map(|Object(body)| body)
        .map_err(|e| body_error(&e))
}

struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Only(PhantomData)).map(Object)
    }
}

/// Not JSON at all is "malformed JSON: …" with serde's position; JSON of the wrong
/// shape is our own message without it (it names the field instead).
fn body_error(e: &serde_json::Error) -> String {
    if !e.is_data() {
        return format!("malformed JSON: {e}");
    }
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&at).unwrap_or(&text).to_string()
}

/// One field as sent: absent, `null`, a string, or anything else.
#[derive(Debug, Default)]
enum Field {
    #[default]
    Absent,
    Null,
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Field::Text(s),
            Value::Null => Field::Null,
            _ => Field::Other,
        })
    }
}

/// `PUT /v1/kv/{ns}/{key}`: `{"value": "...", "type": "..."}`, `type` string if absent.
#[derive(Debug, Deserialize)]
pub struct ValueBody {
    #[serde(default)]
    value: Field,
    #[serde(default, rename = "type")]
    value_type: Field,
}

impl ValueBody {
    /// The value and its type, checked against each other.
    pub fn checked(self) -> Result<(String, ValueType), String> {
        let value = match self.value {
            Field::Text(s) => s,
            Field::Absent => return Err("missing \"value\"".into()),
            Field::Null | Field::Other => return Err("\"value\" must be a JSON string".into()),
        };
        let ty = match self.value_type {
            Field::Absent | Field::Null => ValueType::String,
            // Go cannot tell `""` from absent: the original stores a string.
            Field::Text(t) if t.is_empty() => ValueType::String,
            Field::Text(t) => t.parse()?,
            Field::Other => return Err("\"type\" must be a JSON string".into()),
        };
        ty.validate(&value)?;
        Ok((value, ty))
    }
}

/// `POST /v1/kv/{ns}/batch`: `{"items": [{"key", "value", "type"}, …]}`.
#[derive(Debug, Deserialize)]
pub struct BatchBody {
    #[serde(default)]
    items: Items,
}

/// `items` as sent: a list (of anything), or not a list.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Items {
    List(Vec<Item>),
    NotList(IgnoredAny),
    #[default]
    #[serde(skip)]
    Absent,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Item {
    Object {
        #[serde(default)]
        key: Field,
        #[serde(flatten)]
        body: ValueBody,
    },
    NotObject(IgnoredAny),
}

impl BatchBody {
    /// The items, each checked; an error names the item by index (and key).
    pub fn checked(self) -> Result<Vec<BatchItem>, String> {
        let items = match self.items {
            Items::List(items) => items,
            Items::NotList(_) => return Err("\"items\" must be an array".into()),
            Items::Absent => return Err("missing \"items\"".into()),
        };
        if items.is_empty() {
            return Err("\"items\" is empty".into());
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let Item::Object {
                    key: Field::Text(key),
                    body,
                } = item
                else {
                    return Err(format!("item {i}: missing or non-string \"key\""));
                };
                validate_key(&key).map_err(|e| format!("item {i}: {e}"))?;
                let (value, value_type) = body
                    .checked()
                    .map_err(|e| format!("item {i} ({key:?}): {e}"))?;
                Ok(BatchItem {
                    key,
                    value,
                    value_type,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that keeps its connection but never ends is answered 408 at
    /// the deadline (time paused: reached at once).
    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_is_a_408_at_the_deadline() {
        use futures_util::StreamExt;
        let first = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"value\""))
        });
        let body = Body::from_stream(first.chain(futures_util::stream::pending()));
        let started = tokio::time::Instant::now();
        let err = json_of::<ValueBody>(body).await.unwrap_err();
        assert_eq!(err.status, StatusCode::REQUEST_TIMEOUT, "{}", err.message);
        assert_eq!(started.elapsed(), BODY_DEADLINE);
    }

    fn value(body: &str) -> Result<(String, ValueType), String> {
        parse::<ValueBody>(body.as_bytes())?.checked()
    }

    fn batch(body: &str) -> Result<Vec<BatchItem>, String> {
        parse::<BatchBody>(body.as_bytes())?.checked()
    }

    #[test]
    fn a_value_body_names_what_is_wrong() {
        assert_eq!(
            value(r#"{"value":"7","type":"int"}"#).unwrap().1,
            ValueType::Int
        );
        assert_eq!(
            value(r#"{"value":"x","type":null}"#).unwrap().1,
            ValueType::String
        );
        // An empty type is the original's default, as an absent one.
        assert_eq!(
            value(r#"{"value":"x","type":""}"#).unwrap().1,
            ValueType::String
        );
        assert_eq!(value(r#"{"type":"int"}"#).unwrap_err(), "missing \"value\"");
        assert_eq!(
            value(r#"{"value":null}"#).unwrap_err(),
            "\"value\" must be a JSON string"
        );
        assert_eq!(
            value(r#"{"value":"1","type":5}"#).unwrap_err(),
            "\"type\" must be a JSON string"
        );
        let not_object = value(r#"["1","int"]"#).unwrap_err();
        assert!(
            not_object.ends_with("expected a JSON object"),
            "{not_object}"
        );
        assert!(!not_object.contains("line"), "{not_object}");
        assert!(value("{not json")
            .unwrap_err()
            .starts_with("malformed JSON: "));
    }

    #[test]
    fn a_batch_names_the_item() {
        let ok =
            batch(r#"{"items":[{"key":"a","value":"1","type":"int"},{"key":"b","value":"x"}]}"#)
                .unwrap();
        assert_eq!(
            ok,
            vec![
                BatchItem::new("a", "1", ValueType::Int),
                BatchItem::new("b", "x", ValueType::String)
            ]
        );
        assert_eq!(batch("{}").unwrap_err(), "missing \"items\"");
        assert!(batch(r#"[[{"key":"a","value":"1"}]]"#).is_err());
        assert_eq!(
            batch(r#"{"items":[["a","1"]]}"#).unwrap_err(),
            "item 0: missing or non-string \"key\""
        );
        assert_eq!(
            batch(r#"{"items":null}"#).unwrap_err(),
            "\"items\" must be an array"
        );
        assert_eq!(batch(r#"{"items":[]}"#).unwrap_err(), "\"items\" is empty");
        assert_eq!(
            batch(r#"{"items":[5]}"#).unwrap_err(),
            "item 0: missing or non-string \"key\""
        );
        assert_eq!(
            batch(r#"{"items":[{"key":"a","value":"1"},{"key":"b","value":"x","type":"int"}]}"#)
                .unwrap_err(),
            "item 1 (\"b\"): value \"x\" is not a 64-bit integer (type int)"
        );
    }
}
