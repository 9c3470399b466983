//! App packages, as the original's Web UI uploads them (`plum-cluster-api.md`
//! §9): a zip holding `start.sh` and a `meta.ini` with `name` and `version`.
//! One module for the three places that touch one: `plumdash package` writes
//! it, the controller checks an upload (`inspect`), the agent unpacks it
//! (`unpack`).
//!
//! Unlike the original, an entry is never written outside its folder: a
//! name that is absolute or climbs with `..`, a symbolic link, an encrypted
//! entry or an archive that unpacks past [`MAX_UNPACKED_BYTES`] is refused
//! by the controller at upload and again by the agent before it writes.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Most entries an archive may hold.
pub const MAX_ENTRIES: usize = 10_000;
/// Most bytes an archive may unpack to (its entries' sizes added up).
pub const MAX_UNPACKED_BYTES: u64 = 2 << 30;
/// Largest `meta.ini` read.
const MAX_META_BYTES: u64 = 64 << 10;
/// The original's one message for a zip without them (a 400).
pub const MISSING_START_OR_META: &str = "zip must contain start.sh and meta.ini(name,version)";
/// What `start.sh` runs in a package `plumdash package` makes: the seed's
/// line, with `pipefail` so a killed worker ends the script with its status
/// (without it the pipeline ends as `tee` does, 0, and a SIGKILL reads as a
/// finished task).
pub const START_SH: &str = "#!/bin/bash\n\
# kv-demo, as Plum's agent runs an app: sh -c ./start.sh in the unpacked folder.\n\
# pipefail: the worker's own exit status (137 after a SIGKILL) is the script's.\n\
set -o pipefail\n\
./kv-demo 2>&1 | tee kv-demo.log\n";

/// Why an archive is refused; each reads as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error("not a zip")]
    NotZip,
    #[error("{}", MISSING_START_OR_META)]
    MissingStartOrMeta,
    #[error("zip entry {0:?} would be written outside its folder")]
    Outside(String),
    #[error("zip entry {0:?} is a symbolic link (not unpacked: it could point anywhere)")]
    Symlink(String),
    #[error("zip entry {0:?} is encrypted")]
    Encrypted(String),
    #[error("zip holds more than {MAX_ENTRIES} entries")]
    TooManyEntries,
    #[error("zip unpacks to more than {} MiB", MAX_UNPACKED_BYTES >> 20)]
    TooBig,
    #[error("reading the zip: {0}")]
    Unreadable(String),
}

/// What an archive that passed [`inspect`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub name: String,
    pub version: String,
    pub entries: usize,
    pub unpacked_bytes: u64,
}

/// `name` and `version` of a `meta.ini` as the original reads it: `k=v` or
/// `k:v` lines, `#` and `;` comments, keys in any case, the last one wins.
pub fn parse_meta_ini(text: &str) -> (String, String) {
    let (mut name, mut version) = (String::new(), String::new());
    for line in text.split('\n').map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some(i) = line.find([':', '=']).filter(|&i| i > 0) else {
            continue;
        };
        let value = line[i + 1..].trim().to_string();
        match line[..i].trim().to_ascii_lowercase().as_str() {
            "name" => name = value,
            "version" => version = value,
            _ => {}
        }
    }
    (name, version)
}

/// An entry's name as a path inside its folder: relative, no `..`, no NUL;
/// `None` when it would land outside (or nowhere).
fn inside(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') || name.contains('\0') {
        return None;
    }
    let mut path = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" | "." => continue,
            ".." => return None,
            part => path.push(part),
        }
    }
    (!path.as_os_str().is_empty()).then_some(path)
}

fn base_name(name: &str) -> &str {
    name.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(name)
}

type Archive = zip::ZipArchive<File>;

fn open(path: &Path) -> Result<Archive, PackageError> {
    let file = File::open(path).map_err(|e| PackageError::Unreadable(e.to_string()))?;
    zip::ZipArchive::new(file).map_err(|_| PackageError::NotZip)
}

/// One entry that passed the checks: its index in the archive, its name,
/// and its path inside the folder (`None` for a folder).
type Checked = (usize, String, Option<PathBuf>);

/// Every entry's checked path, in archive order; the whole archive is
/// refused at its first bad entry.
fn checked_entries(archive: &mut Archive) -> Result<Vec<Checked>, PackageError> {
    if archive.len() > MAX_ENTRIES {
        return Err(PackageError::TooManyEntries);
    }
    let mut total: u64 = 0;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| PackageError::Unreadable(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| PackageError::Unreadable(e.to_string()))?
            .into_owned();
        let Some(path) = inside(&name) else {
            // A lone "./" folder entry is harmless; anything else outside is not.
            if entry.is_dir() && name.trim_matches(['.', '/']).is_empty() {
                continue;
            }
            return Err(PackageError::Outside(name));
        };
        if entry.is_symlink() {
            return Err(PackageError::Symlink(name));
        }
        if entry.encrypted() {
            return Err(PackageError::Encrypted(name));
        }
        total = total.saturating_add(entry.size());
        if total > MAX_UNPACKED_BYTES {
            return Err(PackageError::TooBig);
        }
        let is_dir = entry.is_dir();
        out.push((i, name, (!is_dir).then_some(path)));
    }
    Ok(out)
}

/// Checks an archive as the controller takes an upload: a zip, every entry
/// inside its folder, a `start.sh` (any folder) and a `meta.ini` (any
/// folder, any case) with a name and a version.
pub fn inspect(path: &Path) -> Result<Inspected, PackageError> {
    let mut archive = open(path)?;
    let entries = checked_entries(&mut archive)?;
    let mut has_start = false;
    let (mut name, mut version) = (String::new(), String::new());
    let mut unpacked_bytes = 0;
    for (i, entry_name, file) in &entries {
        let i = *i;
        if file.is_none() {
            continue;
        }
        let base = base_name(entry_name);
        has_start |= base == "start.sh";
        if base.eq_ignore_ascii_case("meta.ini") {
            let mut text = String::new();
            let entry = archive
                .by_index(i)
                .map_err(|e| PackageError::Unreadable(e.to_string()))?;
            // Not UTF-8, or unreadable: as the original, it yields no name.
            let _ = entry.take(MAX_META_BYTES).read_to_string(&mut text);
            (name, version) = parse_meta_ini(&text);
        }
    }
    for i in 0..archive.len() {
        if let Ok(entry) = archive.by_index_raw(i) {
            unpacked_bytes += entry.size();
        }
    }
    if !has_start || name.is_empty() || version.is_empty() {
        return Err(PackageError::MissingStartOrMeta);
    }
    Ok(Inspected {
        name,
        version,
        entries: entries.len(),
        unpacked_bytes,
    })
}

/// Unpacks `zip` into `dest` (created; it must not exist yet, so nothing of
/// an earlier try is mixed in). Every entry is checked first; files keep
/// their execute bits, `start.sh` and ELF programs get them (as the original
/// agent chmods them), nothing gets setuid or group/other write.
pub fn unpack(zip: &Path, dest: &Path) -> Result<usize> {
    let mut archive = open(zip).with_context(|| format!("opening {}", zip.display()))?;
    let entries =
        checked_entries(&mut archive).with_context(|| format!("checking {}", zip.display()))?;
    std::fs::create_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut written = 0u64;
    for (i, name, path) in &entries {
        let i = *i;
        let Some(path) = path else {
            if let Some(dir) = inside(name) {
                std::fs::create_dir_all(dest.join(&dir))
                    .with_context(|| format!("creating {}", dest.join(&dir).display()))?;
            }
            continue;
        };
        let target = dest.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let entry = archive
            .by_index(i)
            .with_context(|| format!("reading zip entry {name:?}"))?;
        let declared = entry.size();
        let mode = entry.unix_mode().unwrap_or(0o644);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        // No more than it declared: the sizes were what the limit was checked on.
        let mut limited = entry.take(declared);
        let mut head = [0u8; 4];
        let n = read_head(&mut limited, &mut head)
            .with_context(|| format!("unpacking zip entry {name:?}"))?;
        out.write_all(&head[..n])
            .with_context(|| format!("writing {}", target.display()))?;
        let copied = std::io::copy(&mut limited, &mut out)
            .with_context(|| format!("unpacking zip entry {name:?}"))?;
        written += copied + n as u64;
        if written > MAX_UNPACKED_BYTES {
            anyhow::bail!(PackageError::TooBig);
        }
        let elf = n == 4 && head == *b"\x7fELF";
        let executable = mode & 0o111 != 0 || base_name(name) == "start.sh" || elf;
        let perms = if executable { 0o755 } else { 0o644 };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(perms))
            .with_context(|| format!("setting the mode of {}", target.display()))?;
    }
    Ok(entries.len())
}

fn read_head(reader: &mut impl Read, head: &mut [u8; 4]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What `plumdash package` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packaged {
    pub path: PathBuf,
    pub bytes: u64,
}

/// Writes the seed's `kv-demo.zip` (what its `build.sh` makes): `start.sh`,
/// `meta.ini` with `name` and `version`, and the worker program as `kv-demo`,
/// flat, as `zip -r ../kv-demo.zip .` in its package folder.
pub fn package(out: &Path, name: &str, version: &str, worker: &Path) -> Result<Packaged> {
    let tmp = out.with_extension("zip.part");
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    // Level 1: a 100 MB debug worker in a second or two, still about a third of its size.
    let options = |mode: u32| {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1))
            .unix_permissions(mode)
            .large_file(true)
    };
    let meta =
        format!("# Plum app metadata, as the seed's kv-demo\nname={name}\nversion={version}\n");
    let write = |zip: &mut zip::ZipWriter<File>, entry: &str, mode: u32, data: &mut dyn Read| {
        zip.start_file(entry, options(mode))
            .with_context(|| format!("adding {entry} to {}", tmp.display()))?;
        std::io::copy(data, zip).with_context(|| format!("writing {entry} into the zip"))?;
        anyhow::Ok(())
    };
    write(&mut zip, "start.sh", 0o755, &mut START_SH.as_bytes())?;
    write(&mut zip, "meta.ini", 0o644, &mut meta.as_bytes())?;
    let mut program =
        File::open(worker).with_context(|| format!("reading the worker {}", worker.display()))?;
    write(&mut zip, "kv-demo", 0o755, &mut program)?;
    let file = zip
        .finish()
        .with_context(|| format!("finishing {}", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, out).with_context(|| format!("moving the zip to {}", out.display()))?;
    let bytes = std::fs::metadata(out)
        .with_context(|| format!("reading {}", out.display()))?
        .len();
    Ok(Packaged {
        path: out.to_path_buf(),
        bytes,
    })
}

/// A name or version as the original puts it in a file name: spaces to `_`,
/// anything but `[A-Za-z0-9._-]` to `-`, `app` when nothing is left.
pub fn file_name_part(text: &str) -> String {
    let part: String = text
        .trim()
        .chars()
        .map(|c| match c {
            ' ' => '_',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => c,
            _ => '-',
        })
        .collect();
    if part.is_empty() {
        "app".into()
    } else {
        part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("t.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        for (name, data) in entries {
            if name.ends_with('/') {
                zip.add_directory(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
            } else {
                zip.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                zip.write_all(data).unwrap();
            }
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn meta_ini_reads_as_the_originals() {
        let text = "# c\n; c\nName = kv-demo\nversion:5.0.0\n=x\nother=1\n";
        assert_eq!(parse_meta_ini(text), ("kv-demo".into(), "5.0.0".into()));
        assert_eq!(parse_meta_ini("name\n"), (String::new(), String::new()));
    }

    #[test]
    fn an_upload_needs_start_sh_and_a_named_versioned_meta_ini() {
        let dir = tempfile::tempdir().unwrap();
        let ok = zip_of(
            dir.path(),
            &[
                ("pkg/", b""),
                ("pkg/start.sh", b"#!/bin/sh\n"),
                ("pkg/META.INI", b"name=a\nversion=1\n"),
            ],
        );
        let got = inspect(&ok).unwrap();
        assert_eq!((got.name.as_str(), got.version.as_str()), ("a", "1"));
        // A lone "./" folder entry is skipped, and the entries after it still read.
        let dotted = zip_of(
            dir.path(),
            &[
                ("./", b""),
                ("start.sh", b""),
                ("meta.ini", b"name=b\nversion=2\n"),
            ],
        );
        assert_eq!(inspect(&dotted).unwrap().name, "b");
        let no_version = zip_of(dir.path(), &[("start.sh", b""), ("meta.ini", b"name=a\n")]);
        assert_eq!(
            inspect(&no_version).unwrap_err().to_string(),
            MISSING_START_OR_META
        );
        let text = dir.path().join("x.zip");
        std::fs::write(&text, "not a zip").unwrap();
        assert_eq!(inspect(&text).unwrap_err(), PackageError::NotZip);
    }

    #[test]
    fn entries_outside_their_folder_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../evil.sh", "a/../../evil.sh", "/etc/evil"] {
            let zip = zip_of(
                dir.path(),
                &[
                    ("start.sh", b""),
                    ("meta.ini", b"name=a\nversion=1\n"),
                    (bad, b"x"),
                ],
            );
            assert_eq!(
                inspect(&zip).unwrap_err(),
                PackageError::Outside(bad.into()),
                "{bad}"
            );
            let dest = dir.path().join("app");
            let err = unpack(&zip, &dest).unwrap_err();
            assert!(format!("{err:#}").contains("outside its folder"), "{err:#}");
            assert!(!dest.exists(), "nothing unpacked for {bad}");
        }
        assert!(!dir.path().join("evil.sh").exists());
    }

    #[test]
    fn a_link_is_refused_it_could_point_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("start.sh", options).unwrap();
        zip.start_file("meta.ini", options).unwrap();
        zip.write_all(b"name=a\nversion=1\n").unwrap();
        zip.add_symlink("out", "/etc", options).unwrap();
        zip.start_file("out/passwd", options).unwrap();
        zip.finish().unwrap();
        assert_eq!(
            inspect(&path).unwrap_err(),
            PackageError::Symlink("out".into())
        );
        assert!(unpack(&path, &dir.path().join("app")).is_err());
        assert!(!dir.path().join("app").exists());
    }

    #[test]
    fn a_package_unpacks_with_its_programs_executable() {
        let dir = tempfile::tempdir().unwrap();
        let worker = dir.path().join("w");
        std::fs::write(&worker, b"\x7fELF....").unwrap();
        let out = dir.path().join("kv-demo.zip");
        package(&out, "kv-demo", "1.2.3", &worker).unwrap();
        let got = inspect(&out).unwrap();
        assert_eq!(
            (got.name.as_str(), got.version.as_str(), got.entries),
            ("kv-demo", "1.2.3", 3)
        );
        let app = dir.path().join("app");
        assert_eq!(unpack(&out, &app).unwrap(), 3);
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(app.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            (mode("start.sh"), mode("kv-demo"), mode("meta.ini")),
            (0o755, 0o755, 0o644)
        );
        assert_eq!(
            std::fs::read_to_string(app.join("start.sh")).unwrap(),
            START_SH
        );
    }

    #[test]
    fn file_name_parts_are_sanitised_as_the_originals() {
        assert_eq!(file_name_part(" my app/v2 "), "my_app-v2");
        assert_eq!(file_name_part(""), "app");
    }
}
