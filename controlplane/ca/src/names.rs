//! The names every service certificate is issued for.

use std::net::IpAddr;

use crate::error::NameError;

/// Longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// Longest DNS name in text form without the trailing dot (RFC 1035 §2.3.4, 255 octets on the
/// wire).
const MAX_NAME_LEN: usize = 253;

/// Host name, optional domain and optional IP addresses for the service certificates.
///
/// Every service certificate gets CN = [`Names::cn`], a DNS SAN equal to the CN, and one IP SAN
/// per entry of [`Names::ip_sans`] (the guide's `HOST`, `CERTDOMAIN` and `IP_SAN`).
///
/// Names are validated as RFC 1123 host names (letters, digits and hyphens, no leading or
/// trailing hyphen, labels of at most 63 characters) and stored in lower case, since DNS names
/// compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    host: String,
    domain: Option<String>,
    ip_sans: Vec<IpAddr>,
}

impl Names {
    /// Validates and builds the names. `host` is a single DNS label; `domain`, if given, is one
    /// or more labels joined by dots. Duplicate IP addresses are dropped.
    pub fn new(
        host: &str,
        domain: Option<&str>,
        ip_sans: impl IntoIterator<Item = IpAddr>,
    ) -> Result<Names, NameError> {
        let host = host.to_ascii_lowercase();
        check_label("host", &host, &host)?;

        let domain = match domain {
            None => None,
            Some(domain) => {
                let domain = domain.to_ascii_lowercase();
                if domain.is_empty() {
                    return Err(NameError {
                        field: "domain",
                        value: domain,
                        reason: "must not be empty",
                    });
                }
                for label in domain.split('.') {
                    check_label("domain", &domain, label)?;
                }
                Some(domain)
            }
        };

        let mut unique: Vec<IpAddr> = Vec::new();
        for ip in ip_sans {
            if !unique.contains(&ip) {
                unique.push(ip);
            }
        }

        let names = Names {
            host,
            domain,
            ip_sans: unique,
        };
        let cn = names.cn();
        if cn.len() > MAX_NAME_LEN {
            return Err(NameError {
                field: "name",
                value: cn,
                reason: "the host and domain together exceed 253 characters",
            });
        }
        // RFC 3696 §2: a top-level label is never all-numeric, so "10.0.0.1" is not a DNS name.
        if cn
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(NameError {
                field: "name",
                value: cn,
                reason: "the last label must not be all digits (use an IP SAN for addresses)",
            });
        }
        Ok(names)
    }

    /// The host label, lower case.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The domain suffix, lower case, if any.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The IP addresses that get an IP SAN, without duplicates.
    pub fn ip_sans(&self) -> &[IpAddr] {
        &self.ip_sans
    }

    /// The certificates' common name: `host.domain`, or `host` alone without a domain.
    pub fn cn(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{}.{}", self.host, domain),
            None => self.host.clone(),
        }
    }
}

fn check_label(field: &'static str, value: &str, label: &str) -> Result<(), NameError> {
    let reject = |reason| {
        Err(NameError {
            field,
            value: value.to_owned(),
            reason,
        })
    };
    if label.is_empty() {
        return reject("empty label (no leading, trailing or doubled dots)");
    }
    if label.len() > MAX_LABEL_LEN {
        return reject("a label is longer than 63 characters");
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return reject("only letters, digits and hyphens are allowed in a label");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return reject("a label must not start or end with a hyphen");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn cn_joins_host_and_domain() {
        let names = Names::new("Gateway", Some("Example.COM"), []).unwrap();
        assert_eq!(names.cn(), "gateway.example.com");
        assert_eq!(names.host(), "gateway");
        assert_eq!(names.domain(), Some("example.com"));

        let bare = Names::new("edge-01", None, []).unwrap();
        assert_eq!(bare.cn(), "edge-01");
    }

    #[test]
    fn ip_sans_are_kept_in_order_without_duplicates() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let names = Names::new("edge", None, [v4, v6, v4]).unwrap();
        assert_eq!(names.ip_sans(), &[v4, v6]);
    }

    #[test]
    fn invalid_hosts_are_rejected() {
        let long = "a".repeat(64);
        for bad in [
            "",
            "-edge",
            "edge-",
            "edge.example",
            "ed_ge",
            "edge ",
            "édge",
            "*",
            long.as_str(),
            "123",
        ] {
            let err = Names::new(bad, None, []).unwrap_err();
            assert!(
                err.field == "host" || err.field == "name",
                "{bad:?} rejected as {err}"
            );
        }
        assert!(Names::new(&"a".repeat(63), None, []).is_ok());
    }

    #[test]
    fn invalid_domains_are_rejected() {
        for bad in [
            "",
            ".",
            "example.",
            ".example",
            "exa..mple",
            "exa mple.com",
            "-x.com",
            "x-.com",
            "example.123",
        ] {
            let err = Names::new("edge", Some(bad), []).unwrap_err();
            assert!(
                err.field == "domain" || err.field == "name",
                "{bad:?} rejected as {err}"
            );
        }
        assert!(Names::new("edge", Some("a-b.example.co.uk"), []).is_ok());
    }

    #[test]
    fn overlong_names_are_rejected() {
        let label = "a".repeat(63);
        let domain = [label.as_str(); 4].join(".");
        let err = Names::new("edge", Some(&domain), []).unwrap_err();
        assert_eq!(err.field, "name");
    }
}
