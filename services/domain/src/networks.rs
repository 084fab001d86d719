//! Trusted networks (M8): CIDR ranges, IPv4 or IPv6, whose clients skip the second factor.

use crate::Error;
use ipnet::IpNet;
use std::net::IpAddr;

/// Narrowest prefix accepted: wider ranges would switch MFA off for much of the Internet.
pub const MIN_PREFIX_V4: u8 = 8;
/// The same for IPv6.
pub const MIN_PREFIX_V6: u8 = 16;

/// A trusted range, normalised to its network address (`10.1.2.3/24` becomes `10.1.2.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Parses `a.b.c.d/n`, `x:y::/n`, or a bare address (one host).
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        let net = s
            .parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(|ip| IpNet::from(canonical(ip))))
            .map_err(|_| {
                Error::field(
                    "cidr",
                    "must be an IPv4 or IPv6 address or range, such as 203.0.113.0/24",
                )
            })?;
        let net = match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                // An IPv4-mapped range is stored as the IPv4 range it means.
                Some(v4) if v6.prefix_len() >= 96 => {
                    IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                        .map_err(|_| Error::field("cidr", "invalid prefix"))?
                }
                _ => net,
            },
            _ => net,
        };
        let (min, family) = match net {
            IpNet::V4(_) => (MIN_PREFIX_V4, "IPv4"),
            IpNet::V6(_) => (MIN_PREFIX_V6, "IPv6"),
        };
        if net.prefix_len() < min {
            return Err(Error::field(
                "cidr",
                format!("an {family} range must be /{min} or narrower"),
            ));
        }
        Ok(Self(net.trunc()))
    }

    /// The range of exactly one address (for "my current IP").
    pub fn host(ip: IpAddr) -> Self {
        Self(IpNet::from(canonical(ip)))
    }

    /// Whether the client address is inside this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as dual-stack sockets report) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Whether any of the ranges holds the client address.
pub fn any_contains(ranges: &[Cidr], ip: Option<IpAddr>) -> bool {
    ip.is_some_and(|ip| ranges.iter().any(|r| r.contains(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn m8_ranges_parse_normalise_and_match_v4_and_v6() {
        let office = Cidr::parse("203.0.113.77/24").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(office.to_string(), "203.0.113.0/24");
        assert!(office.contains(ip("203.0.113.5")));
        assert!(
            office.contains(ip("::ffff:203.0.113.5")),
            "dual-stack sockets"
        );
        assert!(!office.contains(ip("203.0.114.5")));
        let v6 = Cidr::parse("2001:db8:abcd::/48").unwrap_or_else(|e| panic!("{e}"));
        assert!(v6.contains(ip("2001:db8:abcd:12::1")));
        assert!(!v6.contains(ip("2001:db8:abce::1")));
        assert_eq!(
            Cidr::parse("198.51.100.7").map(|c| c.to_string()),
            Ok("198.51.100.7/32".into())
        );
        assert_eq!(
            Cidr::parse("::ffff:198.51.100.0/120").map(|c| c.to_string()),
            Ok("198.51.100.0/24".into())
        );
        assert_eq!(Cidr::host(ip("::ffff:10.0.0.1")).to_string(), "10.0.0.1/32");
    }

    #[test]
    fn m8_too_wide_or_malformed_ranges_are_refused() {
        assert!(Cidr::parse("0.0.0.0/0").is_err());
        assert!(Cidr::parse("10.0.0.0/7").is_err());
        assert!(Cidr::parse("10.0.0.0/8").is_ok());
        assert!(Cidr::parse("::/0").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("office").is_err());
        assert!(!any_contains(&[], Some(ip("10.0.0.1"))));
        assert!(!any_contains(&[Cidr::host(ip("10.0.0.1"))], None));
    }
}

/// The client's address (M8): the socket `peer`, or, when the peer is one of our
/// `trusted` proxies, the nearest address in the `X-Forwarded-For` values (`forwarded`,
/// in header order) that is not a trusted proxy itself.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded: impl IntoIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // Walk from the nearest hop back; the first untrusted address is the client.
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod client_ip_tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["198.51.100.1"], &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client may claim anything before the first proxy; the proxies append.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                ["1.2.3.4, 198.51.100.7", "10.0.0.1"],
                &trusted
            ),
            ip("198.51.100.7")
        );
        // Nothing forwarded: the proxy itself.
        assert_eq!(client_ip(ip("10.0.0.2"), [], &trusted), ip("10.0.0.2"));
    }
}
