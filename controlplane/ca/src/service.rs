//! The services that get a TLS certificate.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseServiceError;

/// A Rampart service with its own TLS key and certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// The HTTPS front (web UI, REST API, MQTT over WebSocket).
    Https,
    /// The MQTT broker's TLS listener.
    Mqtt,
    /// The CIRA (Intel AMT APF over TLS) listener.
    Cira,
    /// The control plane's API listener; its certificate may also authenticate it as a client.
    ControlPlane,
}

impl Service {
    /// Every service, in the order files are written and reported.
    pub const ALL: [Service; 4] = [
        Service::Https,
        Service::Mqtt,
        Service::Cira,
        Service::ControlPlane,
    ];

    /// The service's name, also used as the file stem under `certs/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Https => "https",
            Service::Mqtt => "mqtt",
            Service::Cira => "cira",
            Service::ControlPlane => "controlplane",
        }
    }

    /// The extended key usages its certificate carries.
    pub(crate) fn extended_key_usages(self) -> Vec<rcgen::ExtendedKeyUsagePurpose> {
        use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        match self {
            Service::Https | Service::Mqtt | Service::Cira => vec![ServerAuth],
            Service::ControlPlane => vec![ServerAuth, ClientAuth],
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Service {
    type Err = ParseServiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Service::ALL
            .into_iter()
            .find(|service| service.as_str() == s)
            .ok_or_else(|| ParseServiceError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for service in Service::ALL {
            assert_eq!(service.as_str().parse::<Service>(), Ok(service));
            assert_eq!(service.to_string(), service.as_str());
        }
        let stems: std::collections::BTreeSet<_> =
            Service::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(stems.len(), Service::ALL.len());
    }

    #[test]
    fn unknown_names_are_rejected() {
        for bad in ["", "HTTPS", "control-plane", "https ", "../https"] {
            assert_eq!(
                bad.parse::<Service>(),
                Err(ParseServiceError(bad.to_owned()))
            );
        }
    }
}
