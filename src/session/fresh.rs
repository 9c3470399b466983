//! Each run a fresh demo: when plumdash owns the controller, what the last
//! run left in the app's namespaces (its task, its crash flag) is moved to an
//! archive namespace before any worker starts, so a rehearsal does not decide
//! how the live run begins. The archive is named in the header and kept (the
//! newest few per namespace) for whoever wants it back.

use crate::kv::{BatchItem, DistributedMemory, KvError};

/// Archives kept per namespace; older ones are deleted as new ones are made.
const ARCHIVES_KEPT: usize = 3;

/// What was done, for the header: `None` when there was nothing to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// `kv-demo@20261206-043012`, one per namespace that held keys.
    pub archives: Vec<String>,
    /// Keys moved, over all of them.
    pub keys: usize,
}

/// The namespaces a run of `app` writes: the app's own and its instances'
/// own (`kv-demo-001`, with `--namespace-by instance`).
fn belongs_to_run(app: &str, namespace: &str) -> bool {
    namespace == app
        || namespace
            .strip_prefix(app)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The archive of `namespace` made at `stamp`, and how to recognise one.
fn archive_name(namespace: &str, stamp: &str) -> String {
    format!("{namespace}@{stamp}")
}

/// Moves every key of the run's namespaces into archives stamped `stamp`
/// (`YYYYMMDD-HHMMSS`), then trims old archives. Copies first and deletes
/// after, so a failure part way loses nothing.
pub async fn archive_previous_run(
    dm: &DistributedMemory,
    app: &str,
    stamp: &str,
) -> Result<Option<Archived>, KvError> {
    let namespaces = dm.namespaces().await?;
    let mut done = Archived {
        archives: Vec::new(),
        keys: 0,
    };
    for namespace in namespaces.iter().filter(|n| belongs_to_run(app, n)) {
        let source = dm.for_namespace(namespace)?;
        let entries = source.get_all().await?;
        if entries.is_empty() {
            continue;
        }
        let archive = archive_name(namespace, stamp);
        let items: Vec<BatchItem> = entries
            .iter()
            .map(|e| BatchItem::new(e.key.clone(), e.value.clone(), e.value_type))
            .collect();
        dm.for_namespace(&archive)?.put_batch(&items).await?;
        for entry in &entries {
            source.remove(&entry.key).await?;
        }
        done.keys += entries.len();
        done.archives.push(archive);
        trim_archives(dm, namespace, &namespaces).await?;
    }
    Ok((!done.archives.is_empty()).then_some(done))
}

/// Deletes all but the newest [`ARCHIVES_KEPT`] archives of `namespace`
/// (the one just made is not in `known` yet, so it counts as one).
async fn trim_archives(
    dm: &DistributedMemory,
    namespace: &str,
    known: &[String],
) -> Result<(), KvError> {
    let prefix = format!("{namespace}@");
    let mut old: Vec<&String> = known.iter().filter(|n| n.starts_with(&prefix)).collect();
    // Stamps sort as times.
    old.sort();
    let surplus = (old.len() + 1).saturating_sub(ARCHIVES_KEPT);
    for archive in old.into_iter().take(surplus) {
        let ns = dm.for_namespace(archive)?;
        for entry in ns.get_all().await? {
            ns.remove(&entry.key).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_writes_its_app_and_instance_namespaces_only() {
        assert!(belongs_to_run("kv-demo", "kv-demo"));
        assert!(belongs_to_run("kv-demo", "kv-demo-002"));
        assert!(!belongs_to_run("kv-demo", "kv-demo-02"));
        assert!(!belongs_to_run("kv-demo", "kv-demo@20261206-043012"));
        assert!(!belongs_to_run("kv-demo", "kv-demo-other"));
        assert!(!belongs_to_run("kv-demo", "hx"));
    }
}
