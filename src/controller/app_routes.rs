//! The app API's HTTP surface, in the original's shapes and statuses
//! (`plum-cluster-api.md` §9): `POST /v1/apps/upload` (multipart, field
//! `file`), `GET /v1/apps`, `DELETE /v1/apps/{id}`, and the stored zips under
//! `GET /artifacts/{file}`. Errors are the API's one-line JSON with the
//! original's reasons (`not a zip`, `zip must contain start.sh and
//! meta.ini(name,version)`, the 409's Chinese sentence).
//!
//! Unlike the original: the upload is bounded (413 past the limit, counted as
//! it streams to disk, not after), and an archive with an entry outside its
//! folder, a link or too much to unpack is refused (400).

use super::apps::{Apps, Refused, Removal};
use super::error::ApiError;
use super::state::AppState;
use crate::artifact::inspect;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `/v1/apps…` and `/artifacts/…`, for the controller's router.
pub fn app_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/apps", get(list))
        // Bounded by the upload limit as it streams (see `upload`), not the
        // API's 1 MiB for JSON bodies.
        .route(
            "/v1/apps/upload",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/apps/{id}", delete(remove))
        .route("/artifacts/{file}", get(artifact))
}

fn apps(state: &AppState) -> Result<Arc<Apps>, ApiError> {
    state
        .apps
        .clone()
        .ok_or_else(|| ApiError::not_found("this controller does not serve the app API"))
}

fn too_large(max: u64) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("the upload is larger than {} MiB", max >> 20),
    }
}

/// Removes the temporary file however the upload ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn upload(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let apps = apps(&state)?;
    let max = apps.max_upload();
    // A declared length past the limit is refused before a byte is read.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let mut form = Multipart::from_request(req, &state)
        .await
        .map_err(|e| ApiError::bad_request(format!("bad form: {}", e.body_text())))?;
    let tmp = TempFile(apps.temp_path()?);
    let mut found = false;
    let (mut size, mut hash) = (0u64, Sha256::new());
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("bad form: {}", e.body_text())))?;
        let Some(mut field) = field else { break };
        if field.name() != Some("file") || found {
            continue;
        }
        found = true;
        let mut out = tokio::fs::File::create(&tmp.0)
            .await
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", tmp.0.display())))?;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| ApiError::bad_request(format!("bad form: {}", e.body_text())))?
        {
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large(max));
            }
            hash.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| ApiError::internal(format!("writing {}: {e}", tmp.0.display())))?;
        }
        out.sync_all()
            .await
            .map_err(|e| ApiError::internal(format!("writing {}: {e}", tmp.0.display())))?;
    }
    if !found {
        return Err(ApiError::bad_request("file required"));
    }
    let sha256: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let path = tmp.0.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let inspected = inspect(&path).map_err(|e| ApiError::bad_request(e.to_string()))?;
        apps.add(&path, &inspected, &sha256, size)
            .map_err(ApiError::from)
    })
    .await
    .map_err(ApiError::internal)??;
    match stored {
        Ok(info) => Ok(Json(info).into_response()),
        Err(Refused::Exists { name, version }) => Err(ApiError {
            status: StatusCode::CONFLICT,
            // The original's sentence, then the same in English.
            message: format!(
                "应用 {name} 版本 {version} 已存在 (app {name} version {version} exists already)"
            ),
        }),
    }
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let apps = apps(&state)?;
    let list = tokio::task::spawn_blocking(move || apps.list())
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(list).into_response())
}

async fn remove(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let apps = apps(&state)?;
    let lookup = id.clone();
    let removal = tokio::task::spawn_blocking(move || apps.remove(&lookup))
        .await
        .map_err(ApiError::internal)??;
    match removal {
        Removal::Removed => Ok(StatusCode::NO_CONTENT.into_response()),
        Removal::NotFound => Err(ApiError::not_found(format!("no app {id:?}"))),
        Removal::InUse {
            name,
            version,
            assignments,
        } => Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!(
                "应用包 {name} 版本 {version} 正在被 {assignments} 个部署使用，无法删除 \
                 (app {name} version {version} is used by {assignments} assignment(s))"
            ),
        }),
    }
}

/// Bytes read from a stored zip per chunk sent.
const CHUNK: usize = 64 << 10;

/// A stored zip, streamed (it may be far larger than any JSON answer).
async fn artifact(
    State(state): State<AppState>,
    UrlPath(file): UrlPath<String>,
) -> Result<Response, ApiError> {
    let apps = apps(&state)?;
    let missing = || ApiError::not_found(format!("no artifact {file:?}"));
    let path = apps.file(&file).ok_or_else(missing)?;
    let handle = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => {
            return Err(ApiError::internal(format!(
                "opening {}: {e}",
                path.display()
            )))
        }
    };
    let len = handle
        .metadata()
        .await
        .map_err(|e| ApiError::internal(format!("reading {}: {e}", path.display())))?
        .len();
    let chunks = futures_util::stream::unfold(Some(handle), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(response)
}
