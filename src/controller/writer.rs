//! Who made a write: the process behind each request, so the recovery
//! judgement can rest on which run wrote what rather than on arrival order.
//!
//! A client may name its process (`X-Plum-Writer: <pid>`, plumdash's SDK);
//! that is believed only from loopback, where the pid means a process here.
//! Any other loopback client (the original C++ SDK, `curl` in a script) is
//! traced: the kernel gives the client socket's inode for the connection's
//! two addresses (`sock_diag`; `/proc/net/tcp` when it does not answer), and
//! the processes this one started (the supervised workers and what they run,
//! the local agents' workers) are searched for the descriptor holding it,
//! those that wrote lately first. Only those few are looked at: a
//! process we did not start is not traced, and its write names no writer.
//! Either way the writer is given with its parents, up to (not including)
//! this process, so a `curl` names the worker script it runs under.

use super::relock;
use crate::kv::model::{Writer, WriterVia, WRITER_CHAIN_MAX};
use crate::supervisor::procstats::proc_stat;
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Both ends of a connection to the controller, put on each request, and
/// the writer last resolved on it: a keep-alive client's process is traced
/// once, not at every write.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    last: Arc<Mutex<Option<Resolved>>>,
}

/// A header as a request sent it, and the writer it resolved to.
type Resolved = (Option<String>, Option<Writer>);

impl ConnInfo {
    pub fn new(peer: SocketAddr, local: SocketAddr) -> ConnInfo {
        ConnInfo {
            peer,
            local,
            last: Arc::default(),
        }
    }

    /// The writer resolved on this connection for the same `header`, if any.
    pub fn cached(&self, header: &Option<String>) -> Option<Option<Writer>> {
        let last = self.last.lock().ok()?;
        last.as_ref()
            .filter(|(h, _)| h == header)
            .map(|(_, w)| w.clone())
    }

    /// Remembers what `header` resolved to on this connection.
    pub fn remember(&self, header: Option<String>, writer: Option<Writer>) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some((header, writer));
        }
    }
}

/// Most of this process's descendants searched for a socket.
const MAX_DESCENDANTS: usize = 512;

/// The writer of a request from `conn`, named by `header` or traced by its
/// socket. Blocking (reads `/proc`): a trace belongs off the async workers;
/// a named pid ([`names_a_pid`]) is a few small reads.
pub fn resolve(header: Option<&str>, conn: Option<ConnInfo>) -> Option<Writer> {
    let conn = conn?;
    // A pid from another machine means nothing here.
    if !conn.peer.ip().is_loopback() {
        return None;
    }
    let own = std::process::id();
    if let Some(pid) = named_pid(header) {
        return Some(Writer {
            pids: chain(pid, own),
            via: WriterVia::Header,
        });
    }
    let recent: Vec<u32> = relock(&RECENT_OWNERS).iter().copied().collect();
    // Asked of the kernel at most once: first for the recent owners, when
    // there are any, else for the search below.
    let asked = !recent.is_empty();
    let exact = asked.then(|| diag_inode(conn.peer, conn.local)).flatten();
    let known = exact.and_then(|inode| {
        recent
            .into_iter()
            .find(|pid| holds_socket(*pid, inode) && descends_from(*pid, own))
    });
    let owner = match known {
        Some(pid) => pid,
        None => {
            // No process of ours can hold it: no need to look the socket up.
            let ours = descendants(own);
            if ours.is_empty() {
                return None;
            }
            let inode = if asked {
                exact
            } else {
                diag_inode(conn.peer, conn.local)
            };
            let inode = inode.or_else(|| socket_inode(conn.peer.port(), conn.local.port()))?;
            ours.into_iter().find(|pid| holds_socket(*pid, inode))?
        }
    };
    let mut recent = relock(&RECENT_OWNERS);
    recent.retain(|pid| *pid != owner);
    recent.push_front(owner);
    recent.truncate(RECENT_OWNERS_MAX);
    drop(recent);
    Some(Writer {
        pids: chain(owner, own),
        via: WriterVia::Socket,
    })
}

/// The processes whose sockets were traced last, looked at first: a client
/// that opens a connection for every request (the original C++ SDK) is
/// found again without searching every descendant's descriptors.
static RECENT_OWNERS: Mutex<VecDeque<u32>> = Mutex::new(VecDeque::new());
const RECENT_OWNERS_MAX: usize = 32;

/// `pid` is still below `own` (a pid can be reused by a process we did not start).
fn descends_from(pid: u32, own: u32) -> bool {
    let mut at = pid;
    for _ in 0..64 {
        match proc_stat(at).map(|s| s.ppid) {
            Some(p) if p == own => return true,
            Some(p) if p > 1 => at = p,
            _ => return false,
        }
    }
    false
}

/// The pid a request names in `X-Plum-Writer`, if any (0 names nobody).
fn named_pid(header: Option<&str>) -> Option<u32> {
    header
        .and_then(|h| h.trim().parse::<u32>().ok())
        .filter(|pid| *pid != 0)
}

/// The request names its writer's pid: [`resolve`] needs only a few small
/// reads then, not a search.
pub fn names_a_pid(header: Option<&str>) -> bool {
    named_pid(header).is_some()
}

/// `pid` and its parents, stopping before `own` (this process) or init.
///
/// A worker that opens a connection for every write (the original SDK's
/// way, and kv-demo's) is resolved at every write, a thousand workers
/// thousands of times a second: see [`remembered_chain`].
fn chain(pid: u32, own: u32) -> Vec<u32> {
    remembered_chain(&CHAINS, pid, own, Instant::now())
}

/// [`chain`] from `chains`.
/// - Believed without a look for [`LOOKED_FRESH`] after its process was
///   last looked at: the kernel hands pids out in turn up to `pid_max`
///   (32,768 by default), so a pid comes back only after that many process
///   starts, not within seconds.
/// - Then looked at (one read of `/proc/<pid>/stat`) and kept while it is
///   the same process (start time) with the same parent (a parent that dies
///   changes the process's own `ppid`).
/// - Its ancestors above the parent are walked again after [`WALKED_FRESH`].
fn remembered_chain(chains: &Chains, pid: u32, own: u32, now: Instant) -> Vec<u32> {
    if let Some(known) = relock(chains).get(&pid) {
        if known.own == own && now.duration_since(known.looked) < LOOKED_FRESH {
            return known.pids.clone();
        }
    }
    let Some(first) = proc_stat(pid) else {
        relock(chains).remove(&pid);
        return vec![pid];
    };
    let seen = (first.start_ticks, first.ppid);
    if let Some(known) = relock(chains).get_mut(&pid) {
        if known.own == own && known.seen == seen && now.duration_since(known.walked) < WALKED_FRESH
        {
            known.looked = now;
            return known.pids.clone();
        }
    }
    let mut pids = vec![pid];
    let mut parent = Some(first.ppid);
    while pids.len() < WRITER_CHAIN_MAX {
        match parent {
            Some(p) if p > 1 && p != own && !pids.contains(&p) => {
                pids.push(p);
                parent = proc_stat(p).map(|s| s.ppid);
            }
            _ => break,
        }
    }
    let mut chains = relock(chains);
    if chains.len() >= CHAINS_MAX {
        // Full: keep the writers of the last few seconds (a worker that
        // restarts is a new pid each run, so most entries are of the dead).
        chains.retain(|_, c| now.duration_since(c.looked) < LOOKED_FRESH);
        if chains.len() >= CHAINS_MAX {
            chains.clear();
        }
    }
    let known = KnownChain {
        seen,
        own,
        walked: now,
        looked: now,
        pids: pids.clone(),
    };
    chains.insert(pid, known);
    pids
}

/// A chain walked: from the process that started at `seen.0` with parent
/// `seen.1`, up to `own`.
struct KnownChain {
    seen: (u64, u32),
    own: u32,
    walked: Instant,
    looked: Instant,
    pids: Vec<u32>,
}

type Chains = Mutex<std::collections::HashMap<u32, KnownChain>>;

/// How long a chain is believed without looking at its process: longer
/// than a worker's step (kv-demo's is 2 s), so most writes read nothing.
const LOOKED_FRESH: Duration = Duration::from_secs(5);
/// How long a chain's ancestors above the parent are believed. Longer than
/// a worker's step, so a worker writing every second is walked once.
const WALKED_FRESH: Duration = Duration::from_secs(30);
/// Most chains kept: a thousand workers whose runs each start a process
/// (a pid each) fill it in about a minute, then the stale are dropped.
const CHAINS_MAX: usize = 8192;
static CHAINS: std::sync::LazyLock<Chains> = std::sync::LazyLock::new(Mutex::default);

/// Every process below `root` (children of all its threads, recursively).
fn descendants(root: u32) -> Vec<u32> {
    let mut found: BTreeSet<u32> = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path().join("children");
            let Ok(children) = std::fs::read_to_string(path) else {
                continue;
            };
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if found.len() >= MAX_DESCENDANTS {
                    return found.into_iter().collect();
                }
                if found.insert(child) {
                    todo.push(child);
                }
            }
        }
    }
    found.into_iter().collect()
}

/// The inode of the client's end of a connection, asked of the kernel by its
/// exact addresses (`sock_diag`, what `ss` uses): one lookup, where reading
/// `/proc/net/tcp` walks the whole table, milliseconds a read. `None` when
/// the kernel does not answer (then the table is read).
fn diag_inode(client: SocketAddr, server: SocketAddr) -> Option<u64> {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket};

    let family = if client.is_ipv4() { AF_INET } else { AF_INET6 };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: client.port(),
                destination_port: server.port(),
                source_address: client.ip(),
                destination_address: server.ip(),
                interface_id: 0,
                // All ones: no cookie, find the socket by its addresses.
                cookie: [0xff; 8],
            },
        })
        .into(),
    );
    request.finalize();
    let mut out = vec![0; request.buffer_len()];
    request.serialize(&mut out);
    let socket = Socket::new(NETLINK_SOCK_DIAG).ok()?;
    socket
        .send_to(&out, &netlink_sys::SocketAddr::new(0, 0), 0)
        .ok()?;
    let mut answer = Vec::with_capacity(4096);
    socket.recv(&mut answer, 0).ok()?;
    match NetlinkMessage::<SockDiagMessage>::deserialize(&answer)
        .ok()?
        .payload
    {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(found)) => {
            Some(u64::from(found.header.inode)).filter(|i| *i != 0)
        }
        // An error (no such socket): gone, or not ours to see.
        _ => None,
    }
}

/// The inode of the client's end of a loopback connection: the socket whose
/// local port is the client's and whose remote port is ours.
fn socket_inode(client_port: u16, server_port: u16) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|path| {
        let table = std::fs::read_to_string(path).ok()?;
        table
            .lines()
            .skip(1)
            .find_map(|line| inode_if_match(line, client_port, server_port))
    })
}

/// One line of `/proc/net/tcp`: `sl local rem st tx:rx tr:when retr uid timeout inode …`.
fn inode_if_match(line: &str, client_port: u16, server_port: u16) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    let (local, remote, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
    (port(local)? == client_port && port(remote)? == server_port)
        .then(|| inode.parse().ok())
        .flatten()
        .filter(|i| *i != 0)
}

/// `pid` has a descriptor open on socket `inode`.
fn holds_socket(pid: u32, inode: u64) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let want = format!("socket:[{inode}]");
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == want.as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection remembers what its last header resolved to, and only that.
    #[test]
    fn a_connection_remembers_its_last_writer_per_header() {
        let conn = ConnInfo::new(
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:8080".parse().unwrap(),
        );
        assert_eq!(conn.cached(&None), None);
        let w = Writer {
            pids: vec![42],
            via: WriterVia::Header,
        };
        conn.remember(Some("42".into()), Some(w.clone()));
        assert_eq!(conn.cached(&Some("42".into())), Some(Some(w)));
        assert_eq!(conn.cached(&Some("43".into())), None, "another header");
        assert_eq!(conn.clone().cached(&None), None, "shared, and header-keyed");
    }
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// A chain is the process and its parents, believed for a while
    /// without a look; once its process is gone, no parents are claimed.
    #[test]
    fn a_chain_names_the_parents_and_never_outlives_its_process_for_long() {
        let chains = Chains::default();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let (pid, me) = (child.id(), std::process::id());
        let t0 = Instant::now();
        let first = remembered_chain(&chains, pid, 0, t0);
        assert_eq!(&first[..2], &[pid, me], "{first:?}");
        assert_eq!(
            remembered_chain(&Chains::default(), pid, me, t0),
            vec![pid],
            "stops before `own`"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let soon = t0 + Duration::from_millis(500);
        assert_eq!(remembered_chain(&chains, pid, 0, soon), first, "believed");
        let later = t0 + LOOKED_FRESH;
        assert_eq!(remembered_chain(&chains, pid, 0, later), vec![pid], "gone");
    }

    #[test]
    fn a_proc_net_tcp_line_gives_the_client_sockets_inode() {
        let line = "   3: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(inode_if_match(line, 0xA1B2, 0x1F90), Some(424242));
        assert_eq!(
            inode_if_match(line, 0x1F90, 0xA1B2),
            None,
            "the server's end"
        );
        assert_eq!(inode_if_match("garbage", 1, 2), None);
    }

    #[test]
    fn a_header_is_believed_only_from_loopback() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let remote = ConnInfo::new("10.1.2.3:40000".parse().unwrap(), local);
        assert_eq!(resolve(Some("123"), Some(remote)), None);
        let here = ConnInfo::new("127.0.0.1:40000".parse().unwrap(), local);
        let w = resolve(Some(&std::process::id().to_string()), Some(here)).unwrap();
        assert_eq!(
            (w.pid(), w.via),
            (Some(std::process::id()), WriterVia::Header)
        );
        assert_eq!(resolve(None, None), None);
    }

    /// The kernel's exact lookup finds the same socket as the table, for
    /// both address families, and nothing for a connection that is not there.
    #[test]
    fn the_exact_lookup_agrees_with_the_table() {
        for host in ["127.0.0.1", "::1"] {
            let Ok(listener) = TcpListener::bind((host, 0)) else {
                continue; // no IPv6 here
            };
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (_server_end, peer) = listener.accept().unwrap();
            let local = listener.local_addr().unwrap();
            let exact = diag_inode(peer, local);
            assert!(exact.is_some(), "{host}: the kernel answers");
            assert_eq!(exact, socket_inode(peer.port(), local.port()), "{host}");
            drop(client);
        }
        let nowhere: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(diag_inode(nowhere, nowhere), None);
    }

    /// A child that opens a connection per request (the original SDK) is
    /// traced each time, the second time from the recent owners.
    #[test]
    fn a_child_reconnecting_is_traced_on_every_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "for i in 1 2; do exec 3<>/dev/tcp/127.0.0.1/{port}; echo hi >&3; \
                 read -t 10 line <&3; exec 3>&-; done"
            ))
            .spawn()
            .unwrap();
        for round in 0..2 {
            let (mut conn, peer) = listener.accept().unwrap();
            let mut buf = [0u8; 3];
            conn.read_exact(&mut buf).unwrap();
            let w = resolve(None, Some(ConnInfo::new(peer, conn.local_addr().unwrap())));
            let _ = conn.write_all(b"bye\n");
            assert_eq!(
                w.and_then(|w| w.pid()),
                Some(child.id()),
                "connection {round}"
            );
            assert!(relock(&RECENT_OWNERS).contains(&child.id()));
        }
        let _ = child.wait();
    }

    /// A child's loopback connection is traced to the child, through `/proc`.
    #[test]
    fn a_childs_connection_is_traced_to_the_child() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // A child that connects and waits for an answer, as a client does.
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "exec 3<>/dev/tcp/127.0.0.1/{port}; echo hi >&3; read -t 10 line <&3"
            ))
            .spawn()
            .unwrap();
        let (mut conn, peer) = listener.accept().unwrap();
        let mut buf = [0u8; 3];
        conn.read_exact(&mut buf).unwrap();
        let info = ConnInfo::new(peer, conn.local_addr().unwrap());
        let w = resolve(None, Some(info));
        let _ = conn.write_all(b"bye\n");
        let _ = child.wait();
        let w = w.expect("traced");
        assert_eq!(w.pid(), Some(child.id()));
        assert_eq!(w.via, WriterVia::Socket);
        // A connection of this process itself is not a writer we started.
        let mine = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (theirs, peer) = listener.accept().unwrap();
        let info = ConnInfo::new(peer, theirs.local_addr().unwrap());
        assert_eq!(resolve(None, Some(info)), None);
        drop(mine);
    }
}
