//! Who the client is, for the failed-authentication limit: the peer's address, or, behind
//! trusted proxies (`ALTDATA_TRUSTED_PROXIES`), the address they forwarded.

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Where failed authentications are counted: an IPv4 address, or an IPv6 /64 (one
/// subscriber's allocation, so moving around inside it gains nothing). `Unknown` when the
/// request came without a socket (handler tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAddress {
    V4(u32),
    V6Net(u64),
    Unknown,
}

impl ClientAddress {
    pub fn of(request: &Request, proxies: &TrustedProxies) -> ClientAddress {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(ClientAddress::Unknown, |ConnectInfo(peer)| {
                ClientAddress::from_ip(proxies.client_ip(peer.ip(), request.headers()))
            })
    }

    pub fn from_ip(ip: IpAddr) -> ClientAddress {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientAddress::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientAddress::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

/// The proxies (load balancers, ingress controllers) whose `X-Forwarded-For` is believed:
/// a comma-separated list of addresses and CIDR blocks, empty by default (the peer is the
/// client).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    blocks: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
    /// address of `X-Forwarded-For` that is not itself a trusted proxy. What lies left of it
    /// is whatever the client chose to write, so it is never read.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer;
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for hop in forwarded.iter().rev() {
            if !self.contains(client) {
                break;
            }
            match hop.trim().parse() {
                Ok(ip) => client = ip,
                Err(_) => break,
            }
        }
        client
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.blocks.iter().any(|&(net, bits)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                bits,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(u128::from(net), u128::from(ip), bits, 128)
            }
            _ => false,
        })
    }
}

/// Whether the first `bits` of two `width`-bit numbers agree.
fn same_prefix(a: u128, b: u128, bits: u8, width: u32) -> bool {
    let shift = width - u32::from(bits);
    shift >= width || (a >> shift) == (b >> shift)
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(text: &str) -> Result<TrustedProxies, String> {
        let mut blocks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (address, bits) = item.split_once('/').unwrap_or((item, ""));
            let net: IpAddr = address
                .parse()
                .map_err(|_| format!("{item:?} is not an address"))?;
            let net = net.to_canonical();
            let width = if net.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                "" => width,
                bits => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= width)
                    .ok_or_else(|| format!("{item:?} has no valid prefix length"))?,
            };
            blocks.push((net, bits));
        }
        Ok(TrustedProxies { blocks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert("x-forwarded-for", value);
        }
        headers
    }

    #[test]
    fn an_ipv6_subnet_is_one_client_and_mapped_ipv4_is_ipv4() {
        let of = |text: &str| ClientAddress::from_ip(ip(text));
        assert_eq!(of("2001:db8:1:2::1"), of("2001:db8:1:2:ffff::9"));
        assert_ne!(of("2001:db8:1:2::1"), of("2001:db8:1:3::1"));
        let v4 = Ipv4Addr::new(10, 1, 2, 3);
        assert_eq!(
            ClientAddress::from_ip(IpAddr::V6(v4.to_ipv6_mapped())),
            ClientAddress::from_ip(IpAddr::V4(v4))
        );
        assert_ne!(
            ClientAddress::from_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            of("127.0.0.1")
        );
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let proxies = TrustedProxies::default();
        let headers = forwarded("203.0.113.9");
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &headers), ip("10.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.5".parse().unwrap_or_default();
        // The client wrote a fake first hop; the proxies appended what they saw.
        let headers = forwarded("1.2.3.4, 203.0.113.9, 192.168.1.5");
        assert_eq!(
            proxies.client_ip(ip("10.1.2.3"), &headers),
            ip("203.0.113.9")
        );
        // An untrusted peer's header is not read.
        assert_eq!(
            proxies.client_ip(ip("198.51.100.7"), &headers),
            ip("198.51.100.7")
        );
        // A proxy that forwarded nothing readable is the client.
        assert_eq!(
            proxies.client_ip(ip("10.1.2.3"), &forwarded("garbage")),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn proxy_lists_are_parsed_strictly() {
        assert!("".parse::<TrustedProxies>().is_ok());
        assert!("10.0.0.0/8,::1,fd00::/8".parse::<TrustedProxies>().is_ok());
        for bad in ["10.0.0.0/33", "proxy", "10.0.0.1/x", "::/129"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }
}
