//! Which cores the client threads run on.
//!
//! By default the client keeps off the server's cores: it finds the process listening on the
//! target port (`/proc/net/tcp` and `/proc/net/tcp6` give the listening socket's inode, and
//! `/proc/<pid>/fd/*` links name `socket:[inode]`), reads `Cpus_allowed_list` of each of that
//! process's threads, takes the cores of the threads that are pinned (allowed fewer than all
//! cores), and uses the cores this process may run on minus those. If that leaves nothing, or
//! the server cannot be found (another user's process, another network namespace), it uses all
//! cores. Either way it says what it found.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The cores chosen for the client threads and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreChoice {
    /// Cores to pin client threads to, in order; never empty unless this process's own
    /// affinity could not be read (then threads are not pinned).
    pub cores: Vec<usize>,
    /// Cores the server was found to be pinned to (empty if unknown or unpinned).
    pub server_cores: Vec<usize>,
    /// One sentence saying how the cores were chosen.
    pub reason: String,
}

/// Cores this process may run on (its affinity mask), ascending.
pub fn own_cores() -> Vec<usize> {
    shardnet::allowed_cores()
}

/// Pins the calling thread to `core`; false if the OS refused.
pub fn pin_current_thread(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}

/// Chooses cores for the client: `explicit` if given (the `--cores` option), else the cores
/// the server listening on `addr` does not use, else all of ours.
pub fn choose(addr: SocketAddr, explicit: Option<&[usize]>) -> CoreChoice {
    let own = own_cores();
    if let Some(list) = explicit {
        let cores: Vec<usize> = list.to_vec();
        return CoreChoice {
            reason: format!("cores {} given with --cores", fmt_list(&cores)),
            cores,
            server_cores: Vec::new(),
        };
    }
    let all_note = format!("all cores {}", fmt_list(&own));
    let pids = listening_pids(addr);
    if pids.is_empty() {
        return CoreChoice {
            cores: own,
            server_cores: Vec::new(),
            reason: format!(
                "no process listening on port {} is visible in /proc, so using {all_note}",
                addr.port()
            ),
        };
    }
    let own_set: BTreeSet<usize> = own.iter().copied().collect();
    let online = online_cpu_count().unwrap_or(own.len());
    let mut server: BTreeSet<usize> = BTreeSet::new();
    for &pid in &pids {
        for allowed in thread_affinities(pid) {
            if allowed.len() < online {
                server.extend(allowed);
            }
        }
    }
    let pid_note = format!(
        "server pid {} (listening on port {})",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        addr.port()
    );
    if server.is_empty() {
        return CoreChoice {
            cores: own,
            server_cores: Vec::new(),
            reason: format!("{pid_note} has no pinned threads, so using {all_note}"),
        };
    }
    let server_cores: Vec<usize> = server.iter().copied().collect();
    let free: Vec<usize> = own_set.difference(&server).copied().collect();
    if free.is_empty() {
        CoreChoice {
            cores: own,
            reason: format!(
                "{pid_note} is pinned to {}, which leaves no other core, so sharing {all_note}",
                fmt_list(&server_cores)
            ),
            server_cores,
        }
    } else {
        CoreChoice {
            reason: format!(
                "{pid_note} is pinned to {}, so using the other cores {}",
                fmt_list(&server_cores),
                fmt_list(&free)
            ),
            cores: free,
            server_cores,
        }
    }
}

/// `[0, 2, 3]`.
pub fn fmt_list(cores: &[usize]) -> String {
    let items: Vec<String> = cores.iter().map(usize::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn online_cpu_count() -> Option<usize> {
    let text = fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    parse_cpu_list(text.trim()).map(|s| s.len())
}

/// Parses a kernel CPU list such as `0-3,5,7-8`. `None` if malformed.
pub fn parse_cpu_list(text: &str) -> Option<BTreeSet<usize>> {
    let mut set = BTreeSet::new();
    if text.is_empty() {
        return Some(set);
    }
    for part in text.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 65_536 {
                    return None;
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(part.parse().ok()?);
            }
        }
    }
    Some(set)
}

/// Inodes of sockets listening on `addr`'s port at `addr`'s address or a wildcard address.
fn listening_inodes(addr: SocketAddr) -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(file) {
            for line in text.lines().skip(1) {
                if let Some((local, inode)) = parse_listener(line) {
                    if local.port() == addr.port() && address_matches(local.ip(), addr.ip()) {
                        inodes.insert(inode);
                    }
                }
            }
        }
    }
    inodes
}

/// From a `/proc/net/tcp{,6}` line, the local address and inode of a socket in LISTEN state.
pub fn parse_listener(line: &str) -> Option<(SocketAddr, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 10 || fields[3] != "0A" {
        return None;
    }
    let (ip_hex, port_hex) = fields[1].split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let ip = match ip_hex.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip_hex, 16).ok()?.to_ne_bytes(),
        )),
        32 => {
            let mut bytes = [0_u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(ip_hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    let inode = fields[9].parse().ok()?;
    Some((SocketAddr::new(ip, port), inode))
}

fn address_matches(local: IpAddr, target: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    local.is_unspecified() || canon(local) == canon(target)
}

/// Processes holding a socket that listens on `addr`.
fn listening_pids(addr: SocketAddr) -> Vec<u32> {
    let inodes = listening_inodes(addr);
    if inodes.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    let mut pids = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path()).ok().is_some_and(|target| {
                target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
                    .is_some_and(|inode| inodes.contains(&inode))
            })
        });
        if holds {
            pids.push(pid);
        }
    }
    pids
}

/// The allowed-CPU set of each thread of `pid`.
fn thread_affinities(pid: u32) -> Vec<BTreeSet<usize>> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let status = fs::read_to_string(task.path().join("status")).ok()?;
            let list = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            parse_cpu_list(list.trim())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let s = |t| parse_cpu_list(t).map(|s| s.into_iter().collect::<Vec<_>>());
        assert_eq!(s("0-3,5"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(s("1"), Some(vec![1]));
        assert_eq!(s(""), Some(vec![]));
        assert_eq!(s("3-1"), None);
        assert_eq!(s("a"), None);
        assert_eq!(s("0-999999999"), None);
    }

    #[test]
    fn listener_lines() {
        let v4 = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_listener(v4),
            Some(("127.0.0.1:8080".parse().unwrap(), 4242))
        );
        let established = v4.replace(" 0A ", " 01 ");
        assert_eq!(parse_listener(&established), None);
        let v6 = "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_listener(v6), Some(("[::1]:80".parse().unwrap(), 77)));
        assert_eq!(parse_listener("garbage"), None);
        assert_eq!(parse_listener(""), None);
    }

    #[test]
    fn wildcards_and_mapped_addresses_match() {
        let t: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(address_matches("0.0.0.0".parse().unwrap(), t));
        assert!(address_matches("::".parse().unwrap(), t));
        assert!(address_matches("::ffff:127.0.0.1".parse().unwrap(), t));
        assert!(!address_matches("127.0.0.2".parse().unwrap(), t));
    }

    #[test]
    fn finds_our_own_listener_when_not_excluded() {
        // A listener in this process: `choose` skips our own pid, so it reports no server,
        // but the inode lookup must see the socket.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(!listening_inodes(addr).is_empty());
        let c = choose(addr, None);
        assert!(!c.cores.is_empty());
        assert!(c.reason.contains("no process listening"), "{}", c.reason);
        let e = choose(addr, Some(&[1]));
        assert_eq!(e.cores, [1]);
    }
}
