//! Where the control socket lives, and why we trust it.
//!
//! Whoever can write the socket's folder can swap the socket and answer
//! `ctl kill` with a fake success. So the default folder is made 0700 and
//! must be ours (owned by our uid, writable by nobody else, not a symlink);
//! the folder of a socket named with `--control-socket`/`--to` must at least
//! not be writable by others without the sticky bit (as `/tmp` has). A client
//! talks only to a socket file owned by its own uid.

use anyhow::{bail, Context, Result};
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::Path;

/// How strictly a folder is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// Our default folder: created 0700 if missing; must be ours alone.
    Default,
    /// A folder the user named: must not be writable by others (unless sticky).
    Named,
}

/// Creates (for `Default`) and checks the folder a socket will be served in.
pub fn prepare(dir: &Path, kind: Folder) -> Result<()> {
    if kind == Folder::Default {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        match DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    check(dir, kind)
}

/// Refuses a folder that someone else could use to swap the socket.
pub fn check(dir: &Path, kind: Folder) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("reading the control socket folder {}", dir.display()))?;
    let refuse = |why: String| -> Result<()> {
        bail!(
            "refusing the control socket folder {}: {why}",
            dir.display()
        )
    };
    if meta.file_type().is_symlink() {
        return refuse("it is a symbolic link".into());
    }
    if !meta.is_dir() {
        return refuse("it is not a folder".into());
    }
    let me = nix::unistd::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    match kind {
        Folder::Default => {
            if meta.uid() != me {
                return refuse(format!(
                    "owned by uid {}, not by you (uid {me})",
                    meta.uid()
                ));
            }
            if mode & 0o022 != 0 {
                return refuse(format!(
                    "writable by others (mode {mode:04o}; chmod 700 it or remove it)"
                ));
            }
        }
        Folder::Named => {
            let sticky = mode & 0o1000 != 0;
            if mode & 0o002 != 0 && !sticky {
                return refuse(format!(
                    "writable by everyone without the sticky bit (mode {mode:04o})"
                ));
            }
        }
    }
    Ok(())
}

/// A client's check before talking to `path`: a socket owned by us.
pub fn check_socket(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        // Missing: connecting says so.
        return Ok(());
    };
    let me = nix::unistd::geteuid().as_raw();
    if !meta.file_type().is_socket() {
        bail!("refusing {}: not a socket", path.display());
    }
    if meta.uid() != me {
        bail!(
            "refusing the control socket {}: owned by uid {}, not by you (uid {me})",
            path.display(),
            meta.uid()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_default_folder_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plumdash");
        prepare(&dir, Folder::Default).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Again: already there and fine.
        prepare(&dir, Folder::Default).unwrap();
    }

    #[test]
    fn a_folder_others_can_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plumdash");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o777);
        let err = prepare(&dir, Folder::Default).unwrap_err().to_string();
        assert!(err.contains("writable by others (mode 0777"), "{err}");
        let err = check(&dir, Folder::Named).unwrap_err().to_string();
        assert!(err.contains("without the sticky bit"), "{err}");
        chmod(&dir, 0o1777);
        check(&dir, Folder::Named).unwrap();
    }

    #[test]
    fn a_symlinked_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        chmod(&real, 0o700);
        let link = tmp.path().join("plumdash");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = prepare(&link, Folder::Default).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn a_folder_owned_by_someone_else_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return; // Only root can give a folder away.
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plumdash");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let err = prepare(&dir, Folder::Default).unwrap_err().to_string();
        assert!(err.contains("owned by uid 65534, not by you"), "{err}");
    }
}
