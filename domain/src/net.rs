//! Which IP addresses a webhook may reach. Deliveries go to public addresses only, unless the
//! operator allows a network (tests allow 127.0.0.0/8).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    pub allowed_networks: Vec<IpNet>,
}

impl AddressPolicy {
    pub fn is_allowlisted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed_networks.iter().any(|net| net.contains(&ip))
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public_ip(ip) || self.is_allowlisted(ip)
    }
}

/// True for addresses on the public internet: not loopback, private, link-local, shared,
/// documentation, multicast, reserved or unspecified. IPv4-mapped and NAT64 IPv6 addresses
/// are judged by the IPv4 address they carry.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 88 && c == 99)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Local-use NAT64 (64:ff9b:1::/48, RFC 8215) translates to addresses of the operator's
    // choosing, and IPv4-translated addresses (::ffff:0:0:0/96, RFC 2765) carry an IPv4
    // address some stacks reach: neither is ever a public endpoint.
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        || (s[0..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0)
    {
        return false;
    }
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments, Teredo
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard
        || s[0] == 0x2002) // 6to4 relays reach arbitrary IPv4 addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public_ip(s.parse().unwrap())
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "64:ff9b:1:ffff::1",
            "::ffff:0:808:808",
            "::ffff:0:7f00:1",
            "2001:db8::1",
        ] {
            assert!(!public(ip), "{ip} must not count as public");
        }
    }

    #[test]
    fn ordinary_internet_addresses_are_public() {
        for ip in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(public(ip), "{ip} must count as public");
        }
    }

    #[test]
    fn allowlisted_networks_are_permitted() {
        let policy = AddressPolicy { allowed_networks: vec!["127.0.0.0/8".parse().unwrap()] };
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(policy.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!policy.permits("10.0.0.1".parse().unwrap()));
    }
}
