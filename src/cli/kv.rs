//! `plumdash kv ls|get|put|rm|watch`: a small CLI over the SDK.
//! Human output by default, `--json` for scripts. Human output shows control
//! characters escaped (`\x1b`, `\r`, …): nothing stored reaches the terminal
//! raw. `--json` is JSON with every control character escaped (ESC is
//! `\u001b`, and DEL and C1, which serde_json leaves raw, too).

use super::auth::AuthArgs;
use crate::kv::display::{age, display_key, display_value, trouble_counts};
use crate::kv::model::preview;
use crate::kv::{ClientOptions, DEFAULT_CONTROLLER_BASE};
use crate::kv::{
    DistributedMemory, FeedStatus, KvError, Listing, ValueType, WatchEvent, WatchOptions,
};
use crate::text_safety::{escape_controls, escape_json_controls};
use anyhow::{bail, Result};
use clap::Args;
use std::io::Write;

#[derive(Args)]
// `plumdash kv get KEY --token T`: the token flags after the subcommand too.
#[command(mut_arg("token", |a| a.global(true)), mut_arg("token_file", |a| a.global(true)))]
pub struct KvArgs {
    /// Controller base URL.
    #[arg(long, env = "CONTROLLER_BASE", default_value = DEFAULT_CONTROLLER_BASE, global = true, value_parser = super::controller_url)]
    controller: String,
    /// Namespace (the worker uses its app name).
    #[arg(
        short,
        long,
        env = "PLUM_APP_NAME",
        default_value = "kv-demo",
        global = true
    )]
    namespace: String,
    /// Print JSON instead of a human table.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: KvCommand,
}

pub async fn run(args: KvArgs) -> Result<()> {
    let dm = DistributedMemory::with_options(
        &args.namespace,
        &args.controller,
        ClientOptions {
            token: args.auth.token()?,
            ..ClientOptions::default()
        },
    )?;
    run_command(&dm, args.command, args.json).await
}

/// The `kv` subcommands, parsed by clap straight into what `run` takes.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KvCommand {
    /// List the namespace's keys (or, with --namespaces, every namespace).
    #[command(name = "ls")]
    List {
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// List namespaces instead of keys.
        #[arg(long)]
        namespaces: bool,
    },
    /// Print one key's value (exit 1 if absent).
    Get { key: String },
    /// Write one key.
    Put {
        key: String,
        value: String,
        /// string, int, double, bool or bytes (base64).
        #[arg(short = 't', long = "type", default_value = "string")]
        value_type: ValueType,
    },
    /// Delete one key.
    #[command(name = "rm")]
    Remove { key: String },
    /// Print every change to the namespace as it happens.
    Watch,
}

async fn run_command(dm: &DistributedMemory, cmd: KvCommand, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        KvCommand::List {
            namespaces: true, ..
        } => {
            let names = dm.namespaces().await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json_text(&serde_json::json!({ "namespaces": names }))?
                )?;
            } else {
                for name in names {
                    writeln!(out, "{}", display_key(&name))?;
                }
            }
        }
        KvCommand::List { prefix, .. } => {
            // Each entry read on its own: a malformed one is shown as such.
            let listing = dm.listing(prefix.as_deref()).await?;
            if json {
                let mut items: Vec<serde_json::Value> = listing
                    .entries
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<serde_json::Result<_>>()?;
                items.extend(listing.unreadable.iter().map(|u| {
                    serde_json::json!({
                        "namespace": dm.namespace(), "key": u.key, "unreadable": u.reason,
                    })
                }));
                writeln!(out, "{}", json_text(&items)?)?;
            } else {
                write_table(&mut out, &listing, now_unix())?;
            }
            if !listing.unreadable.is_empty() || listing.foreign > 0 {
                let mut note = format!(
                    "plumdash: the controller sent {} unreadable entr{}",
                    listing.unreadable.len(),
                    if listing.unreadable.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                );
                if listing.foreign > 0 {
                    note.push_str(&format!(
                        " and {} of another namespace (left out)",
                        listing.foreign
                    ));
                }
                eprintln!("{note}");
            }
        }
        KvCommand::Get { key } => match dm.get_entry(&key).await? {
            Some(entry) if json => writeln!(out, "{}", json_text(&entry)?)?,
            Some(entry) => writeln!(out, "{}", escape_controls(&entry.value))?,
            None => bail!("key {key:?} not found in namespace {:?}", dm.namespace()),
        },
        KvCommand::Put {
            key,
            value,
            value_type,
        } => {
            dm.put_typed(&key, &value, value_type).await?;
            if json {
                let answer = serde_json::json!({
                    "namespace": dm.namespace(), "key": key, "value": value, "type": value_type,
                });
                writeln!(out, "{}", json_text(&answer)?)?;
            }
        }
        KvCommand::Remove { key } => {
            dm.remove(&key).await?;
        }
        KvCommand::Watch => watch(dm, json).await?,
    }
    Ok(())
}

/// JSON on one line with no raw control character (DEL and C1 escaped too).
fn json_text(value: &impl serde::Serialize) -> serde_json::Result<String> {
    serde_json::to_string(value).map(|j| escape_json_controls(&j).into_owned())
}

async fn watch(dm: &DistributedMemory, json: bool) -> Result<(), KvError> {
    let mut feed = dm.subscribe(WatchOptions::default());
    while let Some(event) = feed.recv().await {
        let line = if json {
            watch_json(&event)
        } else {
            format!("{} {}", clock(), escape_controls(&watch_line(&event)))
        };
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) ends the watch quietly.
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

fn watch_line(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Status(FeedStatus::Streaming) => "· live (stream)".into(),
        WatchEvent::Status(FeedStatus::Polling(i)) => {
            format!("· live (polling every {})", humantime::format_duration(*i))
        }
        WatchEvent::Status(FeedStatus::Down { error, retry_in }) => format!(
            "· controller down: {error} (retry in {})",
            humantime::format_duration(*retry_in)
        ),
        WatchEvent::Snapshot(entries) => format!("· {} keys", entries.len()),
        WatchEvent::Put(e) => format!("put {} = {} ({})", e.key, display_value(e), e.value_type),
        WatchEvent::Batch(entries) => {
            let items: Vec<String> = entries
                .iter()
                .map(|e| format!("{} = {}", e.key, display_value(e)))
                .collect();
            format!("batch {}", items.join(", "))
        }
        WatchEvent::Deleted { key, .. } => format!("del {key}"),
        WatchEvent::Trouble(t) => match &t.broken {
            Some(why) => format!(
                "· controller misbehaves: {why} (retry in {})",
                humantime::format_duration(t.retry_in)
            ),
            None if t.any() => format!("· controller sends malformed data: {}", trouble_counts(t)),
            // A trouble report with nothing in it: the last one is over.
            None => "· the controller's data reads again".to_string(),
        },
    }
}

fn watch_json(event: &WatchEvent) -> String {
    let v = match event {
        WatchEvent::Status(FeedStatus::Streaming) => {
            serde_json::json!({"event":"live","via":"stream"})
        }
        WatchEvent::Status(FeedStatus::Polling(i)) => {
            serde_json::json!({"event":"live","via":"polling","interval_ms": crate::clock::millis(*i)})
        }
        WatchEvent::Status(FeedStatus::Down { error, retry_in }) => serde_json::json!({
            "event":"down","error": error, "retry_in_ms": crate::clock::millis(*retry_in)
        }),
        WatchEvent::Snapshot(entries) => serde_json::json!({"event":"snapshot","entries": entries}),
        WatchEvent::Put(e) => serde_json::json!({"event":"put","entry": e}),
        WatchEvent::Batch(entries) => serde_json::json!({"event":"batch","entries": entries}),
        WatchEvent::Deleted { key, .. } => serde_json::json!({"event":"deleted","key": key}),
        WatchEvent::Trouble(t) => serde_json::json!({
            "event": "trouble",
            "skipped": t.skipped,
            "dropped": t.dropped,
            "unreadable": t.unreadable,
            "last": t.last,
            "broken": t.broken,
            "retry_in_ms": t.broken.as_ref().map(|_| crate::clock::millis(t.retry_in)),
        }),
    };
    escape_json_controls(&v.to_string()).into_owned()
}

fn write_table(out: &mut impl Write, listing: &Listing, now: i64) -> std::io::Result<()> {
    // The controller's order, the unreadable entries last.
    let mut rows: Vec<(String, [String; 4])> = listing
        .entries
        .iter()
        .map(|e| {
            (
                e.key.clone(),
                [
                    display_key(&e.key),
                    e.value_type.to_string(),
                    display_value(e),
                    age(e.updated_at, now),
                ],
            )
        })
        .collect();
    rows.extend(listing.unreadable.iter().map(|u| {
        (
            u.key_text().to_string(),
            [
                display_key(u.key_text()),
                "?".into(),
                format!("unreadable: {}", display_key(&preview(&u.reason))),
                String::new(),
            ],
        )
    }));
    let rows: Vec<[String; 4]> = rows.into_iter().map(|(_, row)| row).collect();
    let header = ["KEY", "TYPE", "VALUE", "AGE"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn clock() -> String {
    jiff::ZonedDateTime::now()
        .strftime("%H:%M:%S%.3f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Entry;

    fn entry(key: &str, value: &str, ty: ValueType, at: i64) -> Entry {
        Entry {
            namespace: "ns".into(),
            key: key.into(),
            value: value.into(),
            value_type: ty,
            updated_at: at,
            updated_at_ms: None,
            writer: None,
        }
    }

    /// An empty trouble report ends the last one: said so, not as a
    /// "malformed data" line with nothing after it.
    #[test]
    fn a_trouble_report_with_nothing_in_it_says_the_data_reads_again() {
        let cleared = WatchEvent::Trouble(crate::kv::FeedTrouble::default());
        assert_eq!(watch_line(&cleared), "· the controller's data reads again");
        let some = WatchEvent::Trouble(crate::kv::FeedTrouble {
            skipped: 2,
            ..Default::default()
        });
        assert!(
            watch_line(&some).starts_with("· controller sends malformed data: 2 malformed"),
            "{}",
            watch_line(&some)
        );
    }

    #[test]
    fn table_aligns_columns_and_shows_bytes_as_hex() {
        let entries = [
            entry("task.progress", "50", ValueType::Int, 95),
            entry(
                "binary.checkpoint",
                "AAECAwQFBgcICQ==",
                ValueType::Bytes,
                40,
            ),
        ];
        let listing = Listing {
            entries: entries.to_vec(),
            ..Listing::default()
        };
        let mut out = Vec::new();
        write_table(&mut out, &listing, 100).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "KEY                TYPE   VALUE                       AGE\n\
             task.progress      int    50                          5s\n\
             binary.checkpoint  bytes  10 bytes 0001020304050607…  1m\n"
        );
    }

    #[test]
    fn an_unreadable_entry_is_a_row_of_its_own() {
        let listing = Listing {
            entries: vec![entry("task.progress", "50", ValueType::Int, 95)],
            unreadable: vec![crate::kv::Unreadable {
                key: Some("c\x1b[2J".into()),
                reason: "invalid type: integer `50`, expected a string".into(),
            }],
            foreign: 0,
        };
        let mut out = Vec::new();
        write_table(&mut out, &listing, 100).unwrap();
        let text = String::from_utf8(out).unwrap();
        let last = text.lines().last().unwrap();
        assert_eq!(
            last,
            "c\\x1b[2J       ?     unreadable: invalid type: integer `50`, expected a s…"
        );
    }
}
