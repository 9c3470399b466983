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

/// The process provably writes to another controller than `url`: its
/// `CONTROLLER_BASE` names the same host on another port, or another IP
/// address. A host name that may resolve to ours (`plum-controller`) is not
/// proof, nor is a process without the variable (Plum's agent may not set it).
/// `names_nothing`: `url`'s host resolves to no address, so a base naming a
/// literal IP address is elsewhere too.
pub(super) fn writes_elsewhere(
    p: &crate::supervisor::ForeignProcess,
    url: &str,
    names_nothing: bool,
) -> bool {
    elsewhere(p.controller_base.as_deref(), url, names_nothing)
}

fn elsewhere(base: Option<&str>, url: &str, names_nothing: bool) -> bool {
    base_elsewhere(base, url) || (names_nothing && base.is_some_and(names_an_ip))
}

/// The base URL's host is a literal IP address.
fn names_an_ip(base: &str) -> bool {
    host_port(base).is_some_and(|(host, _)| ip_literal(&host).is_some())
}

/// A host written as an IP address (`10.0.0.5`, `[::1]`).
fn ip_literal(host: &str) -> Option<std::net::IpAddr> {
    host.trim_matches(['[', ']']).parse().ok()
}

/// `url`'s host (a name, not an address) resolves to no address now; a
/// lookup that takes over 2 s is not taken for an answer (false).
pub(super) async fn names_nothing(url: &str) -> bool {
    let Some((host, port)) = host_port(url) else {
        return false;
    };
    if names_an_ip(url) {
        return false;
    }
    let lookup = tokio::net::lookup_host(format!("{host}:{port}"));
    match tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().is_none(),
        Ok(Err(_)) => true,
        Err(_) => false,
    }
}

fn base_elsewhere(base: Option<&str>, url: &str) -> bool {
    let Some(base) = base else {
        return false;
    };
    let (Some(theirs), Some(ours)) = (host_port(base), host_port(url)) else {
        return false;
    };
    if theirs == ours {
        return false;
    }
    theirs.0 == ours.0 || (ip_literal(&theirs.0).is_some() && ip_literal(&ours.0).is_some())
}

/// `(host, port)` of `http://host:port/…` (the port defaulted by the scheme).
fn host_port(url: &str) -> Option<(String, u16)> {
    let url = normalize_url(url);
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let default = if scheme == "https" { 443 } else { 80 };
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => {
            Some((host.to_string(), port.parse().ok()?))
        }
        _ => Some((authority.to_string(), default)),
    }
}

fn normalize_url(url: &str) -> String {
    url.trim()
        .trim_end_matches('/')
        .to_ascii_lowercase()
        .replace("://localhost", "://127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_controller_base_that_provably_names_another_is_elsewhere() {
        let ours = "http://127.0.0.1:18771";
        assert!(base_elsewhere(Some("http://127.0.0.1:18999"), ours));
        assert!(base_elsewhere(Some("http://localhost:18999/"), ours));
        assert!(base_elsewhere(Some("http://10.0.0.5:18771"), ours));
        assert!(!base_elsewhere(Some("http://localhost:18771"), ours));
        assert!(!base_elsewhere(Some("http://plum-controller:8080"), ours));
        assert!(!base_elsewhere(None, ours));
        assert!(!base_elsewhere(Some("not a url"), ours));
        assert_eq!(
            host_port("http://[::1]:8080/x"),
            Some(("[::1]".to_string(), 8080))
        );
        assert_eq!(host_port("http://h"), Some(("h".to_string(), 80)));
    }

    #[test]
    fn a_url_that_names_nothing_owns_no_worker_writing_to_an_address() {
        let ours = "http://nowhere:1";
        let theirs = Some("http://10.213.0.1:43749");
        // A name against an address: not proof, unless our name resolves to nothing.
        assert!(!elsewhere(theirs, ours, false));
        assert!(elsewhere(theirs, ours, true));
        // A name of theirs may still be ours.
        assert!(!elsewhere(Some("http://plum-controller:1"), ours, true));
    }

    #[tokio::test]
    async fn only_a_name_that_resolves_to_nothing_names_nothing() {
        assert!(!names_nothing("http://127.0.0.1:8080").await);
        assert!(!names_nothing("http://localhost:8080").await);
        let started = std::time::Instant::now();
        // `.invalid` never resolves (RFC 2606); a resolver too slow to say so
        // within 2 s is no answer.
        assert!(
            names_nothing("http://nowhere.invalid:1").await
                || started.elapsed() >= std::time::Duration::from_secs(2)
        );
    }
}
