//! Which addresses webhooks may reach, checked where the connection is made.
//!
//! A host name can resolve to a public address when a subscription is created and to loopback
//! or a private network when we later connect (DNS rebinding), so checking the URL once is not
//! enough. The webhook client resolves every name through `GuardedResolver`, which refuses an
//! answer holding a private address unless private targets are allowed; the create-time check
//! asks the same resolver. `is_private` is the one rule of what counts as private. IP-literal
//! URLs never reach a resolver (the client connects to them directly), so the create-time check
//! applies `is_private` to those itself.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether webhooks must not reach `address` when private targets are refused: loopback,
/// private, link-local, unspecified, broadcast, multicast, shared (CGNAT), reserved and
/// special-purpose IPv4 ranges; for IPv6 the same kinds plus unique-local and site-local, and
/// any IPv6 form that carries an IPv4 address (mapped, compatible, NAT64) by that address.
pub(crate) fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                // 0.0.0.0/8 ("this network"), 240.0.0.0/4 (reserved, with the broadcast address).
                || a == 0
                || a >= 240
                // 100.64.0.0/10, shared address space (carrier-grade NAT).
                || a == 100 && (b & 0xc0) == 64
                // 192.0.0.0/24, IETF protocol assignments; 198.18.0.0/15, benchmarking.
                || a == 192 && b == 0 && c == 0
                || a == 198 && (b & 0xfe) == 18
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded = match segments {
                [0, 0, 0, 0, 0, 0xffff | 0, ..] => v6.to_ipv4(),
                [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))),
                _ => None,
            };
            if let Some(v4) = embedded {
                return is_private(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local.
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || (segments[0] & 0xffc0) == 0xfec0
        }
    }
}

/// A webhook host that resolved to an address private targets exclude.
#[derive(Debug, thiserror::Error)]
#[error("the host '{host}' resolved to a loopback, private or otherwise non-public address")]
pub(crate) struct NonPublicAddress {
    pub(crate) host: String,
}

impl NonPublicAddress {
    /// This refusal, if it is what caused `error` (reqwest wraps a resolver's error a few
    /// layers deep).
    pub(crate) fn cause_of<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a NonPublicAddress> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(refusal) = error.downcast_ref::<NonPublicAddress>() {
                return Some(refusal);
            }
            current = error.source();
        }
        None
    }
}

/// Where webhook host names are resolved before the check: the system's resolver, or one a
/// test supplies to script the answers.
#[derive(Clone)]
pub struct Resolver(Arc<dyn Resolve>);

impl Resolver {
    pub fn new(resolver: impl Resolve + 'static) -> Self {
        Self(Arc::new(resolver))
    }

    /// getaddrinfo, through tokio's blocking pool.
    pub fn system() -> Self {
        Self::new(SystemResolver)
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            // Port 0: the client puts in the URL's port (or the scheme's) itself.
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The webhook client's resolver: resolves with the base resolver and, unless private targets
/// are allowed, refuses the whole answer if any address in it is private, so the client cannot
/// fall back to that one either.
pub(crate) struct GuardedResolver {
    base: Resolver,
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(base: Resolver, allow_private: bool) -> Self {
        Self { base, allow_private }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let base = self.base.0.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = base.resolve(name).await?.collect();
            if !allow_private && addresses.iter().any(|address| is_private(address.ip())) {
                return Err(Box::new(NonPublicAddress { host }) as _);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for private in [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "::",
            "::1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "52.114.188.32",
            "8.8.8.8",
            "100.128.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "::ffff:52.114.188.32",
            "64:ff9b::808:808",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    struct Fixed(Vec<IpAddr>);

    impl Resolve for Fixed {
        fn resolve(&self, _: Name) -> Resolving {
            let addresses: Vec<SocketAddr> = self.0.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
            Box::pin(async move { Ok(Box::new(addresses.into_iter()) as Addrs) })
        }
    }

    async fn answer(addresses: &[&str], allow_private: bool) -> Result<Vec<SocketAddr>, String> {
        let base = Resolver::new(Fixed(addresses.iter().map(|a| a.parse().unwrap()).collect()));
        let guarded = GuardedResolver::new(base, allow_private);
        match guarded.resolve("hooks.example".parse().unwrap()).await {
            Ok(found) => Ok(found.collect()),
            Err(error) => Err(NonPublicAddress::cause_of(&*error).expect("a refusal").to_string()),
        }
    }

    #[tokio::test]
    async fn an_answer_with_any_private_address_is_refused_unless_allowed() {
        assert_eq!(answer(&["52.114.188.32"], false).await.unwrap().len(), 1);
        let refused = "the host 'hooks.example' resolved to a loopback, private or otherwise non-public address";
        assert_eq!(
            answer(&["52.114.188.32", "10.0.0.1"], false).await.unwrap_err(),
            refused
        );
        assert_eq!(answer(&["::1"], false).await.unwrap_err(), refused);
        assert_eq!(answer(&["127.0.0.1"], true).await.unwrap().len(), 1);
    }
}
