//! Nothing raw from outside reaches a terminal: hostile keys and values in a
//! real controller, a hostile server's reasons, and a worker printing escape
//! sequences, read back through the real `plumdash` binary. Its output may
//! hold no control character but line breaks; they show escaped instead.

use crate::support::{self, http, TestController, Up};
use std::io::{BufRead, BufReader, Read};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A key and a value that would retitle the terminal, clear it, ring it,
/// move the cursor and start a C1 CSI, if printed raw.
const KEY_ESCAPED: &str = "k%1B%5D0%3Bpwned%07%1B%5B2J";
const KEY: &str = "k\x1b]0;pwned\x07\x1b[2J";
const VALUE: &str = "v\x1b]2;title\x07\x1b[H\r\x08\u{9b}31m\x7f";

async fn put_hostile(base: &str) {
    let resp = http()
        .put(format!("{base}/v1/kv/esc/{KEY_ESCAPED}"))
        .json(&serde_json::json!({ "value": VALUE, "type": "string" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// `plumdash kv --controller BASE --namespace esc ARGS…`.
fn kv(base: &str, args: &[&str]) -> Output {
    support::plumdash()
        .args(["kv", "--controller", base, "--namespace", "esc"])
        .args(args)
        .output()
        .unwrap()
}

/// No control character but `\n` anywhere in `bytes` (ESC, BEL, CR, BS, DEL, C1).
fn assert_terminal_safe(what: &str, bytes: &[u8]) -> String {
    for b in [0x1b, 0x07, b'\r', 0x08, 0x7f] {
        assert!(
            !bytes.contains(&b),
            "{what}: raw byte {b:#04x} in {bytes:?}"
        );
    }
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: raw control character in {text:?}"
    );
    text
}

// Multi-threaded: the in-process controller serves while this thread waits
// for the child processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_ls_get_and_watch_show_stored_escapes_escaped() {
    let c = TestController::start().await;
    let base = c.url();
    put_hostile(&base).await;
    let key_shown = r"k\x1b]0;pwned\x07\x1b[2J";
    let value_shown = r"v\x1b]2;title\x07\x1b[H\r\x08\u{9b}31m\x7f";

    let ls = kv(&base, &["ls"]);
    assert!(ls.status.success(), "{ls:?}");
    let text = assert_terminal_safe("kv ls", &ls.stdout);
    assert!(text.contains(key_shown), "{text}");
    // The table shows a preview (40 characters) of the escaped value.
    assert!(text.contains(&value_shown[..30]), "{text}");

    let names = kv(&base, &["ls", "--namespaces"]);
    assert_terminal_safe("kv ls --namespaces", &names.stdout);

    let get = kv(&base, &["get", KEY]);
    assert!(get.status.success(), "{get:?}");
    let text = assert_terminal_safe("kv get", &get.stdout);
    assert_eq!(text, format!("{value_shown}\n"));

    // A missing hostile key: the error quotes it, escaped.
    let missing = kv(&base, &["get", "nope\x1b[2J"]);
    assert!(!missing.status.success());
    assert_terminal_safe("kv get (error)", &missing.stderr);

    // --json stays exact JSON: ESC travels as \u001b.
    let json = kv(&base, &["--json", "get", KEY]);
    let text = assert_terminal_safe("kv get --json", &json.stdout);
    assert!(text.contains(r"\u001b]0;pwned\u0007"), "{text}");
    let entry: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(entry["value"], VALUE);

    // kv watch: a hostile write arriving live.
    let mut watch = support::plumdash()
        .args(["kv", "--controller", &base, "--namespace", "esc", "watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(watch.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || loop {
        let mut line = Vec::new();
        match stdout.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if tx.send(line).is_err() {
                    return;
                }
            }
        }
    });
    let next_line = |what: &str| {
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("kv watch printed no {what}"))
    };
    let mut seen = Vec::new();
    loop {
        let line = next_line("snapshot");
        seen.extend_from_slice(&line);
        if String::from_utf8_lossy(&line).contains(" keys") {
            break;
        }
    }
    put_hostile(&base).await;
    loop {
        let line = next_line("put");
        seen.extend_from_slice(&line);
        if String::from_utf8_lossy(&line).contains("put ") {
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let text = assert_terminal_safe("kv watch", &seen);
    assert!(
        text.contains(key_shown) && text.contains(r"\x1b]2;title"),
        "{text}"
    );
}

/// A hostile server's error reason is quoted escaped.
#[tokio::test]
async fn a_servers_reason_is_quoted_escaped() {
    use axum::response::IntoResponse;
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": "no\x1b]0;pwned\x07\x1b[2J\u{9b}H" })),
        )
            .into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let out = tokio::task::spawn_blocking(move || kv(&base, &["get", "k"]))
        .await
        .unwrap();
    assert!(!out.status.success());
    let text = assert_terminal_safe("kv get (rejected)", &out.stderr);
    assert!(text.contains(r"no\x1b]0;pwned\x07\x1b[2J\u{9b}H"), "{text}");
}

/// `up --headless` with a worker that prints escapes and fails: its last words
/// are printed, escaped.
#[test]
fn headless_up_prints_a_workers_escapes_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("evil.sh");
    std::fs::write(
        &script,
        "printf '\\033[31mred\\033[0m\\n'\n\
         printf 'boom \\033]0;pwned\\007\\033[2J\\r\\302\\2331m gone\\n'\n\
         exit 3\n",
    )
    .unwrap();
    let mut up = Up::builder()
        .args(["--restart", "never", "--cmd"])
        .args([format!("sh {}", script.display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut stdout = BufReader::new(up.child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let (tx, rx) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut line = Vec::new();
        while stdout.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if String::from_utf8_lossy(&line).contains("last output") {
                let _ = tx.send(());
            }
            seen.append(&mut line);
        }
        let _ = stdout.read_to_end(&mut seen);
        seen
    });
    let printed = rx.recv_timeout(Duration::from_secs(30)).is_ok();
    // Dropped: SIGINT, and its end.
    drop(up);
    let seen = reader.join().unwrap();
    assert!(
        printed,
        "no last output line: {}",
        String::from_utf8_lossy(&seen)
    );
    let text = assert_terminal_safe("up --headless", &seen);
    assert!(
        text.contains(r"boom \x1b]0;pwned\x07\x1b[2J\r\u{9b}1m gone"),
        "{text}"
    );
}

/// kv-demo prints every key of its namespace when its task completes: a
/// hostile key and value come out escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_demo_prints_stored_escapes_escaped() {
    let c = TestController::start().await;
    let base = c.url();
    put_hostile(&base).await;
    let out = tokio::task::spawn_blocking(move || {
        support::kv_demo(&base, "esc", "20")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = assert_terminal_safe("kv-demo", &out.stdout);
    assert!(
        text.contains(r"k\x1b]0;pwned\x07\x1b[2J = v\x1b]2;title"),
        "{text}"
    );
}
