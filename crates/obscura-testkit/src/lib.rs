//! Support for Obscura's integration tests against DCMTK's servers
//! (storescp, dcmqrscp): where its binaries are, a free loopback port, and
//! a server started on one and taken as ready only once that process itself
//! listens there. A dev-dependency of the crates whose tests start them.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A DCMTK binary, or None with a notice (tests then skip).
pub fn dcmtk(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not installed (apt-get install dcmtk)",
            p.display()
        );
        None
    }
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts the server `command` builds for a free port, once that process
/// itself listens there; it and its port. The port `free_port` released may
/// be taken by another test's server before this one binds it: this one then
/// exits (another port is tried), or, if it is still starting, a probe
/// connection would reach the other test's server. So readiness is the
/// child's own listening socket, not an answer on the port.
pub async fn spawn_listening(
    mut command: impl FnMut(u16) -> tokio::process::Command,
) -> (tokio::process::Child, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(&mut command(port));
        if owns_listener(&mut child, port).await {
            return (child, port);
        }
    }
    panic!("the server exited on 5 free ports");
}

/// Whether `child` comes to listen on TCP `port` (at most 10 s); false when
/// it exits first.
async fn owns_listener(child: &mut tokio::process::Child, port: u16) -> bool {
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let Some(pid) = child.id() else {
            return false;
        };
        let sockets = socket_inodes(pid);
        if listening_inodes(port).iter().any(|i| sockets.contains(i)) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server does not listen on {port}");
}

/// The inodes of the sockets listening on TCP `port` (IPv4 and IPv6), from
/// Linux's /proc/net/tcp and tcp6.
fn listening_inodes(port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && fields.get(3) == Some(&LISTEN) {
                inodes.extend(fields.get(9).and_then(|i| i.parse::<u64>().ok()));
            }
        }
    }
    inodes
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Spawns `cmd` with no input or output, killed when dropped.
fn spawn(cmd: &mut tokio::process::Command) -> tokio::process::Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Starts /usr/bin/dcmqrscp with one AE, `COMMON`, open to any peer
/// (read and write, storage in `dir/common`), on a free port once it
/// listens; it and its port, or None if DCMTK is missing. Forking mode:
/// `-s` (single process) would exit after one association.
pub async fn dcmqrscp_common(dir: &Path) -> Option<(tokio::process::Child, u16)> {
    let bin = dcmtk("dcmqrscp")?;
    let storage = dir.join("common");
    std::fs::create_dir_all(&storage).unwrap();
    let cfg = dir.join("dcmqrscp.cfg");
    Some(
        spawn_listening(|port| {
            std::fs::write(
                &cfg,
                format!(
                    "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\
                     HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n\
                     AETable BEGIN\nCOMMON {} RW (10, 1024mb) ANY\nAETable END\n",
                    storage.display()
                ),
            )
            .unwrap();
            let mut command = tokio::process::Command::new(&bin);
            command.arg("-c").arg(&cfg);
            command
        })
        .await,
    )
}
