//! Advertise-address detection, as kubeadm does it when the config gives none (or `0.0.0.0`/`::`).
//!
//! kubeadm (`SetAPIEndpointDynamicDefaults` in `cmd/kubeadm/app/util/config/initconfiguration.go`)
//! calls apimachinery's `ChooseHostInterface` (`k8s.io/apimachinery/pkg/util/net/interface.go`):
//! the default routes are read from `/proc/net/route` (IPv4) and `/proc/net/ipv6_route` (IPv6);
//! IPv4 routes are tried first, then IPv6; for each default route, the first global unicast
//! address of that family on the route's interface wins; if the interface has none, a global
//! unicast address on the loopback interface (RFC 5549 set-ups); no default route at all is an
//! error. Interface addresses come from `getifaddrs(3)` through the `if-addrs` crate.
//!
//! The route tables and the address list are inputs of [`choose`], so tests can inject them.

use std::net::IpAddr;

/// The address kubeadm would pick, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Detected {
    /// The chosen address.
    pub address: IpAddr,
    /// The interface that holds it.
    pub interface: String,
    /// The default route's interface (differs from `interface` for the loopback fallback).
    pub route_interface: String,
}

/// What detection reads: the two route tables and the interface addresses.
#[derive(Debug, Clone, Default)]
pub struct NetState {
    /// Text of `/proc/net/route`, if readable.
    pub route_v4: Option<String>,
    /// Text of `/proc/net/ipv6_route`, if readable.
    pub route_v6: Option<String>,
    /// `(interface, address)` for every address of every interface.
    pub addrs: Vec<(String, IpAddr)>,
}

impl NetState {
    /// Reads this host's (this network namespace's) state.
    pub fn system() -> Result<NetState, String> {
        let addrs = if_addrs::get_if_addrs()
            .map_err(|e| format!("cannot list the network interfaces: {e}"))?
            .into_iter()
            .map(|i| (i.name.clone(), i.ip()))
            .collect();
        Ok(NetState {
            route_v4: std::fs::read_to_string("/proc/net/route").ok(),
            route_v6: std::fs::read_to_string("/proc/net/ipv6_route").ok(),
            addrs,
        })
    }
}

/// Interfaces of the IPv4 default routes (`Destination` 00000000), in table order.
pub fn default_routes_v4(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && f[1] == "00000000").then(|| f[0].to_string())
        })
        .collect()
}

/// Interfaces of the IPv6 default routes (destination `::`, prefix length 0), in table order.
pub fn default_routes_v6(table: &str) -> Vec<String> {
    table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Column 8 holds the flags: skip reject routes (RTF_REJECT, 0x0200), such as the
            // "unreachable" ::/0 on lo that every network namespace has.
            let reject = u32::from_str_radix(f.get(8).copied().unwrap_or("0"), 16)
                .is_ok_and(|flags| flags & 0x0200 != 0);
            (f.len() >= 10 && f[0] == "00000000000000000000000000000000" && f[1] == "00" && !reject)
                .then(|| f[9].to_string())
        })
        .collect()
}

/// Go's `IP.IsGlobalUnicast`: not unspecified, loopback, multicast, link-local or the IPv4
/// limited broadcast address. Private ranges count as global unicast.
pub fn is_global_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            !(v.is_unspecified()
                || v.is_loopback()
                || v.is_multicast()
                || v.is_link_local()
                || v.is_broadcast())
        }
        IpAddr::V6(v) => {
            !(v.is_unspecified()
                || v.is_loopback()
                || v.is_multicast()
                || v.is_unicast_link_local())
        }
    }
}

/// Picks the address kubeadm would advertise, or says why there is none.
pub fn choose(state: &NetState) -> Result<Detected, String> {
    let v4 = state
        .route_v4
        .as_deref()
        .map(default_routes_v4)
        .unwrap_or_default();
    let v6 = state
        .route_v6
        .as_deref()
        .map(default_routes_v6)
        .unwrap_or_default();
    if v4.is_empty() && v6.is_empty() {
        return Err(
            "no default route in /proc/net/route or /proc/net/ipv6_route, so there is no address to detect"
                .into(),
        );
    }
    let loopback = state
        .addrs
        .iter()
        .filter(|(_, ip)| ip.is_loopback())
        .map(|(n, _)| n.clone())
        .next()
        .unwrap_or_else(|| "lo".into());
    for (routes, want_v4) in [(&v4, true), (&v6, false)] {
        for iface in routes {
            let pick = |name: &str| {
                state
                    .addrs
                    .iter()
                    .find(|(n, ip)| n == name && ip.is_ipv4() == want_v4 && is_global_unicast(ip))
                    .map(|(_, ip)| *ip)
            };
            if let Some(address) = pick(iface) {
                return Ok(Detected {
                    address,
                    interface: iface.clone(),
                    route_interface: iface.clone(),
                });
            }
            if let Some(address) = pick(&loopback) {
                return Ok(Detected {
                    address,
                    interface: loopback.clone(),
                    route_interface: iface.clone(),
                });
            }
        }
    }
    let ifaces: Vec<String> = v4.iter().chain(&v6).cloned().collect();
    Err(format!(
        "the default route's interface ({}) has no global unicast address",
        ifaces.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth1\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth0\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";

    const ROUTE6: &str = "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth2\n\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";

    fn state(v4: Option<&str>, v6: Option<&str>, addrs: &[(&str, &str)]) -> NetState {
        NetState {
            route_v4: v4.map(str::to_string),
            route_v6: v6.map(str::to_string),
            addrs: addrs
                .iter()
                .map(|(n, a)| (n.to_string(), a.parse().expect("ip")))
                .collect(),
        }
    }

    #[test]
    fn ipv4_default_route_first() {
        let s = state(
            Some(ROUTE),
            Some(ROUTE6),
            &[
                ("lo", "127.0.0.1"),
                ("eth0", "fe80::1"),
                ("eth0", "169.254.3.3"),
                ("eth0", "10.0.2.15"),
                ("eth1", "10.0.0.9"),
                ("eth2", "2001:db8::5"),
            ],
        );
        let d = choose(&s).expect("detected");
        assert_eq!(d.address.to_string(), "10.0.2.15");
        assert_eq!(d.interface, "eth0");
    }

    #[test]
    fn ipv6_when_no_ipv4_default_route() {
        let s = state(
            Some("Iface\tDestination\n"),
            Some(ROUTE6),
            &[
                ("eth2", "fe80::9"),
                ("eth2", "2001:db8::5"),
                ("eth0", "10.0.0.1"),
            ],
        );
        let d = choose(&s).expect("detected");
        assert_eq!(
            (d.address.to_string(), d.interface.as_str()),
            ("2001:db8::5".into(), "eth2")
        );
    }

    #[test]
    fn reject_routes_are_not_default_routes() {
        assert!(default_routes_v6("00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n").is_empty());
        assert_eq!(default_routes_v6(ROUTE6), ["eth2"]);
    }

    #[test]
    fn loopback_fallback_and_errors() {
        let s = state(
            Some(ROUTE),
            None,
            &[
                ("eth0", "fe80::1"),
                ("lo", "127.0.0.1"),
                ("lo", "192.0.2.50"),
            ],
        );
        let d = choose(&s).expect("loopback");
        assert_eq!(
            (
                d.address.to_string(),
                d.interface.as_str(),
                d.route_interface.as_str()
            ),
            ("192.0.2.50".into(), "lo", "eth0")
        );
        let e = choose(&state(Some(ROUTE), None, &[("eth0", "169.254.1.1")])).expect_err("none");
        assert_eq!(
            e,
            "the default route's interface (eth0) has no global unicast address"
        );
        let e = choose(&state(Some("Iface\tDestination\n"), Some(""), &[])).expect_err("no route");
        assert!(e.starts_with("no default route"), "{e}");
    }

    #[test]
    fn global_unicast_is_gos() {
        for (ip, want) in [
            ("10.1.2.3", true),
            ("192.168.1.1", true),
            ("2001:db8::1", true),
            ("fd00::1", true),
            ("0.0.0.0", false),
            ("::", false),
            ("127.0.0.1", false),
            ("::1", false),
            ("169.254.0.1", false),
            ("fe80::1", false),
            ("224.0.0.1", false),
            ("ff02::1", false),
            ("255.255.255.255", false),
        ] {
            assert_eq!(is_global_unicast(&ip.parse().expect("ip")), want, "{ip}");
        }
    }
}
