//! The outbound address policy: which addresses pbx may send an HTTP request to on a
//! user's behalf (webhook deliveries, apps' HTTP requests), and the admin's allow-list of
//! networks that overrides it.
//!
//! It lives in pbx-api because both of its users need it: the API refuses a webhook URL or
//! an app's HTTP allow-list entry when it is created (this crate), and the server checks
//! every connection when it is made (`pbx`, which depends on this crate). The store knows
//! SQL, not networks, and has no async runtime to resolve names with.
//!
//! Invariants:
//! - An address is denied when it is loopback, private, link-local, shared (CGNAT),
//!   unspecified, multicast, broadcast or otherwise reserved for non-public use
//!   ([`is_denied`]); an IPv4-mapped IPv6 address is judged as its IPv4 address, and NAT64
//!   (`64:ff9b::/96`) and 6to4 (`2002::/16`) addresses as the IPv4 address they embed.
//! - A denied address is used only when the admin allows a network holding it
//!   ([`NetPolicy::permits`]); nothing else overrides the deny-list.
//! - Names are judged by what they resolve to ([`NetPolicy::resolve`]), and the caller must
//!   connect only to the addresses that call returned, so a name cannot be re-pointed
//!   between the check and the connection. Literal addresses never reach a resolver, so
//!   [`NetPolicy::check_url`] must be called before each request as well. Names under
//!   `.invalid` never resolve (RFC 6761 §6.4): they are unresolved without asking DNS.
//! - Errors never carry an OS error text or the addresses a name resolved to: a client of
//!   the API learns "not allowed" or "unreachable", never why a connection failed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use pbx_store::{HttpAllowEntry, HttpAllowHost};

/// How long a creation-time check waits for DNS before accepting the name unresolved.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A literal address the policy denies.
    #[error(
        "{0} is a loopback, private, link-local or reserved address; pbx does not send \
         requests there unless its admin allows the network (--allow-private-networks)"
    )]
    DeniedAddress(IpAddr),
    /// A name whose every address the policy denies (which ones is not told).
    #[error(
        "{0} resolves only to loopback, private, link-local or reserved addresses; pbx does \
         not send requests there unless its admin allows the network (--allow-private-networks)"
    )]
    DeniedName(String),
    /// The name did not resolve (or not in time); the cause is not told.
    #[error("{0} does not resolve")]
    Unresolved(String),
    /// Not an `http://` or `https://` URL with a host.
    #[error("not an http:// or https:// URL with a host")]
    BadUrl,
}

impl PolicyError {
    /// Whether this is the policy saying no (as opposed to a name that does not resolve or
    /// a malformed URL).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            PolicyError::DeniedAddress(_) | PolicyError::DeniedName(_)
        )
    }
}

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128).
/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is kept as its IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A CIDR that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network in CIDR notation such as 10.0.0.0/8 or fd00::/8")]
pub struct CidrError(pub String);

impl Cidr {
    /// Whether `ip` (IPv4-mapped addresses as IPv4) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError(text.to_owned());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(match addr {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => Cidr {
                addr: canonical(addr),
                prefix: prefix - 96,
            },
            _ => Cidr { addr, prefix },
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `ip`, or the IPv4 address it maps (`::ffff:a.b.c.d`).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The IPv4 address a NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address reaches.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

/// The IPv4 networks no request goes to by default.
const DENIED_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),      // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),     // RFC 1918 private
    (Ipv4Addr::new(100, 64, 0, 0), 10),  // RFC 6598 shared address space (CGNAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),    // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, cloud metadata services
    (Ipv4Addr::new(172, 16, 0, 0), 12),  // RFC 1918 private
    (Ipv4Addr::new(192, 0, 0, 0), 24),   // RFC 6890 IETF protocol assignments
    (Ipv4Addr::new(192, 168, 0, 0), 16), // RFC 1918 private
    (Ipv4Addr::new(198, 18, 0, 0), 15),  // RFC 2544 benchmarking
    (Ipv4Addr::new(224, 0, 0, 0), 4),    // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),    // reserved, and 255.255.255.255 broadcast
];

/// The IPv6 networks no request goes to by default (mapped, NAT64 and 6to4 addresses are
/// judged by their IPv4 address first).
const DENIED_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // ::, ::1 and IPv4-compatible ::a.b.c.d
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // RFC 8215 local-use NAT64
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // RFC 6666 discard-only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32), // Teredo (embeds an obfuscated IPv4)
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

/// Whether the deny-list holds `ip` (before any admin allowance).
pub fn is_denied(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => DENIED_V4.iter().any(|&(net, prefix)| {
            Cidr {
                addr: net.into(),
                prefix,
            }
            .contains(v4.into())
        }),
        IpAddr::V6(v6) => {
            embedded_v4(v6).is_some_and(|v4| is_denied(v4.into()))
                || DENIED_V6.iter().any(|&(net, prefix)| {
                    Cidr {
                        addr: net.into(),
                        prefix,
                    }
                    .contains(v6.into())
                })
        }
    }
}

/// Where a URL goes, once its literal form has passed [`NetPolicy::check_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlHost {
    /// A literal address the policy permits.
    Address(IpAddr),
    /// A name, to be judged by what it resolves to.
    Name(String),
}

/// The deny-list plus the admin's allowed networks. The default allows no denied address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    allowed: Vec<Cidr>,
}

impl NetPolicy {
    /// A policy under which the addresses in `allowed` are permitted even when denied.
    pub fn new(allowed: Vec<Cidr>) -> Self {
        NetPolicy { allowed }
    }

    /// The networks the admin allowed.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allowed
    }

    /// Whether a request may go to `ip`: it is not denied, or an allowed network holds it
    /// (or, for NAT64 and 6to4, the IPv4 address it embeds).
    pub fn permits(&self, ip: IpAddr) -> bool {
        if !is_denied(ip) {
            return true;
        }
        let embedded = match canonical(ip) {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allowed
            .iter()
            .any(|net| net.contains(ip) || embedded.is_some_and(|v4| net.contains(v4)))
    }

    /// Checks a URL as written: `http`/`https` with a host, and a literal address (in any
    /// form the URL parser accepts: `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) the
    /// policy permits. A name passes here; it is judged when resolved.
    pub fn check_url(&self, url: &str) -> Result<UrlHost, PolicyError> {
        let parsed = url::Url::parse(url).map_err(|_| PolicyError::BadUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PolicyError::BadUrl);
        }
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(name)) => {
                // A name ending in a dot or written in upper case is still that name.
                return match name.trim_end_matches('.').parse::<IpAddr>() {
                    Ok(ip) => self.check_ip(ip).map(UrlHost::Address),
                    Err(_) => self
                        .check_name(name)
                        .map(|()| UrlHost::Name(name.to_owned())),
                };
            }
            None => return Err(PolicyError::BadUrl),
        };
        self.check_ip(ip).map(UrlHost::Address)
    }

    /// `localhost` and its subdomains are loopback by definition (RFC 6761 §6.3), whatever
    /// a resolver says or fails to say about them.
    fn check_name(&self, name: &str) -> Result<(), PolicyError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let loopback = name == "localhost" || name.ends_with(".localhost");
        if loopback && !self.permits(IpAddr::V4(Ipv4Addr::LOCALHOST)) {
            Err(PolicyError::DeniedName(name))
        } else {
            Ok(())
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<IpAddr, PolicyError> {
        if self.permits(ip) {
            Ok(ip)
        } else {
            Err(PolicyError::DeniedAddress(ip))
        }
    }

    /// Resolves `host` and keeps only the addresses the policy permits, with `port`; the
    /// caller connects to these and nothing else. A name with addresses, none of them
    /// permitted, is [`PolicyError::DeniedName`]; one that does not resolve is
    /// [`PolicyError::Unresolved`].
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, PolicyError> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            return self.check_ip(ip).map(|ip| vec![SocketAddr::new(ip, port)]);
        }
        self.check_name(host)?;
        if is_invalid_name(host) {
            return Err(PolicyError::Unresolved(host.to_owned()));
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| PolicyError::Unresolved(host.to_owned()))?
            .collect();
        if found.is_empty() {
            return Err(PolicyError::Unresolved(host.to_owned()));
        }
        let permitted: Vec<SocketAddr> = found
            .into_iter()
            .filter(|addr| self.permits(addr.ip()))
            .collect();
        if permitted.is_empty() {
            Err(PolicyError::DeniedName(host.to_owned()))
        } else {
            Ok(permitted)
        }
    }

    /// The check when a target is configured (a webhook's URL): [`Self::check_url`], then a
    /// name is resolved and refused when every address it has is denied. A name that does
    /// not resolve now (or within a few seconds) is accepted: DNS may be down, and every
    /// delivery is checked again when it connects.
    pub async fn check_target(&self, url: &str) -> Result<(), PolicyError> {
        let UrlHost::Name(name) = self.check_url(url)? else {
            return Ok(());
        };
        match tokio::time::timeout(RESOLVE_TIMEOUT, self.resolve(&name, 0)).await {
            Ok(Err(e @ PolicyError::DeniedName(_))) => Err(e),
            _ => Ok(()),
        }
    }

    /// The check of an app's HTTP allow-list entry, as the store parses it: a literal
    /// address must be permitted; names, which may resolve differently when the app runs,
    /// are judged at each request.
    pub fn check_allow_entry(&self, entry: &HttpAllowEntry<'_>) -> Result<(), PolicyError> {
        match entry.host {
            HttpAllowHost::Address(ip) => self.check_ip(ip).map(|_| ()),
            HttpAllowHost::Name { .. } => Ok(()),
        }
    }
}

/// Whether `name` is `invalid` or under it, which no resolver may answer for (RFC 6761
/// §6.4), so looking it up would only leak a query.
fn is_invalid_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("invalid")
        || name.len() > ".invalid".len()
            && name
                .get(name.len() - ".invalid".len()..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(".invalid"))
}

/// The API's answer to a target the policy refuses: 400 `target_not_allowed` naming
/// `field` (or `invalid_request` for a URL the policy cannot read).
pub(crate) fn refused(field: &'static str, err: &PolicyError) -> crate::ApiError {
    if err.is_refusal() {
        crate::ApiError {
            field: Some(field.into()),
            ..crate::ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "target_not_allowed",
                format!("`{field}`: {err}"),
            )
        }
    } else {
        crate::ApiError::invalid_field(field, format!("`{field}` is {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_denied_range_is_denied_at_both_ends() {
        for denied in [
            "0.0.0.0",
            "0.255.255.255",
            "10.0.0.0",
            "10.255.255.255",
            "100.64.0.0",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.0",
            "172.16.0.0",
            "172.31.255.255",
            "192.0.0.0",
            "192.0.0.255",
            "192.168.0.1",
            "192.168.255.255",
            "198.18.0.0",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2001::1",
            "100::1",
            "fc00::1",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(is_denied(ip(denied)), "{denied} should be denied");
        }
    }

    #[test]
    fn public_addresses_and_range_neighbours_pass() {
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "93.184.215.14",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "fbff:ffff::1",
        ] {
            assert!(!is_denied(ip(public)), "{public} should pass");
            assert!(NetPolicy::default().permits(ip(public)), "{public}");
        }
    }

    #[test]
    fn an_allowed_network_overrides_the_deny_list_and_nothing_more() {
        let policy = NetPolicy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
            "10.1.2.3".parse().unwrap(),
        ]);
        for yes in [
            "127.0.0.1",
            "127.9.9.9",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "fd12::1",
            "10.1.2.3",
        ] {
            assert!(policy.permits(ip(yes)), "{yes}");
        }
        for no in [
            "10.1.2.4",
            "169.254.169.254",
            "::1",
            "fc00::1",
            "192.168.1.1",
        ] {
            assert!(!policy.permits(ip(no)), "{no}");
        }
        // A mapped-IPv6 network is its IPv4 network.
        let mapped: Cidr = "::ffff:192.168.0.0/112".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.168.0.0/16");
        assert!(NetPolicy::new(vec![mapped]).permits(ip("192.168.4.4")));
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert!(NetPolicy::new(vec!["0.0.0.0/0".parse().unwrap()]).permits(ip("127.0.0.1")));
        for bad in [
            "",
            "10/8",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_judged_after_parsing() {
        let policy = NetPolicy::default();
        for bad in [
            "http://127.0.0.1:9/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "https://[fe80::1]:8443/x",
            "http://user:pw@127.0.0.1/",
            "HTTP://127.0.0.1./",
        ] {
            assert!(
                matches!(policy.check_url(bad), Err(PolicyError::DeniedAddress(_))),
                "{bad}: {:?}",
                policy.check_url(bad)
            );
        }
        assert_eq!(
            policy.check_url("https://hooks.example.com/x").unwrap(),
            UrlHost::Name("hooks.example.com".into())
        );
        assert_eq!(
            policy.check_url("http://8.8.8.8/").unwrap(),
            UrlHost::Address(ip("8.8.8.8"))
        );
        for bad in ["ftp://example.com/", "not a url", "file:///etc/passwd"] {
            assert_eq!(policy.check_url(bad), Err(PolicyError::BadUrl), "{bad}");
        }
        let open = NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(open.check_url("http://2130706433/").is_ok());
    }

    #[test]
    fn allow_list_entries_are_checked_when_literal() {
        let policy = NetPolicy::default();
        for bad in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:80",
            "10.0.0.1:443",
        ] {
            let entry = HttpAllowEntry::parse(bad).unwrap();
            assert!(policy.check_allow_entry(&entry).is_err(), "{bad}");
        }
        for ok in [
            "api.example.com",
            "*.example.com:8443",
            "localhost:80",
            "8.8.8.8",
        ] {
            let entry = HttpAllowEntry::parse(ok).unwrap();
            assert!(policy.check_allow_entry(&entry).is_ok(), "{ok}");
        }
    }

    #[tokio::test]
    async fn names_are_judged_by_their_addresses() {
        let policy = NetPolicy::default();
        assert_eq!(
            policy.resolve("localhost", 80).await,
            Err(PolicyError::DeniedName("localhost".into()))
        );
        assert!(policy.check_target("http://localhost:9/").await.is_err());
        for name in ["LOCALHOST.", "a.b.localhost", "x.localhost."] {
            assert_eq!(
                policy.check_url(&format!("http://{name}:9/")),
                Err(PolicyError::DeniedName(
                    name.trim_end_matches('.').to_lowercase()
                )),
                "{name}"
            );
            assert!(policy.resolve(name, 9).await.is_err(), "{name}");
        }
        let open = NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        let addrs = open.resolve("localhost", 80).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
        // A name that does not resolve is accepted when configured.
        assert!(policy.check_target("http://nowhere.invalid/").await.is_ok());
        for name in ["nowhere.invalid", "a.b.INVALID.", "invalid"] {
            assert!(
                matches!(
                    policy.resolve(name, 80).await,
                    Err(PolicyError::Unresolved(_))
                ),
                "{name}"
            );
        }
        assert!(!is_invalid_name("notinvalid") && !is_invalid_name("invalid.example"));
    }
}
