//! An assignment's artifact, as the original agent handles it
//! (`plum-cluster-api.md` §5): downloaded once to `<instance>/pkg.zip` (a
//! relative `artifactUrl` is the controller's), unpacked into
//! `<instance>/app/`, and run as `sh -c ./start.sh` (or its `startCmd`) in
//! that folder. Unlike the original, the download is bounded, an entry
//! outside the folder is refused (`crate::artifact::unpack`), and a half
//! unpacked folder is never taken for a whole one (it is unpacked beside and
//! renamed).

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Largest artifact downloaded (the controller takes 256 MiB uploads by default).
pub const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;
/// Longest a download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Where an assignment's artifact comes from: an absolute `http(s)://` URL as
/// it is, anything else on the controller (as the original prefixes it).
pub fn resolve(controller: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        return url.to_string();
    }
    let base = controller.trim_end_matches('/');
    match url.strip_prefix('/') {
        Some(path) => format!("{base}/{path}"),
        None => format!("{base}/{url}"),
    }
}

/// The instance's `app/` folder, ready to run: downloaded and unpacked on
/// first use, as is afterwards (a restart runs in the same folder).
pub async fn prepare(
    http: &reqwest::Client,
    controller: &str,
    token: Option<&str>,
    url: &str,
    instance_dir: &Path,
) -> Result<PathBuf> {
    let app = instance_dir.join("app");
    if app.is_dir() {
        return Ok(app);
    }
    let zip = instance_dir.join("pkg.zip");
    if !zip.is_file() {
        download(http, controller, token, url, &zip).await?;
    }
    let part = instance_dir.join("app.part");
    let (zip2, part2, app2) = (zip.clone(), part.clone(), app.clone());
    tokio::task::spawn_blocking(move || {
        if part2.exists() {
            std::fs::remove_dir_all(&part2)
                .with_context(|| format!("removing a half-unpacked {}", part2.display()))?;
        }
        crate::artifact::unpack(&zip2, &part2)
            .with_context(|| format!("unpacking {}", zip2.display()))?;
        std::fs::rename(&part2, &app2).with_context(|| format!("moving it to {}", app2.display()))
    })
    .await
    .context("unpacking the artifact")??;
    Ok(app)
}

async fn download(
    http: &reqwest::Client,
    controller: &str,
    token: Option<&str>,
    url: &str,
    to: &Path,
) -> Result<()> {
    let full = resolve(controller, url);
    let mut request = http.get(&full).timeout(DOWNLOAD_TIMEOUT);
    // The token is the controller's: never sent anywhere else (not to
    // `http://ctl:8080.elsewhere/`, which merely starts like it).
    let base = format!("{}/", controller.trim_end_matches('/'));
    if let Some(token) = token.filter(|_| full.starts_with(&base)) {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("downloading {full}"))?;
    if !response.status().is_success() {
        bail!("downloading {full}: {}", response.status());
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOWNLOAD_BYTES)
    {
        bail!(
            "downloading {full}: larger than {} MiB",
            MAX_DOWNLOAD_BYTES >> 20
        );
    }
    let part = to.with_extension("zip.part");
    let mut file = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("creating {}", part.display()))?;
    let mut body = response.bytes_stream();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("downloading {full}"))?;
        size += chunk.len() as u64;
        if size > MAX_DOWNLOAD_BYTES {
            drop(file);
            let _ = tokio::fs::remove_file(&part).await;
            bail!(
                "downloading {full}: larger than {} MiB",
                MAX_DOWNLOAD_BYTES >> 20
            );
        }
        file.write_all(&chunk)
            .await
            .with_context(|| format!("writing {}", part.display()))?;
    }
    file.sync_all()
        .await
        .with_context(|| format!("writing {}", part.display()))?;
    drop(file);
    tokio::fs::rename(&part, to)
        .await
        .with_context(|| format!("moving the download to {}", to.display()))?;
    tracing::info!("downloaded {full} ({size} bytes) to {}", to.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_url_is_the_controllers() {
        let c = "http://ctl:8080/";
        assert_eq!(
            resolve(c, "/artifacts/a.zip"),
            "http://ctl:8080/artifacts/a.zip"
        );
        assert_eq!(
            resolve(c, "artifacts/a.zip"),
            "http://ctl:8080/artifacts/a.zip"
        );
        assert_eq!(resolve(c, "https://x/a.zip"), "https://x/a.zip");
    }
}
