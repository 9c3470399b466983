//! Where plumdash keeps its files by default (XDG folders, with the temp
//! folder as the last resort): one place, so `--help` texts, the dashboard
//! and the tests agree.

use std::path::PathBuf;

/// `$XDG_STATE_HOME/plumdash` (or the platform's equivalent): the embedded
/// controller's database and the dashboard's diagnostics.
pub fn state_dir() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("plumdash")
}

/// `$XDG_STATE_HOME/plumdash/plum-kv.db`.
pub fn default_db_path() -> PathBuf {
    state_dir().join("plum-kv.db")
}

/// `$XDG_STATE_HOME/plumdash/plumdash.log` (beside the default database).
pub fn default_log_path() -> PathBuf {
    state_dir().join("plumdash.log")
}

/// `$XDG_CONFIG_HOME/plumdash/keys.toml`, looked for when no `--keys` is given.
pub fn default_keys_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("plumdash").join("keys.toml"))
}

/// `$XDG_RUNTIME_DIR/plumdash`, or `<tmp>/plumdash-<uid>` without it: the
/// control sockets' folder.
pub fn socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("plumdash"),
        None => std::env::temp_dir().join(format!("plumdash-{}", nix::unistd::geteuid())),
    }
}

/// `plumdash-agent` in the system temp folder (the original's `plum-agent`):
/// an agent's work folders.
pub fn agent_data_dir() -> PathBuf {
    std::env::temp_dir().join("plumdash-agent")
}
