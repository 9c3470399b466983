//! Who already writes an app's namespace on this machine (`/proc`): `up`
//! refuses to start a second writer, and `up --nodes` watches only its own.

/// Live processes on this machine that run as workers of `app` against the
/// controller at `url` — e.g. left by an earlier `up` that was killed, or
/// started by hand. Strict: the process's `PLUM_APP_NAME` must be `app` (one
/// without it counts as the worker's default app), and its `CONTROLLER_BASE`
/// (or the worker's default) must name the same controller.
/// Under Plum's agent an instance is a tree (`sh`, `bash`, the worker, `tee`) that
/// all carry the app's variables: when one of an instance's processes runs the worker
/// program (`kv-demo` or `program`), only it is named, not its wrappers.
pub(super) fn live_writers(
    app: &str,
    url: &str,
    program: Option<&str>,
) -> Vec<crate::supervisor::ForeignProcess> {
    let found: Vec<_> = crate::supervisor::discover(app, &[])
        .into_iter()
        .filter(|p| match &p.app_name {
            Some(name) => name == app,
            None => app == crate::supervisor::WORKER_EXECUTABLE,
        })
        .filter(|p| writes_to(p, url))
        .collect();
    let is_worker = |p: &crate::supervisor::ForeignProcess| {
        p.name == crate::supervisor::WORKER_EXECUTABLE || Some(p.name.as_str()) == program
    };
    found
        .iter()
        .filter(|p| {
            let instance_has_worker = p.instance_id.is_some()
                && found
                    .iter()
                    .any(|q| q.instance_id == p.instance_id && is_worker(q));
            !instance_has_worker || is_worker(p)
        })
        .cloned()
        .collect()
}

/// The process writes to the controller at `url` (its `CONTROLLER_BASE`, or
/// the worker's default when it has none).
pub(super) fn writes_to(p: &crate::supervisor::ForeignProcess, url: &str) -> bool {
    let base = p.controller_base.as_deref();
    normalize_url(base.unwrap_or(crate::kv::DEFAULT_CONTROLLER_BASE)) == normalize_url(url)
}

fn normalize_url(url: &str) -> String {
    url.trim()
        .trim_end_matches('/')
        .to_ascii_lowercase()
        .replace("://localhost", "://127.0.0.1")
}
