//! Wire types of the Plum KV API and the validation rules the controller
//! enforces (the original controller accepted anything; we do not).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The header a worker names itself with (its `PLUM_INSTANCE_ID`), so the
/// controller can refuse writes from an instance a failover replaced.
pub const INSTANCE_HEADER: &str = "x-plum-instance";
/// How the reason of that refusal (a 409) begins.
pub const FENCED: &str = "fenced";
/// The header a client names its process with (`X-Plum-Writer: <pid>`), so the
/// controller can tell which process made each write (plumdash's SDK sends it).
pub const WRITER_HEADER: &str = "x-plum-writer";
/// Most pids a [`Writer`] names (the writer and its parents).
pub const WRITER_CHAIN_MAX: usize = 16;

/// Longest namespace or key accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// How often the controller's change stream carries a keep-alive comment while
/// nothing changes; a watcher takes a stream silent for a few of these as dead.
pub const STREAM_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// How a value string is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    #[default]
    String,
    Int,
    Double,
    Bool,
    Bytes,
}

impl ValueType {
    pub const ALL: [ValueType; 5] = [
        ValueType::String,
        ValueType::Int,
        ValueType::Double,
        ValueType::Bool,
        ValueType::Bytes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Int => "int",
            ValueType::Double => "double",
            ValueType::Bool => "bool",
            ValueType::Bytes => "bytes",
        }
    }

    /// Checks that `value` is written exactly as this type is; the error is a
    /// one-line reason. Strict, so every reader (this SDK, the original C++
    /// one, a script) reads the same thing:
    /// - `int`: an optional `-` or `+`, then ASCII digits, within i64 — no
    ///   whitespace of any kind, no `_`, nothing before or after;
    /// - `double`: finite decimal or exponent notation (`15.707950`, `-1e-3`,
    ///   `.5`) — no `inf`, `NaN`, `infinity`, no whitespace, nothing that
    ///   overflows to infinity;
    /// - `bool`: exactly `true` or `false`;
    /// - `bytes`: standard base64 with canonical padding, no whitespace or
    ///   line breaks.
    pub fn validate(self, value: &str) -> Result<(), String> {
        let ok = match self {
            ValueType::String => true,
            ValueType::Int => {
                let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
                !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && value.parse::<i64>().is_ok()
            }
            // Only digits, signs, `.` and `e` can appear: that rules out the
            // words f64's parser also takes (inf, infinity, nan); the parser
            // then checks the grammar.
            ValueType::Double => {
                value
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
                    && value.parse::<f64>().is_ok_and(f64::is_finite)
            }
            ValueType::Bool => matches!(value, "true" | "false"),
            ValueType::Bytes => base64::engine::general_purpose::STANDARD
                .decode(value)
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            let want = match self {
                ValueType::Int => "a 64-bit integer",
                ValueType::Double => "a finite number",
                ValueType::Bool => "true or false",
                ValueType::Bytes => "standard base64",
                ValueType::String => "a string",
            };
            Err(format!(
                "value {:?} is not {want} (type {})",
                preview(value),
                self.as_str()
            ))
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ValueType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ValueType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown type {s:?} (expected string, int, double, bool or bytes)")
            })
    }
}

/// One stored key, as `GET /v1/kv/{ns}/{key}` and the list endpoint return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub namespace: String,
    pub key: String,
    pub value: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// Unix seconds of the last write (whole seconds, as the original sends).
    #[serde(rename = "updatedAt", default)]
    pub updated_at: i64,
    /// Unix milliseconds of the last write: plumdash's controller adds it
    /// (`updatedAtMs`), the original does not (`None`). The same instant as
    /// `updated_at`, which is it floored to the second.
    #[serde(
        rename = "updatedAtMs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at_ms: Option<i64>,
    /// Who made this change: only on plumdash's change stream, and only when
    /// the controller could tell (`None` in reads and from the original).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<Writer>,
}

/// The process that made a change, as plumdash's controller learned it: the
/// writing process first, then its parents (the worker a `curl` runs under),
/// up to but not including the controller's own process.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Writer {
    pub pids: Vec<u32>,
    pub via: WriterVia,
}

/// How the controller learned a [`Writer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterVia {
    /// The client named its process (`X-Plum-Writer`, plumdash's SDK).
    Header,
    /// Its loopback connection was traced to the process holding it (`/proc`).
    Socket,
}

impl Writer {
    /// The writer as received: at most [`WRITER_CHAIN_MAX`] pids, so a
    /// controller cannot make a reader walk a list of any length.
    pub fn bounded(mut self) -> Writer {
        self.pids.truncate(WRITER_CHAIN_MAX);
        self
    }

    /// True when `pid` made the change or is a parent of the process that did.
    pub fn includes(&self, pid: u32) -> bool {
        self.pids.contains(&pid)
    }

    /// The process that made the change.
    pub fn pid(&self) -> Option<u32> {
        self.pids.first().copied()
    }
}

impl Entry {
    /// String entries of namespace `ns`, for unit tests.
    #[cfg(test)]
    pub fn strings(ns: &str, pairs: &[(&str, &str)]) -> Vec<Entry> {
        pairs
            .iter()
            .map(|(k, v)| Entry {
                namespace: ns.into(),
                key: k.to_string(),
                value: v.to_string(),
                value_type: ValueType::String,
                updated_at: 0,
                updated_at_ms: None,
                writer: None,
            })
            .collect()
    }

    /// The value decoded as bytes, when it is a `bytes` entry holding valid base64.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        (self.value_type == ValueType::Bytes)
            .then(|| {
                base64::engine::general_purpose::STANDARD
                    .decode(&self.value)
                    .ok()
            })
            .flatten()
    }
}

/// An entry a controller sent that does not read as one (a value that is not
/// a string, a `null` field, a time out of range): shown as such, never
/// taken for absent or for a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// Its key, when at least that reads.
    pub key: Option<String>,
    /// Why, on one line.
    pub reason: String,
}

impl Unreadable {
    /// The key as shown: `(no key)` when it had none.
    pub fn key_text(&self) -> &str {
        self.key.as_deref().unwrap_or("(no key)")
    }
}

/// One item of a listing or a change, read against the namespace asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRead {
    Entry(Entry),
    /// It names another namespace: not this subscription's.
    Foreign(String),
    Unreadable(Unreadable),
}

/// Reads one JSON item as an entry of `namespace`. A missing or empty
/// `namespace` field is taken as this one (the original leaves it out).
pub fn read_entry(mut item: serde_json::Value, namespace: &str) -> EntryRead {
    let key = item.get("key").and_then(|k| k.as_str()).map(str::to_string);
    let unreadable = |reason: String| {
        EntryRead::Unreadable(Unreadable {
            key: key.clone(),
            reason,
        })
    };
    let Some(fields) = item.as_object_mut() else {
        return unreadable("not a JSON object".into());
    };
    match fields.get("namespace") {
        None => {
            fields.insert("namespace".into(), namespace.into());
        }
        Some(serde_json::Value::String(ns)) if ns.is_empty() => {
            fields.insert("namespace".into(), namespace.into());
        }
        Some(serde_json::Value::String(ns)) if ns != namespace => {
            return EntryRead::Foreign(ns.clone());
        }
        _ => {}
    }
    let entry = match serde_json::from_value::<Entry>(item) {
        Ok(entry) => entry,
        Err(e) => return unreadable(e.to_string()),
    };
    if let Err(reason) = validate_key(&entry.key) {
        return unreadable(reason);
    }
    EntryRead::Entry(entry)
}

/// A namespace's listing (or a stream's snapshot), each item read on its own:
/// one malformed entry does not hide the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub unreadable: Vec<Unreadable>,
    /// Items naming another namespace, left out.
    pub foreign: usize,
}

impl Listing {
    pub fn read(items: Vec<serde_json::Value>, namespace: &str) -> Listing {
        let mut listing = Listing::default();
        for item in items {
            match read_entry(item, namespace) {
                EntryRead::Entry(e) => listing.entries.push(e),
                EntryRead::Foreign(_) => listing.foreign += 1,
                EntryRead::Unreadable(u) => listing.unreadable.push(u),
            }
        }
        listing
    }
}

/// One item of `POST /v1/kv/{ns}/batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    pub key: String,
    pub value: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
}

impl BatchItem {
    pub fn new(key: impl Into<String>, value: impl Into<String>, value_type: ValueType) -> Self {
        BatchItem {
            key: key.into(),
            value: value.into(),
            value_type,
        }
    }
}

/// Which namespace an instance of an app keeps its state in (the seed's
/// 方案A and 方案B): the app's, shared by all its instances (active and
/// standby, a task that survives a move to another instance), or its own,
/// named by its `PLUM_INSTANCE_ID` (independent instances).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NamespaceBy {
    #[default]
    App,
    Instance,
}

impl NamespaceBy {
    /// The namespace instance `instance` of app `app` keeps its task in.
    pub fn namespace<'a>(self, app: &'a str, instance: &'a str) -> &'a str {
        match self {
            NamespaceBy::App => app,
            NamespaceBy::Instance => instance,
        }
    }
}

/// Checks a namespace: non-empty, at most 256 bytes, no `/`.
pub fn validate_namespace(ns: &str) -> Result<(), String> {
    if ns.contains('/') {
        return Err(format!("namespace {:?} must not contain '/'", preview(ns)));
    }
    validate_name("namespace", ns)
}

/// Checks a key: non-empty, at most 256 bytes (`/` and `.` are allowed).
pub fn validate_key(key: &str) -> Result<(), String> {
    validate_name("key", key)
}

fn validate_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err(format!("{what} must not be empty"))
    } else if name.len() > MAX_NAME_BYTES {
        Err(format!(
            "{what} is {} bytes long (at most {MAX_NAME_BYTES})",
            name.len()
        ))
    } else {
        Ok(())
    }
}

/// A short, single-line rendering of a possibly long value for messages.
pub fn preview(s: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_reject_unknown() {
        for t in ValueType::ALL {
            assert_eq!(t.as_str().parse::<ValueType>(), Ok(t));
        }
        assert!("float".parse::<ValueType>().is_err());
    }

    #[test]
    fn values_are_checked_against_their_type() {
        assert!(ValueType::Int.validate("-42").is_ok());
        assert!(ValueType::Int.validate("4.2").is_err());
        assert!(ValueType::Double.validate("15.707950").is_ok());
        assert!(ValueType::Double.validate("NaN").is_err());
        assert!(ValueType::Bool.validate("true").is_ok());
        assert!(ValueType::Bool.validate("yes").is_err());
        assert!(ValueType::Bytes.validate("AAEC").is_ok());
        assert!(ValueType::Bytes.validate("not base64!").is_err());
        assert!(ValueType::String.validate("").is_ok());
    }

    #[test]
    fn values_must_be_written_exactly_as_their_type() {
        for good in [
            "0",
            "-42",
            "+7",
            "007",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert!(ValueType::Int.validate(good).is_ok(), "{good:?}");
        }
        for bad in [
            " 42 ",
            "42 ",
            " 42",
            "\u{a0}1",
            "1\n",
            "\t1",
            "1_000",
            "",
            "-",
            "+",
            "--1",
            "+-1",
            "0x10",
            "1e3",
            "١٢",
            "9223372036854775808",
            "4.0",
        ] {
            let err = ValueType::Int.validate(bad).unwrap_err();
            assert!(err.contains("(type int)"), "{bad:?}: {err}");
        }
        for good in ["15.707950", "-1", "+2.5", "1e-3", "1E10", ".5", "5.", "0"] {
            assert!(ValueType::Double.validate(good).is_ok(), "{good:?}");
        }
        for bad in [
            "inf", "-inf", "Infinity", "NaN", "nan", "1e999", " 1.5", "1.5 ", "\u{a0}1", "1_0.5",
            "", ".", "e5", "1e", "0x1p3", "1.5f", "1,5",
        ] {
            let err = ValueType::Double.validate(bad).unwrap_err();
            assert!(err.contains("(type double)"), "{bad:?}: {err}");
        }
        for bad in ["True", "TRUE", " true", "false\n", "1", "0", ""] {
            assert!(ValueType::Bool.validate(bad).is_err(), "{bad:?}");
        }
        for good in ["", "AAEC", "AAECAw==", "AAECAwQ="] {
            assert!(ValueType::Bytes.validate(good).is_ok(), "{good:?}");
        }
        for bad in [
            "AAEC\n",
            "AA EC",
            " AAEC",
            "AAECAw",
            "AAECAw=",
            "AAF=",
            "AAEC-_",
            "AAECAw==\r\n",
        ] {
            let err = ValueType::Bytes.validate(bad).unwrap_err();
            assert!(err.contains("(type bytes)"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn each_entry_of_a_listing_is_read_on_its_own() {
        let items: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"key":"task.progress","value":"50","type":"int","updatedAt":1},
                {"key":"a","value":50,"type":"int"},
                {"key":"b","value":"x","type":null},
                {"key":"c","value":"x","type":"string","updatedAtMs":1e30},
                {"namespace":"other-app","key":"d","value":"x","type":"string"},
                {"namespace":"","key":"e","value":"x","type":"string"},
                {"value":"x","type":"string"},
                7]"#,
        )
        .unwrap();
        let listing = Listing::read(items, "hx");
        let keys: Vec<&str> = listing.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["task.progress", "e"]);
        assert!(listing.entries.iter().all(|e| e.namespace == "hx"));
        assert_eq!(listing.foreign, 1);
        let bad: Vec<&str> = listing.unreadable.iter().map(|u| u.key_text()).collect();
        assert_eq!(bad, ["a", "b", "c", "(no key)", "(no key)"]);
        assert!(
            listing.unreadable[0].reason.contains("integer"),
            "{:?}",
            listing.unreadable[0]
        );
    }

    #[test]
    fn names_are_bounded() {
        assert!(validate_namespace("kv-demo").is_ok());
        assert!(validate_namespace("a/b").is_err());
        assert!(validate_namespace("").is_err());
        assert!(validate_key("a/b.c").is_ok());
        assert!(validate_key(&"k".repeat(256)).is_ok());
        assert!(validate_key(&"k".repeat(257)).is_err());
    }
}
