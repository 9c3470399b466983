//! Programs some tests drive that a bare Debian with rustup lacks. A test that
//! needs one starts with `if !support::need(&["tmux"]) { return; }`: when the
//! program is missing the test says so in one line on stderr (written past
//! cargo's capture) and passes without running, and the run ends with a summary
//! of what was skipped and what to install. With `PLUMDASH_REQUIRE_TOOLS=1`
//! (as `.ci/run` sets) a missing program fails the test instead.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, Once};

/// Every program a test may `need`, with the Debian package that has it.
const TOOLS: &[(&str, &str)] = &[
    ("asciinema", "asciinema"),
    ("chromium", "chromium"),
    ("curl", "curl"),
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("pgrep", "procps"),
    ("pkill", "procps"),
    ("prlimit", "util-linux"),
    ("setpriv", "util-linux"),
    ("tmux", "tmux"),
    ("unshare", "util-linux"),
    ("xmllint", "libxml2-utils"),
];

/// The tests skipped so far, each with the programs it lacked.
static SKIPPED: Mutex<Vec<(String, Vec<&'static str>)>> = Mutex::new(Vec::new());

/// True when every program of `tools` is on `PATH`. Otherwise the calling test
/// is skipped: one line on stderr and `false` (the test returns), or, with
/// `PLUMDASH_REQUIRE_TOOLS=1`, a panic with that line.
pub fn need(tools: &[&str]) -> bool {
    let missing: Vec<&'static str> = tools
        .iter()
        .map(|tool| known(tool))
        .filter(|tool| !on_path(tool))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("a test")
        .to_string();
    let line = format!(
        "skipped {test}: needs {} (apt-get install {})",
        missing.join(", "),
        packages(&missing).join(" ")
    );
    if std::env::var_os("PLUMDASH_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!("{line}");
    }
    // Not `eprintln!`: libtest captures that and shows it only for a failure.
    let _ = writeln!(std::io::stderr(), "{line}");
    lock().push((test, missing));
    super::at_exit();
    false
}

/// True when test hosts can be made here (`plumdash::hosts`: `ip`, `nft`,
/// `unshare`, and the right to make namespaces, i.e. root). Otherwise the
/// test is skipped with one line, or fails under `PLUMDASH_REQUIRE_TOOLS=1`.
pub fn need_hosts() -> bool {
    if !need(&["ip", "nft", "unshare"]) {
        return false;
    }
    let Err(e) = plumdash::hosts::TestHosts::create(&["probe"]) else {
        return true;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let line = format!("skipped {test}: cannot make network namespaces here (root?): {e:#}");
    if std::env::var_os("PLUMDASH_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
        panic!("{line}");
    }
    let _ = writeln!(std::io::stderr(), "{line}");
    false
}

/// The summary printed when the test binary exits (nothing when nothing was skipped).
pub(super) fn summary() -> Option<String> {
    let skipped = lock();
    if skipped.is_empty() {
        return None;
    }
    let mut text = format!(
        "\n{} test(s) skipped for programs this machine lacks \
         (PLUMDASH_REQUIRE_TOOLS=1 fails them instead):\n",
        skipped.len()
    );
    let mut all: Vec<&str> = Vec::new();
    for (tool, _) in TOOLS {
        let tests: Vec<&str> = skipped
            .iter()
            .filter(|(_, missing)| missing.contains(tool))
            .map(|(test, _)| test.as_str())
            .collect();
        if !tests.is_empty() {
            all.push(tool);
            text += &format!("  {tool}: {}\n", tests.join(", "));
        }
    }
    text += &format!(
        "to run them: sudo apt-get install {}\n",
        packages(&all).join(" ")
    );
    Some(text)
}

/// Prints the summary once, however many times it is asked (at exit).
pub(super) fn print_summary() {
    static PRINTED: Once = Once::new();
    PRINTED.call_once(|| {
        if let Some(text) = summary() {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    });
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(String, Vec<&'static str>)>> {
    SKIPPED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `tool` as listed in `TOOLS` (a test may only need a program listed there,
/// so that the summary can say which package has it).
fn known(tool: &str) -> &'static str {
    TOOLS
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(name, _)| *name)
        .unwrap_or_else(|| panic!("{tool} is not in support::tools::TOOLS"))
}

/// The packages of `tools`, each once, in `TOOLS` order.
fn packages(tools: &[&str]) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for (tool, package) in TOOLS {
        if tools.contains(tool) && !packages.contains(package) {
            packages.push(package);
        }
    }
    packages
}

/// An executable file named `tool` in a folder of `PATH`.
fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let file = Path::new(&dir).join(tool);
        std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}
