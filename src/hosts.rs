//! Test hosts: machines made of Linux namespaces, so the network between
//! them can fail the way real links do. Each host is a network namespace
//! with one veth link (`eth0`, an address in 10.213.0.0/24) to a bridge that
//! lives in a switch namespace of its own; programs start in a PID
//! namespace of their own too (`unshare`), so no host sees another's
//! processes. Nothing is made in the machine's own namespace: no interface,
//! no address, no route, no firewall rule.
//!
//! Faults are on a host's link, as Jepsen's partition nemeses and Chaos
//! Mesh's `NetworkChaos` do them: packets dropped both ways or one way, a
//! share lost (nftables, in the host's own namespace), delay (`tc netem`,
//! when the kernel has it). Everything is removed on drop; namespaces a
//! crashed run left behind are removed by the next one.
//!
//! Needs root, `ip` (iproute2), `nft` (nftables) and `unshare` (util-linux).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The controller's host, beside one per node.
pub const CONTROLLER_HOST: &str = "controller";

/// Every namespace made here starts with this, then the pid that made it.
const PREFIX: &str = "plumdash-";
/// The hosts' private network (inside the namespaces only).
const SUBNET: [u8; 3] = [10, 213, 0];
/// The nftables table a fault lives in, in the host's own namespace.
const FAULT_TABLE: &str = "plumdash_fault";

/// Test hosts made by this process so far (names stay unique).
static MADE: AtomicU32 = AtomicU32::new(0);

/// What is done to a host's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFault {
    /// Every packet in or out dropped: the host is cut off.
    Partition,
    /// Outgoing packets dropped: it hears the others but cannot reach them.
    CutOutgoing,
    /// Incoming packets dropped: it reaches the others but cannot hear them.
    CutIncoming,
    /// A degraded link: delay and a share of packets lost, both ways.
    Degraded(Netem),
}

impl LinkFault {
    /// The fault as one short phrase (`partitioned`, `loss 5%` …).
    pub fn describe(&self) -> String {
        match self {
            LinkFault::Partition => "partitioned".into(),
            LinkFault::CutOutgoing => "cut one way (hears, cannot reach)".into(),
            LinkFault::CutIncoming => "cut one way (reaches, cannot hear)".into(),
            LinkFault::Degraded(netem) => netem.to_string(),
        }
    }
}

/// A degraded link, written as `tc netem` takes it: `delay 200ms loss 5%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Netem {
    pub delay: Option<Duration>,
    /// Percent of packets dropped in each direction, 1..=100.
    pub loss_pct: Option<u8>,
}

impl std::fmt::Display for Netem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.delay {
            parts.push(format!("delay {}", humantime::format_duration(d)));
        }
        if let Some(p) = self.loss_pct {
            parts.push(format!("loss {p}%"));
        }
        write!(f, "{}", parts.join(" "))
    }
}

impl std::str::FromStr for Netem {
    type Err = String;

    /// `delay 200ms`, `loss 5%`, or both, in either order.
    fn from_str(text: &str) -> Result<Netem, String> {
        let mut netem = Netem::default();
        let mut words = text.split_whitespace();
        while let Some(word) = words.next() {
            let value = words
                .next()
                .ok_or_else(|| format!("{word:?} in {text:?} needs a value"))?;
            match word {
                "delay" => {
                    let d = humantime::parse_duration(value)
                        .map_err(|e| format!("delay {value:?} is not a duration ({e})"))?;
                    netem.delay = Some(d);
                }
                "loss" => {
                    let pct = value
                        .strip_suffix('%')
                        .and_then(|p| p.parse::<u8>().ok())
                        .filter(|p| (1..=100).contains(p))
                        .ok_or_else(|| format!("loss {value:?} is not a whole percent 1%..100%"))?;
                    netem.loss_pct = Some(pct);
                }
                other => {
                    return Err(format!(
                        "{other:?} in {text:?}: only \"delay D\" and \"loss P%\" are known"
                    ))
                }
            }
        }
        if netem == Netem::default() {
            return Err(format!(
                "{text:?} asks for nothing: write e.g. \"delay 200ms loss 5%\""
            ));
        }
        Ok(netem)
    }
}

/// One host: its namespace and address.
#[derive(Debug)]
struct Host {
    name: String,
    netns: String,
    addr: Ipv4Addr,
}

/// A set of hosts on one bridge; dropping it removes every namespace (and
/// with them the links, the bridge and the fault tables).
#[derive(Debug)]
pub struct TestHosts {
    switch: String,
    hosts: Vec<Host>,
    /// The fault on each host's link now, by host name.
    faults: Mutex<Vec<(String, LinkFault)>>,
    /// `remove` ran.
    removed: Mutex<bool>,
}

impl TestHosts {
    /// Makes one host per name (addresses .1, .2, … in order) and the switch
    /// between them.
    pub fn create(names: &[&str]) -> Result<TestHosts> {
        remove_leftovers();
        let tag = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let mut made = TestHosts {
            switch: format!("{tag}-switch"),
            hosts: Vec::new(),
            faults: Mutex::new(Vec::new()),
            removed: Mutex::new(false),
        };
        // From here on a failure drops `made`, which removes what exists.
        ip(&["netns", "add", &made.switch])?;
        ipn(&made.switch, &["link", "add", "br0", "type", "bridge"])?;
        ipn(&made.switch, &["link", "set", "br0", "up"])?;
        for (i, name) in names.iter().enumerate() {
            let octet = u8::try_from(i + 1)
                .ok()
                .filter(|o| *o < 255)
                .context("too many test hosts for one /24")?;
            let host = Host {
                name: name.to_string(),
                netns: format!("{tag}-{name}"),
                addr: Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], octet),
            };
            ip(&["netns", "add", &host.netns])?;
            made.hosts.push(host);
            let host = made.hosts.last().context("the host just added")?;
            let port = format!("p{octet}");
            ipn(
                &made.switch,
                &[
                    "link",
                    "add",
                    &port,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    &host.netns,
                ],
            )?;
            ipn(&made.switch, &["link", "set", &port, "master", "br0", "up"])?;
            ipn(
                &host.netns,
                &["addr", "add", &format!("{}/24", host.addr), "dev", "eth0"],
            )?;
            ipn(&host.netns, &["link", "set", "eth0", "up"])?;
            ipn(&host.netns, &["link", "set", "lo", "up"])?;
        }
        Ok(made)
    }

    fn host(&self, name: &str) -> Result<&Host> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .with_context(|| format!("no test host named {name:?}"))
    }

    /// The host's address on the hosts' network.
    pub fn addr(&self, name: &str) -> Result<Ipv4Addr> {
        Ok(self.host(name)?.addr)
    }

    /// The name of the host's network namespace (for `ip netns exec`).
    pub fn netns(&self, name: &str) -> Result<String> {
        Ok(self.host(name)?.netns.clone())
    }

    /// A TCP listener on the host's address (port 0: any free one), made from
    /// this process: a thread enters the host's network namespace, binds and
    /// leaves; the socket stays in that namespace.
    pub fn bind(&self, name: &str, port: u16) -> Result<std::net::TcpListener> {
        let host = self.host(name)?;
        let addr = SocketAddr::from((host.addr, port));
        let listener = in_netns(&host.netns, move || {
            std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))
        })??;
        listener
            .set_nonblocking(true)
            .context("making the listener non-blocking")?;
        Ok(listener)
    }

    /// A TCP connection made from the host (for tests of its link).
    pub fn connect(
        &self,
        name: &str,
        to: SocketAddr,
        timeout: Duration,
    ) -> Result<std::net::TcpStream> {
        let host = self.host(name)?;
        in_netns(&host.netns, move || {
            std::net::TcpStream::connect_timeout(&to, timeout)
                .with_context(|| format!("connecting to {to}"))
        })?
    }

    /// A command that runs `program` on the host: in its network namespace,
    /// as the first process of a PID namespace of its own (`/proc` mounted
    /// afresh, so it sees only its host's processes). The process started is
    /// `unshare`, which passes no signal on: signal its process group (the
    /// program is in it), or the program itself; when the program, the PID
    /// namespace's first process, dies, every process on the host dies too.
    pub fn command(&self, name: &str, program: &std::path::Path) -> Result<Command> {
        let host = self.host(name)?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &host.netns])
            .args(["unshare", "--pid", "--fork", "--mount-proc", "--"])
            .arg(program);
        Ok(command)
    }

    /// Puts `fault` on the host's link, replacing any fault it had.
    pub fn apply(&self, name: &str, fault: &LinkFault) -> Result<()> {
        self.heal(name)?;
        let host = self.host(name)?;
        let (input, output) = match fault {
            LinkFault::Partition => ("drop", "drop"),
            LinkFault::CutOutgoing => ("", "drop"),
            LinkFault::CutIncoming => ("drop", ""),
            LinkFault::Degraded(netem) => {
                if let Some(delay) = netem.delay {
                    add_delay(&host.netns, delay)?;
                }
                match netem.loss_pct {
                    Some(_) => ("lose", "lose"),
                    None => ("", ""),
                }
            }
        };
        let rule = |verdict: &str, dir: &str| match (verdict, fault) {
            ("", _) => String::new(),
            (
                "lose",
                LinkFault::Degraded(Netem {
                    loss_pct: Some(p), ..
                }),
            ) if *p < 100 => {
                format!("{dir} \"eth0\" numgen random mod 100 < {p} drop;")
            }
            _ => format!("{dir} \"eth0\" drop;"),
        };
        let script = format!(
            "table inet {FAULT_TABLE} {{\n\
             chain input {{ type filter hook input priority 0; policy accept; {} }}\n\
             chain output {{ type filter hook output priority 0; policy accept; {} }}\n\
             }}\n",
            rule(input, "iifname"),
            rule(output, "oifname"),
        );
        nft(&host.netns, &script)?;
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.to_string(), *fault));
        Ok(())
    }

    /// Whether links can be delayed here (`tc netem`): tried on a host of
    /// its own, the one line of [`add_delay`] when not.
    pub fn check_delay() -> Result<()> {
        let probe = TestHosts::create(&["probe"])?;
        let netns = probe.netns("probe")?;
        add_delay(&netns, Duration::from_millis(1))
    }

    /// Removes any fault from the host's link.
    pub fn heal(&self, name: &str) -> Result<()> {
        let host = self.host(name)?;
        let mut faults = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(i) = faults.iter().position(|(h, _)| h == name) else {
            return Ok(());
        };
        let (_, fault) = faults.remove(i);
        if matches!(fault, LinkFault::Degraded(Netem { delay: Some(_), .. })) {
            ipn_tc(&host.netns, &["qdisc", "del", "dev", "eth0", "root"])?;
        }
        nft(&host.netns, &format!("delete table inet {FAULT_TABLE}\n"))
    }

    /// The fault on the host's link now, if any.
    pub fn fault(&self, name: &str) -> Option<LinkFault> {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(h, _)| h == name)
            .map(|(_, f)| *f)
    }
}

impl TestHosts {
    /// Removes every namespace (and with them the links, the bridge and the
    /// fault tables); again, nothing. Processes still in a host keep its
    /// network alive, unnamed, until they end.
    pub fn remove(&self) {
        let mut removed = self.removed.lock().unwrap_or_else(PoisonError::into_inner);
        if *removed {
            return;
        }
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.netns]);
        }
        let _ = ip(&["netns", "del", &self.switch]);
        *removed = true;
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Runs `job` on a thread that has entered the network namespace `netns`
/// (a thread's network namespace is its own; the process's stays as it was).
fn in_netns<T: Send + 'static>(netns: &str, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = format!("/run/netns/{netns}");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("entering the host's network namespace")?;
        Ok(job())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread in {netns} panicked"))?
}

/// `tc netem` delay, or the one line saying this kernel cannot.
fn add_delay(netns: &str, delay: Duration) -> Result<()> {
    let ms = format!("{}ms", delay.as_millis());
    let out = Command::new("ip")
        .args([
            "netns", "exec", netns, "tc", "qdisc", "replace", "dev", "eth0",
        ])
        .args(["root", "netem", "delay", &ms])
        .output()
        .context("running tc")?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    if said.contains("qdisc kind is unknown") {
        bail!(
            "delay needs the kernel's netem queueing discipline (sch_netem), which this \
             kernel lacks; loss works without it (nftables)"
        );
    }
    bail!("tc netem delay {ms}: {}", said.trim())
}

fn ipn_tc(netns: &str, args: &[&str]) -> Result<()> {
    let mut all = vec!["netns", "exec", netns, "tc"];
    all.extend_from_slice(args);
    ip(&all)
}

fn ipn(netns: &str, args: &[&str]) -> Result<()> {
    let mut all = vec!["-n", netns];
    all.extend_from_slice(args);
    ip(&all)
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs an nft script in `netns` (the host's own ruleset, never the machine's).
fn nft(netns: &str, script: &str) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running nft (nftables)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .context("writing the nft script")?;
    }
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        bail!(
            "nft in {netns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Removes namespaces made by a process of ours that no longer runs.
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netem_reads_as_tc_writes_it() {
        let n: Netem = "delay 200ms loss 5%".parse().unwrap();
        assert_eq!(n.delay, Some(Duration::from_millis(200)));
        assert_eq!(n.loss_pct, Some(5));
        assert_eq!(n.to_string(), "delay 200ms loss 5%");
        let n: Netem = "loss 40%".parse().unwrap();
        assert_eq!((n.delay, n.loss_pct), (None, Some(40)));
        for bad in [
            "",
            "loss",
            "loss 5",
            "loss 0%",
            "loss 101%",
            "jitter 3ms",
            "delay x",
        ] {
            assert!(bad.parse::<Netem>().is_err(), "{bad:?}");
        }
    }
}
