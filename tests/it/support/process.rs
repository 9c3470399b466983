//! Processes of this machine as `/proc` shows them: found by their
//! environment, told alive from dead (a zombie is dead).

/// A live process of this machine, read from `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub name: String,
    pub state: char,
}

/// Live (not zombie) processes whose environment has `PLUM_INSTANCE_ID=<id>`.
pub fn processes_of_instance(id: &str) -> Vec<Proc> {
    let needle = format!("PLUM_INSTANCE_ID={id}");
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            continue;
        }
        if let Some(p) = proc_info(pid) {
            if p.state != 'Z' {
                found.push(p);
            }
        }
    }
    found.sort_by_key(|p| p.pid);
    found
}

/// The pids of `processes_of_instance`.
pub fn pids_of_instance(id: &str) -> Vec<u32> {
    processes_of_instance(id).iter().map(|p| p.pid).collect()
}

/// Name and state of `pid`, zombies included; `None` once it is reaped.
pub fn proc_info(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let state = stat[close + 1..].trim_start().chars().next()?;
    Some(Proc { pid, name, state })
}

/// True once `pid` is gone or dead (a zombie waiting for its parent, or `X`).
pub fn is_dead(pid: u32) -> bool {
    proc_info(pid).is_none_or(|p| p.state == 'Z' || p.state == 'X')
}
