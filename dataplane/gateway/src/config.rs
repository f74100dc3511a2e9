//! The data plane's typed configuration. The TOML file is parsed at the edge (the `rampart`
//! binary); this crate only sees validated values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rampart_deadline::{StageLimit, StagePlan, StageSpec};
use rampart_rt::RtConfig;
use rampart_tls::CertPaths;

/// A public protocol the data plane serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The HTTPS front: web console, REST API, MQTT over WebSocket (default port 8443).
    Https,
    /// MQTT over TLS (default port 8883).
    Mqtt,
    /// CIRA: Intel AMT devices' APF tunnels over TLS (default port 4433).
    Cira,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The TLS handshake stage every protocol starts with: 10 s, never unlimited.
const HANDSHAKE: StageSpec = StageSpec {
    name: "handshake",
    default: StageLimit::fixed(secs(10)),
    bounded: true,
};

/// The stages of each protocol; the first after `handshake` is the one a new connection enters.
///
/// HTTP's defaults are Apache's (`header=20-40,MinRate=500 body=20,MinRate=500`), set here as
/// fixed values and refined by the `MinRate` defaults in [`Protocol::default_plan`].
const HTTPS_STAGES: &[StageSpec] = &[
    HANDSHAKE,
    StageSpec {
        name: "header",
        default: StageLimit::fixed(secs(20)),
        bounded: false,
    },
    StageSpec {
        name: "body",
        default: StageLimit::fixed(secs(20)),
        bounded: false,
    },
];

const MQTT_STAGES: &[StageSpec] = &[
    HANDSHAKE,
    StageSpec {
        name: "connect",
        default: StageLimit::fixed(secs(10)),
        bounded: true,
    },
];

const CIRA_STAGES: &[StageSpec] = &[
    HANDSHAKE,
    StageSpec {
        name: "auth",
        default: StageLimit::fixed(secs(15)),
        bounded: true,
    },
];

impl Protocol {
    /// Every protocol.
    pub const ALL: [Self; 3] = [Self::Https, Self::Mqtt, Self::Cira];

    /// Configuration and log spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Mqtt => "mqtt",
            Self::Cira => "cira",
        }
    }

    /// The default public port.
    pub fn default_port(&self) -> u16 {
        match self {
            Self::Https => 8443,
            Self::Mqtt => 8883,
            Self::Cira => 4433,
        }
    }

    /// The stages a connection of this protocol goes through, with their defaults.
    pub fn stage_specs(&self) -> &'static [StageSpec] {
        match self {
            Self::Https => HTTPS_STAGES,
            Self::Mqtt => MQTT_STAGES,
            Self::Cira => CIRA_STAGES,
        }
    }

    /// The stage after the TLS handshake.
    pub fn first_stage(&self) -> &'static str {
        self.stage_specs()[1].name
    }

    /// The default stage plan, in `request_read_timeout` syntax.
    pub fn default_plan_str(&self) -> &'static str {
        match self {
            Self::Https => "handshake=10 header=20-40,MinRate=500 body=20,MinRate=500",
            Self::Mqtt => "handshake=10 connect=10",
            Self::Cira => "handshake=10 auth=15",
        }
    }

    /// The default stage plan.
    pub fn default_plan(&self) -> StagePlan {
        // The defaults are constants of this crate and parse by construction; a unit test
        // checks every one, so falling back to the bare specs is unreachable in practice.
        StagePlan::parse(self.default_plan_str(), self.stage_specs())
            .unwrap_or_else(|_| StagePlan::defaults(self.stage_specs()))
    }

    /// ALPN protocols offered on this port.
    pub fn alpn(&self) -> &'static [&'static [u8]] {
        match self {
            Self::Https => &[b"http/1.1"],
            Self::Mqtt => &[b"mqtt"],
            // AMT does not send ALPN.
            Self::Cira => &[],
        }
    }
}

/// One public port.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// What it serves.
    pub protocol: Protocol,
    /// Addresses to listen on; each gets one `SO_REUSEPORT` socket per core.
    pub addrs: Vec<SocketAddr>,
    /// Certificate chain and key.
    pub cert: CertPaths,
    /// Stage limits: `handshake` and the protocol's own stages.
    pub stages: StagePlan,
    /// Longest a pending write may make no progress (slow-read defence).
    pub write_stall: Duration,
    /// Serve without TLS (MQTT only; the configuration allows it on loopback only unless
    /// marked dangerous). `cert` is then unused.
    pub plaintext: bool,
}

impl ListenerConfig {
    /// The limit of one of this protocol's stages. The plan is parsed against the protocol's
    /// specs and so has every stage; a stage missing anyway takes its spec's default.
    pub fn stage(&self, name: &str) -> StageLimit {
        self.stages.get(name).unwrap_or_else(|| {
            let specs = self.protocol.stage_specs();
            specs
                .iter()
                .find(|s| s.name == name)
                .map_or(HANDSHAKE.default, |s| s.default)
        })
    }
}

/// Everything the data plane needs.
#[derive(Debug, Clone)]
pub struct DataplaneConfig {
    /// Cores, driver, pinning.
    pub rt: RtConfig,
    /// Public ports.
    pub listeners: Vec<ListenerConfig>,
    /// Connections one core accepts at most; beyond, new connections are closed at accept.
    pub max_connections_per_core: usize,
    /// Accept queue length of each per-core socket.
    pub listen_backlog: i32,
    /// Longest a drain (SIGTERM) waits for connections before closing the rest.
    pub drain_timeout: Duration,
    /// The control plane's Unix socket, when running under `rampart up`.
    pub control_socket: Option<PathBuf>,
    /// The CIRA channel service's Unix socket (the control plane opens APF channels through
    /// it); None: no channel service.
    pub channel_socket: Option<PathBuf>,
    /// The MQTT broker's settings.
    pub broker: crate::mqtt::BrokerConfig,
    /// The HTTPS front's settings.
    pub front: crate::front::FrontConfig,
    /// The CIRA server's settings.
    pub cira: crate::cira::CiraConfig,
    /// Where the Prometheus endpoint listens (loopback), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plans_parse_and_bound_the_handshake() {
        for p in Protocol::ALL {
            let plan = StagePlan::parse(p.default_plan_str(), p.stage_specs()).unwrap();
            assert_eq!(plan, p.default_plan());
            let hs = plan.get("handshake").unwrap();
            assert_eq!(hs.worst_case(), Some(secs(10)));
            assert!(plan.get(p.first_stage()).is_some());
        }
        let https = Protocol::Https.default_plan();
        assert_eq!(https.get("header").unwrap().max(), Some(secs(40)));
        assert_eq!(https.get("body").unwrap().min_rate().unwrap().get(), 500);
    }
}
