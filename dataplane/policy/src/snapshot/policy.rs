//! [`Policy`]: a validated snapshot with lookup indexes, and the decisions it makes.

use std::collections::HashMap;
use std::fmt;
use std::hint::black_box;

use super::{
    AccountKind, DeviceEntry, Limits, Role, Scope, Snapshot, SnapshotError, Subject, Verifier,
};
use crate::acl::{self, AclAction, Rule};
use crate::cred::{self, DOMAIN_ACCOUNT, DOMAIN_API_KEY, DOMAIN_DEVICE, TokenError};

/// The outcome of [`Policy::authenticate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDecision {
    /// The password is right and the account enabled.
    Allowed,
    /// Refused; the reason is for logs and metrics, never for the client.
    Denied(DenyReason),
    /// Only the control plane can check this account's password (a human's Argon2id hash,
    /// which is never computed on a data-plane core). The account exists and is enabled.
    AskControlPlane,
}

/// Why an authentication was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No such account.
    UnknownUser,
    /// The account is disabled.
    Disabled,
    /// The password does not match.
    BadPassword,
}

impl DenyReason {
    /// A short label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::Disabled => "disabled",
            Self::BadPassword => "bad_password",
        }
    }
}

/// Why an API key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyDenied {
    /// Not a well-formed token (including a checksum mismatch: a typo).
    #[error("{0}")]
    Malformed(TokenError),
    /// No usable key with this id (never existed, revoked, or not in this generation).
    #[error("unknown API key")]
    Unknown,
    /// The key id exists but the secret does not match.
    #[error("wrong API key secret")]
    BadSecret,
    /// The key has expired.
    #[error("API key expired")]
    Expired,
}

/// The outcome of [`Policy::verify_device`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceDecision {
    /// The GUID is not on the allowlist (no credential was checked).
    NotAllowlisted,
    /// Allowlisted, but no MPS password has been set for it.
    NoCredential,
    /// Wrong user name or password.
    BadCredentials,
    /// Allowlisted and the credentials match.
    Allowed,
}

/// How many records a policy holds, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Accounts.
    pub accounts: usize,
    /// ACL rules.
    pub acls: usize,
    /// API keys.
    pub api_keys: usize,
    /// Devices.
    pub devices: usize,
}

/// A validated policy generation, indexed for the data plane's questions. Immutable; a new
/// generation is a new `Policy`. Every method is pure: the time is passed in.
pub struct Policy {
    generation: u64,
    created_at_ms: i64,
    key: [u8; 32],
    limits: Limits,
    accounts: HashMap<String, Account>,
    rules_by_user: HashMap<String, Vec<Rule>>,
    rules_by_role: [Vec<Rule>; 3],
    api_keys: HashMap<String, ApiKey>,
    devices: HashMap<[u8; 16], DeviceEntry>,
    counts: Counts,
}

struct Account {
    role: Option<Role>,
    disabled: bool,
    verifier: Verifier,
}

struct ApiKey {
    digest: [u8; 32],
    scope: Scope,
    expires_at_ms: Option<i64>,
}

impl Policy {
    /// Validates `snapshot` and indexes it.
    pub fn new(snapshot: Snapshot) -> Result<Self, SnapshotError> {
        super::validate::validate(&snapshot)?;
        let Snapshot {
            generation,
            created_at_ms,
            credential_key,
            accounts,
            acls,
            api_keys,
            devices,
            limits,
        } = snapshot;
        let counts = Counts {
            accounts: accounts.len(),
            acls: acls.len(),
            api_keys: api_keys.len(),
            devices: devices.len(),
        };
        let accounts = accounts
            .into_iter()
            .map(|a| {
                // A service account never takes a role's rules (validation refuses one with a
                // role; this keeps the index honest regardless).
                let role = if a.kind == AccountKind::Service {
                    None
                } else {
                    a.role
                };
                (
                    a.name,
                    Account {
                        role,
                        disabled: a.disabled,
                        verifier: a.verifier,
                    },
                )
            })
            .collect();
        let mut rules_by_user: HashMap<String, Vec<Rule>> = HashMap::new();
        let mut rules_by_role: [Vec<Rule>; 3] = Default::default();
        for entry in acls {
            // Validation checked every topic; a failure here cannot happen, and skipping the
            // rule would only ever remove access.
            let Ok(rule) = Rule::new(&entry.topic, entry.access) else {
                continue;
            };
            match entry.subject {
                Subject::User(name) => rules_by_user.entry(name).or_default().push(rule),
                Subject::Role(role) => rules_by_role[role.index()].push(rule),
            }
        }
        let api_keys = api_keys
            .into_iter()
            .map(|k| {
                (
                    k.key_id,
                    ApiKey {
                        digest: k.digest,
                        scope: k.scope,
                        expires_at_ms: k.expires_at_ms,
                    },
                )
            })
            .collect();
        let devices = devices.into_iter().map(|d| (d.guid, d)).collect();
        Ok(Self {
            generation,
            created_at_ms,
            key: credential_key,
            limits,
            accounts,
            rules_by_user,
            rules_by_role,
            api_keys,
            devices,
            counts,
        })
    }

    /// The policy generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the control plane compiled it, Unix milliseconds.
    pub fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }

    /// The limits the control plane set.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How many records it holds.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Checks a username and password (MQTT CONNECT, HTTP basic auth).
    ///
    /// Service accounts are checked here, comparing digests in constant time; an unknown user
    /// costs one digest too, so timing does not tell which names exist. Accounts with
    /// [`Verifier::ControlPlane`] (humans) get [`AuthDecision::AskControlPlane`].
    pub fn authenticate(&self, username: &str, password: &[u8]) -> AuthDecision {
        let Some(account) = self.accounts.get(username) else {
            black_box(cred::digest(&self.key, DOMAIN_ACCOUNT, password));
            return AuthDecision::Denied(DenyReason::UnknownUser);
        };
        match &account.verifier {
            Verifier::ControlPlane if account.disabled => {
                AuthDecision::Denied(DenyReason::Disabled)
            }
            Verifier::ControlPlane => AuthDecision::AskControlPlane,
            Verifier::Digest(expected) => {
                let ok = cred::verify(&self.key, DOMAIN_ACCOUNT, password, expected);
                if account.disabled {
                    AuthDecision::Denied(DenyReason::Disabled)
                } else if ok {
                    AuthDecision::Allowed
                } else {
                    AuthDecision::Denied(DenyReason::BadPassword)
                }
            }
        }
    }

    /// Whether `username` names an enabled account (a live MQTT connection of an account that
    /// is no longer active is closed).
    pub fn account_active(&self, username: &str) -> bool {
        self.accounts.get(username).is_some_and(|a| !a.disabled)
    }

    /// Whether the account `username`, connected as `client_id`, may do `action` (see
    /// [`crate::acl`] for the rules). Unknown and disabled accounts may do nothing.
    pub fn check(&self, username: &str, client_id: &str, action: AclAction<'_>) -> bool {
        let Some(account) = self.accounts.get(username) else {
            return false;
        };
        if account.disabled {
            return false;
        }
        let own = self
            .rules_by_user
            .get(username)
            .map_or(&[][..], Vec::as_slice);
        let role = account
            .role
            .map_or(&[][..], |r| self.rules_by_role[r.index()].as_slice());
        acl::evaluate(own.iter().chain(role), username, client_id, action)
    }

    /// Checks an API-key token at `now_ms` (Unix milliseconds) and returns its scope.
    pub fn api_key(&self, token: &str, now_ms: i64) -> Result<Scope, ApiKeyDenied> {
        let parts = cred::parse_api_key(token).map_err(ApiKeyDenied::Malformed)?;
        let Some(key) = self.api_keys.get(parts.key_id) else {
            black_box(cred::digest(
                &self.key,
                DOMAIN_API_KEY,
                parts.secret.as_bytes(),
            ));
            return Err(ApiKeyDenied::Unknown);
        };
        if !cred::verify(
            &self.key,
            DOMAIN_API_KEY,
            parts.secret.as_bytes(),
            &key.digest,
        ) {
            return Err(ApiKeyDenied::BadSecret);
        }
        if key.expires_at_ms.is_some_and(|t| now_ms >= t) {
            return Err(ApiKeyDenied::Expired);
        }
        Ok(key.scope)
    }

    /// The allowlist entry of a device, by GUID (byte order of [`super::parse_guid`]).
    pub fn device(&self, guid: &[u8; 16]) -> Option<&DeviceEntry> {
        self.devices.get(guid)
    }

    /// Checks a device's APF user authentication. The allowlist is checked first: a device
    /// not on it costs no credential work.
    pub fn verify_device(
        &self,
        guid: &[u8; 16],
        username: &str,
        password: &[u8],
    ) -> DeviceDecision {
        let Some(device) = self.devices.get(guid) else {
            return DeviceDecision::NotAllowlisted;
        };
        let Some(expected) = &device.mps_digest else {
            return DeviceDecision::NoCredential;
        };
        let password_ok = cred::verify(&self.key, DOMAIN_DEVICE, password, expected);
        // The user name is not secret; evaluate both before deciding anyway.
        let user_ok = device.mps_username == username;
        if password_ok & user_ok {
            DeviceDecision::Allowed
        } else {
            DeviceDecision::BadCredentials
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("generation", &self.generation)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}
