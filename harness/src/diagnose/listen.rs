//! What a container listens on, from `/proc/net/tcp` and `tcp6` of its network namespace: read on the
//! host through `/proc/<pid>/net` when the engine is local, else through `cat` inside the container.
//! Works for images with no shell when the engine is local.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::engine::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub address: std::net::IpAddr,
    pub port: u16,
}

impl Listener {
    pub fn is_loopback(&self) -> bool {
        self.address.is_loopback()
    }

    /// Docker's embedded DNS server for user-defined networks: the engine puts it in every such
    /// container's namespace on 127.0.0.11, on a random port. It is not the application's.
    fn is_engine_dns(&self) -> bool {
        self.address == std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11))
    }
}

/// Parses the LISTEN sockets (state `0A`) of a `/proc/net/tcp` or `tcp6` table, but for the engine's
/// own DNS server.
pub fn parse_proc_net_tcp(table: &str) -> Vec<Listener> {
    let mut listeners = Vec::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else { continue };
        if *state != "0A" {
            continue;
        }
        let Some((address_hex, port_hex)) = local.split_once(':') else { continue };
        let Ok(port) = u16::from_str_radix(port_hex, 16) else { continue };
        let address = match address_hex.len() {
            8 => match u32::from_str_radix(address_hex, 16) {
                Ok(raw) => Ipv4Addr::from(raw.swap_bytes()).into(),
                Err(_) => continue,
            },
            32 => {
                let mut octets = [0u8; 16];
                let mut ok = true;
                for word in 0..4 {
                    match u32::from_str_radix(&address_hex[word * 8..word * 8 + 8], 16) {
                        Ok(raw) => octets[word * 4..word * 4 + 4].copy_from_slice(&raw.swap_bytes().to_be_bytes()),
                        Err(_) => ok = false,
                    }
                }
                if !ok {
                    continue;
                }
                Ipv6Addr::from(octets).into()
            }
            _ => continue,
        };
        let listener = Listener { address, port };
        if !listener.is_engine_dns() {
            listeners.push(listener);
        }
    }
    listeners
}

/// The `/proc/net/tcp` and `tcp6` tables of the container's network namespace, or `None` when neither
/// way could read them.
async fn tcp_tables(engine: &Engine, container_id: &str, pid: i64) -> Option<Vec<String>> {
    if pid > 0 {
        let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp"));
        let tcp6 = std::fs::read_to_string(format!("/proc/{pid}/net/tcp6")).unwrap_or_default();
        // The pid is only ours to read when this host runs the container (not a VM behind the socket):
        // its cgroup then names the container.
        let ours = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(container_id));
        if let Ok(tcp) = tcp
            && engine.is_local()
            && ours
        {
            return Some(vec![tcp, tcp6]);
        }
    }
    let cmd = ["cat", "/proc/net/tcp", "/proc/net/tcp6"].map(str::to_owned);
    let output = engine.exec(container_id, &cmd, None).await.ok()?;
    if output.stdout.is_empty() {
        return None;
    }
    Some(output.stdout.split("  sl").filter(|t| !t.trim().is_empty()).map(|t| format!("  sl{t}")).collect())
}

/// The sockets the container listens on, or `None` when neither way could read them.
pub async fn listeners(engine: &Engine, container_id: &str, pid: i64) -> Option<Vec<Listener>> {
    let tables = tcp_tables(engine, container_id, pid).await?;
    Some(tables.iter().flat_map(|table| parse_proc_net_tcp(table)).collect())
}

/// How many connections to `port` the kernel has completed and the server has not accepted yet: for a
/// LISTEN socket, the `rx_queue` column counts its accept queue. `None` when nothing listens on `port`.
pub fn parse_accept_queue(table: &str, port: u16) -> Option<u32> {
    let mut queued = None;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(queues)) = (fields.get(1), fields.get(3), fields.get(4)) else { continue };
        let listens_on_port =
            local.rsplit_once(':').is_some_and(|(_, port_hex)| u16::from_str_radix(port_hex, 16) == Ok(port));
        if *state != "0A" || !listens_on_port {
            continue;
        }
        let Some(Ok(waiting)) = queues.split_once(':').map(|(_, rx)| u32::from_str_radix(rx, 16)) else { continue };
        queued = Some(queued.unwrap_or(0) + waiting);
    }
    queued
}

/// The connections waiting on `port` to be accepted by the server in the container (see
/// [`parse_accept_queue`]), or `None` when they could not be read or nothing listens there. A server
/// that is still starting leaves them waiting; one that accepts them and never answers does not.
pub async fn waiting_to_be_accepted(engine: &Engine, container_id: &str, pid: i64, port: u16) -> Option<u32> {
    let tables = tcp_tables(engine, container_id, pid).await?;
    tables.iter().filter_map(|table| parse_accept_queue(table, port)).reduce(|a, b| a + b)
}

/// Why port `port` does not answer through its published port, judged from what the container listens on.
pub fn explain_port(name: &str, port: u16, listeners: &[Listener]) -> Option<String> {
    explain_port_reached(name, port, listeners, "through a published port")
}

/// Why port `port` does not answer when reached `how` ("from `client`"), from what the container listens on.
pub fn explain_port_reached(name: &str, port: u16, listeners: &[Listener], how: &str) -> Option<String> {
    let on_port: Vec<&Listener> = listeners.iter().filter(|l| l.port == port).collect();
    if !on_port.is_empty() && on_port.iter().all(|l| l.is_loopback()) {
        return Some(format!(
            "the server in `{name}` listens on {}:{port} inside the container: it must listen on 0.0.0.0 to be \
             reachable {how}",
            on_port[0].address
        ));
    }
    if on_port.is_empty() {
        let mut others: Vec<u16> = listeners.iter().map(|l| l.port).collect();
        others.sort_unstable();
        others.dedup();
        return Some(match others.as_slice() {
            [] => format!("nothing listens on any TCP port inside `{name}`"),
            [one] => format!("nothing listens on {port} inside `{name}`; something listens on {one}"),
            many => format!(
                "nothing listens on {port} inside `{name}`; something listens on {}",
                many.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   1: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n   2: 0100007F:1F40 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n";
    const TCP6: &str = "  sl  local_address                         remote_address                        st\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0\n";

    #[test]
    fn parses_listeners() {
        let found = parse_proc_net_tcp(TCP);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0], Listener { address: Ipv4Addr::LOCALHOST.into(), port: 8000 });
        assert_eq!(found[1], Listener { address: Ipv4Addr::UNSPECIFIED.into(), port: 5000 });
        let six = parse_proc_net_tcp(TCP6);
        assert_eq!(six, vec![Listener { address: Ipv6Addr::LOCALHOST.into(), port: 8080 }]);
    }

    #[test]
    fn the_accept_queue_of_a_listening_port_is_its_rx_queue() {
        // Port 8080 with 3 connections the server has not accepted; one it has, with 78 bytes unread.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n   0: 00000000:1F90 00000000:0000 0A 00000000:00000003 00:00000000\n   1: 0200A8C0:1F90 0100A8C0:B0B0 01 00000000:0000004E 00:00000000\n";
        assert_eq!(parse_accept_queue(table, 8080), Some(3));
        assert_eq!(parse_accept_queue(TCP, 8000), Some(0));
        assert_eq!(parse_accept_queue(TCP, 9000), None);
    }

    #[test]
    fn the_engines_dns_server_is_not_a_listener_of_the_app() {
        // 127.0.0.11:41733, as Docker's embedded DNS listens in containers on user-defined networks.
        let table = "  sl  local_address rem_address   st\n   0: 0B00007F:A305 00000000:0000 0A 0\n";
        assert_eq!(parse_proc_net_tcp(table), Vec::new());
        assert_eq!(explain_port("web", 8000, &[]).as_deref(), Some("nothing listens on any TCP port inside `web`"));
    }

    #[test]
    fn explains_loopback_and_wrong_port() {
        let found = parse_proc_net_tcp(TCP);
        let loopback = explain_port("web", 8000, &found).unwrap();
        assert!(loopback.contains("listens on 127.0.0.1:8000"), "{loopback}");
        let wrong = explain_port("web", 9000, &found[1..]).unwrap();
        assert_eq!(wrong, "nothing listens on 9000 inside `web`; something listens on 5000");
        assert_eq!(explain_port("web", 5000, &found), None);
    }
}
