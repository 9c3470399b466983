//! `plumdash completions` and `plumdash man`: generated from the clap
//! definitions; the bash script is checked by bash itself and then asked to
//! complete, the man pages are read for the subcommands and options.

use crate::support;
use std::process::Command;

fn plumdash(args: &[&str]) -> String {
    let out = support::plumdash()
        .args(args)
        .output()
        .expect("running plumdash");
    assert!(
        out.status.success(),
        "plumdash {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn bash_completion_parses_and_completes_subcommands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plumdash.bash");
    std::fs::write(&script, plumdash(&["completions", "bash"])).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Ask it, as bash's completion would, for `plumdash ver<TAB>` and
    // `plumdash verify --ju<TAB>`.
    let complete = |words: &str| {
        let probe = format!(
            ". {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _plumdash plumdash \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let subcommands = complete("plumdash ver");
    assert_eq!(subcommands.trim(), "verify", "{subcommands}");
    let options = complete("plumdash verify --ju");
    assert_eq!(options.trim(), "--junit", "{options}");
}

#[test]
fn zsh_and_fish_completions_know_the_subcommands() {
    let zsh = plumdash(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef plumdash"), "{}", &zsh[..80]);
    let fish = plumdash(&["completions", "fish"]);
    for sub in ["up", "tour", "verify", "ctl", "kv", "attach"] {
        assert!(zsh.contains(&format!("'{sub}:")), "zsh lacks {sub}");
        assert!(fish.contains(&format!("-a \"{sub}\"")), "fish lacks {sub}");
    }
}

#[test]
fn the_man_page_lists_every_subcommand_and_dir_writes_one_page_each() {
    let page = plumdash(&["man"]);
    assert!(page.contains(".TH plumdash 1"), "{}", &page[..200]);
    let section = page
        .split(".SH SUBCOMMANDS")
        .nth(1)
        .expect("a SUBCOMMANDS section");
    for sub in [
        "up",
        "tour",
        "kv\\-demo",
        "controller",
        "attach",
        "kv",
        "verify",
        "ctl",
    ] {
        assert!(
            section.contains(&format!("plumdash\\-{sub}(1)")),
            "man page lacks {sub}"
        );
    }
    let top = tempfile::tempdir().unwrap();
    // A folder not made yet is made.
    let dir = top.path().join("share/man/man1");
    plumdash(&["man", "--dir", dir.to_str().unwrap()]);
    let verify = std::fs::read_to_string(dir.join("plumdash-verify.1")).unwrap();
    assert!(
        verify.contains("\\-\\-junit"),
        "plumdash-verify.1 lacks --junit"
    );
    assert!(dir.join("plumdash.1").exists());
}
