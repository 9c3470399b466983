//! One change stream for many namespaces (`POST /v1/stream`, `POST
//! /v1/stream/{id}`): filtered at the controller, namespaces added on the same
//! connection; the SDK's set feed on it, and its batched polling against a
//! controller without it (the original).

use crate::support::original::OriginalController;
use crate::support::TestController;
use plumdash::kv::sse::{SseDecoder, SseEvent};
use plumdash::kv::{DistributedMemory, FeedMode, FeedStatus, WatchEvent, WatchOptions};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio_stream::StreamExt;

/// A raw event stream, read event by event.
struct Events {
    resp: reqwest::Response,
    decoder: SseDecoder,
    ready: VecDeque<SseEvent>,
}

impl Events {
    fn new(resp: reqwest::Response) -> Events {
        Events {
            resp,
            decoder: SseDecoder::new(1 << 20, 1 << 20),
            ready: VecDeque::new(),
        }
    }

    /// The next event, within 10 s.
    async fn next(&mut self) -> (String, Option<u64>, Value) {
        loop {
            if let Some(e) = self.ready.pop_front() {
                let id = e.id.as_deref().and_then(|i| i.parse().ok());
                return (e.event, id, serde_json::from_str(&e.data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream open");
            let mut out = Vec::new();
            self.decoder.push(&chunk, &mut out).unwrap();
            self.ready.extend(out);
        }
    }
}

fn client(ns: &str, url: &str) -> DistributedMemory {
    DistributedMemory::create(ns, url).unwrap()
}

#[tokio::test]
async fn a_set_stream_carries_only_its_namespaces_and_takes_more_on_the_same_connection() {
    let c = TestController::start().await;
    let url = c.url();
    client("a", &url).put("before", "1").await.unwrap();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{url}/v1/stream"))
        .json(&json!({ "namespaces": ["a", "b"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut events = Events::new(resp);
    let (kind, _, data) = events.next().await;
    assert_eq!(kind, "subscribed");
    let id = data["id"].as_str().unwrap().to_string();
    let mut snapshots = BTreeMap::new();
    for _ in 0..2 {
        let (kind, seq, data) = events.next().await;
        assert_eq!(kind, "ns-snapshot", "{data}");
        assert_eq!(seq, Some(1), "as of the one write so far");
        let entries = data["entries"].as_array().unwrap().len();
        snapshots.insert(data["namespace"].as_str().unwrap().to_string(), entries);
    }
    assert_eq!(
        snapshots,
        BTreeMap::from([("a".into(), 1), ("b".into(), 0)])
    );

    // c's writes never travel: the next events are a's and b's.
    for ns in ["c", "a", "c", "b", "c"] {
        client(ns, &url).put("k", ns).await.unwrap();
    }
    let mut last = 1;
    for want in ["a", "b"] {
        let (kind, seq, data) = events.next().await;
        assert_eq!(
            (kind.as_str(), data["namespace"].as_str()),
            ("kv", Some(want))
        );
        assert_eq!(data["value"], want);
        let seq = seq.expect("a change number");
        assert!(seq > last, "{seq} after {last}");
        last = seq;
    }

    // c joins the same stream: its snapshot first, then its changes.
    let added = http
        .post(format!("{url}/v1/stream/{id}"))
        .json(&json!({ "namespaces": ["c"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let (kind, seq, data) = events.next().await;
    assert_eq!(
        (kind.as_str(), data["namespace"].as_str()),
        ("ns-snapshot", Some("c"))
    );
    assert_eq!(data["entries"][0]["value"], "c");
    assert_eq!(seq, Some(6), "as of every write so far");
    client("c", &url).put("k2", "x").await.unwrap();
    let (kind, seq, data) = events.next().await;
    assert_eq!(
        (kind.as_str(), data["namespace"].as_str()),
        ("kv", Some("c"))
    );
    assert_eq!(seq, Some(7));

    // A prefix names every namespace that starts with it, later ones too.
    client("p-1", &url).put("k", "1").await.unwrap();
    let resp = http
        .post(format!("{url}/v1/stream"))
        .json(&json!({ "prefixes": ["p-"] }))
        .send()
        .await
        .unwrap();
    let mut by_prefix = Events::new(resp);
    assert_eq!(by_prefix.next().await.0, "subscribed");
    let (kind, _, data) = by_prefix.next().await;
    assert_eq!(
        (kind.as_str(), data["namespace"].as_str()),
        ("ns-snapshot", Some("p-1"))
    );
    client("q-1", &url).put("k", "1").await.unwrap();
    client("p-2", &url).put("k", "2").await.unwrap();
    let (kind, _, data) = by_prefix.next().await;
    assert_eq!(
        (kind.as_str(), data["namespace"].as_str()),
        ("kv", Some("p-2"))
    );

    // No such stream; a bad namespace.
    let gone = http
        .post(format!("{url}/v1/stream/00000000000000ff"))
        .json(&json!({ "namespaces": ["d"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let bad = http
        .post(format!("{url}/v1/stream"))
        .json(&json!({ "namespaces": ["a/b"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// What the set feed told, by namespace, as short strings.
fn describe(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Status(FeedStatus::Streaming) => "streaming".into(),
        WatchEvent::Status(FeedStatus::Polling(_)) => "polling".into(),
        WatchEvent::Status(other) => format!("{other:?}"),
        WatchEvent::Snapshot(entries) => format!("snapshot {}", entries.len()),
        WatchEvent::Put(e) => format!("put {}={}", e.key, e.value),
        WatchEvent::Batch(es) => format!("batch {}", es.len()),
        WatchEvent::Deleted { key, .. } => format!("del {key}"),
        WatchEvent::Trouble(t) => format!("trouble {t:?}"),
    }
}

/// Reads the set feed until `want` holds for what each namespace was told.
async fn told_until(
    feed: &mut plumdash::kv::SetWatcher,
    told: &mut BTreeMap<String, Vec<String>>,
    want: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !want(told) {
        let (ns, event) = tokio::time::timeout_at(deadline, feed.next())
            .await
            .unwrap_or_else(|_| panic!("timed out; told {told:?}"))
            .expect("the feed runs");
        told.entry(ns).or_default().push(describe(&event));
    }
}

fn has(told: &BTreeMap<String, Vec<String>>, ns: &str, what: &str) -> bool {
    told.get(ns).is_some_and(|t| t.iter().any(|d| d == what))
}

#[tokio::test]
async fn the_set_feed_streams_its_namespaces_adds_one_and_resyncs_one() {
    let c = TestController::start().await;
    let url = c.url();
    client("a", &url).put("k", "0").await.unwrap();
    let mut feed = client("a", &url).subscribe_set(
        ["a".to_string(), "b".to_string()],
        WatchOptions {
            mode: FeedMode::Stream,
            ..WatchOptions::default()
        },
    );
    let mut told = BTreeMap::new();
    told_until(&mut feed, &mut told, |t| {
        has(t, "a", "snapshot 1") && has(t, "b", "snapshot 0")
    })
    .await;
    assert_eq!(told["a"][0], "streaming");
    for ns in ["a", "c", "b"] {
        client(ns, &url).put("k", ns).await.unwrap();
    }
    told_until(&mut feed, &mut told, |t| {
        has(t, "a", "put k=a") && has(t, "b", "put k=b")
    })
    .await;

    assert!(feed.add("c"));
    assert!(!feed.add("c"), "watched already");
    told_until(&mut feed, &mut told, |t| has(t, "c", "snapshot 1")).await;
    client("c", &url).put("k2", "2").await.unwrap();
    told_until(&mut feed, &mut told, |t| has(t, "c", "put k2=2")).await;
    assert_eq!(
        told["c"],
        vec!["streaming", "snapshot 1", "put k2=2"],
        "c's write before it joined is in its snapshot, not told again"
    );

    feed.resync("b");
    told_until(&mut feed, &mut told, |t| {
        t["b"].iter().filter(|d| *d == "snapshot 1").count() == 1
    })
    .await;
    assert_eq!(feed.len(), 3);
    assert!(!told.contains_key("d"));
}

/// Against the original (no stream): each namespace is read once per
/// interval, a few at a time, and its changes told as they are found.
#[tokio::test(flavor = "multi_thread")]
async fn against_the_original_the_set_feed_polls_each_namespace_once_per_interval() {
    let original = OriginalController::start();
    let url = original.url();
    let names: Vec<String> = (1..=12).map(|i| format!("ns-{i:02}")).collect();
    for ns in &names {
        client(ns, &url).put("k", "0").await.unwrap();
    }
    let interval = Duration::from_millis(200);
    let mut feed = client("ns-01", &url).subscribe_set(
        names.clone(),
        WatchOptions {
            poll_interval: interval,
            ..WatchOptions::default()
        },
    );
    let mut told = BTreeMap::new();
    told_until(&mut feed, &mut told, |t| {
        names
            .iter()
            .all(|ns| has(t, ns, "polling") && has(t, ns, "snapshot 1"))
    })
    .await;
    client("ns-07", &url).put("k", "7").await.unwrap();
    told_until(&mut feed, &mut told, |t| has(t, "ns-07", "put k=7")).await;
    assert!(feed.add("ns-13"));
    client("ns-13", &url).put("k", "13").await.unwrap();
    told_until(&mut feed, &mut told, |t| has(t, "ns-13", "snapshot 1")).await;

    // Reads in rounds: a stream tried once, then every namespace once a round.
    let start = std::time::Instant::now();
    let before = original.requests();
    tokio::time::sleep(interval * 5).await;
    let elapsed = start.elapsed();
    let after = original.requests();
    let round: Vec<&String> = after[before.len()..]
        .iter()
        .filter(|r| r.starts_with("GET /v1/kv/"))
        .collect();
    let reads = |ns: &str| {
        round
            .iter()
            .filter(|r| r.ends_with(&format!("/{ns}")))
            .count()
    };
    let rounds = elapsed.as_secs_f64() / interval.as_secs_f64();
    for ns in names.iter().map(String::as_str).chain(["ns-13"]) {
        let n = reads(ns) as f64;
        assert!(
            n >= 1.0 && n <= rounds + 1.0,
            "{ns}: {n} reads in {rounds:.1} intervals: {round:?}"
        );
    }
    assert_eq!(
        after
            .iter()
            .filter(|r| r.as_str() == "POST /v1/stream")
            .count(),
        1,
        "the set stream is asked for once, then polling: {after:?}"
    );
}

/// Too many names in one subscription is the client's mistake: a 400 that
/// says the limit, not a 500.
#[tokio::test]
async fn a_subscription_over_the_limit_is_a_400() {
    let c = TestController::start().await;
    let names: Vec<String> = (0..10_001).map(|n| format!("ns{n}")).collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/stream", c.url()))
        .json(&json!({ "namespaces": names }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"],
        "a subscription names at most 10000 namespaces and prefixes"
    );
}
