//! The records the store keeps. Plain data: no I/O, no validation beyond types.
//!
//! Times are Unix milliseconds (`i64`) everywhere, so both backends store them as integers and
//! compare them the same way.

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds.
pub type Millis = i64;

/// A human user's role. Service accounts have no role: what they may do is their ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including accounts, keys and the audit log.
    Admin,
    /// Devices and their actions; reads everything but secrets and accounts' credentials.
    Operator,
    /// Reads only.
    Viewer,
}

impl Role {
    /// The stored and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// What kind of principal an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A person: Argon2id password, verified only in the control plane.
    Human,
    /// A machine (scene controller, camera, calibration service): a generated high-entropy
    /// secret stored as a keyed digest, which the data plane verifies itself.
    Service,
}

impl AccountKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Human => "human",
            AccountKind::Service => "service",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<AccountKind> {
        match s {
            "human" => Some(AccountKind::Human),
            "service" => Some(AccountKind::Service),
            _ => None,
        }
    }
}

/// How an account proves who it is. Exactly one form per account kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An Argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`). Humans.
    Argon2(String),
    /// A keyed digest (HMAC-SHA256 under the installation's credential key) of a generated
    /// secret. Service accounts.
    Digest([u8; 32]),
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Store-assigned id.
    pub id: i64,
    /// Login name, unique. Also the MQTT username.
    pub name: String,
    /// Human or service.
    pub kind: AccountKind,
    /// For humans; `None` for service accounts.
    pub role: Option<Role>,
    /// A disabled account cannot authenticate anywhere.
    pub disabled: bool,
    /// Its credential.
    pub credential: Credential,
    /// Created.
    pub created_at: Millis,
    /// Last changed (role, password, disabled).
    pub updated_at: Millis,
}

/// The fields of a new account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Login name.
    pub name: String,
    /// Human or service.
    pub kind: AccountKind,
    /// For humans.
    pub role: Option<Role>,
    /// Its credential.
    pub credential: Credential,
}

/// A partial update to an account: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    /// New role (humans only).
    pub role: Option<Role>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// New credential.
    pub credential: Option<Credential>,
}

/// What an ACL rule grants. Mosquitto's access types plus `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Receive messages published to matching topics (and subscribe to filters inside it).
    Read,
    /// Publish to matching topics.
    Write,
    /// Both.
    Readwrite,
    /// Send SUBSCRIBE for filters inside it (delivery still needs `read`).
    Subscribe,
    /// Nothing; a matching deny rule wins over every allow rule.
    Deny,
}

impl Access {
    /// The stored and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Readwrite => "readwrite",
            Access::Subscribe => "subscribe",
            Access::Deny => "deny",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "readwrite" => Some(Access::Readwrite),
            "subscribe" => Some(Access::Subscribe),
            "deny" => Some(Access::Deny),
            _ => None,
        }
    }
}

/// Whom an ACL rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AclSubject {
    /// One account, by name (a rule for a deleted account is deleted with it).
    User(String),
    /// Every human account with this role.
    Role(Role),
}

/// One ACL rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// Store-assigned id.
    pub id: i64,
    /// Whom it applies to.
    pub subject: AclSubject,
    /// An MQTT topic filter, possibly with `%u` and `%c`.
    pub topic: String,
    /// What it grants.
    pub access: Access,
    /// Created.
    pub created_at: Millis,
}

/// The fields of a new ACL rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAclRule {
    /// Whom it applies to.
    pub subject: AclSubject,
    /// The topic filter.
    pub topic: String,
    /// What it grants.
    pub access: Access,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// GET requests only, no secrets.
    Read,
    /// Reads plus device management and device actions.
    Devices,
    /// Everything an admin can do.
    Admin,
}

impl Scope {
    /// The stored and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Devices => "devices",
            Scope::Admin => "admin",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "devices" => Some(Scope::Devices),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// An API key's record. The key itself is never stored: only its id and keyed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Store-assigned id.
    pub id: i64,
    /// The public part of the key (after the prefix), unique; the lookup handle.
    pub key_id: String,
    /// A label chosen by its creator.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// Keyed digest of the secret part.
    pub digest: [u8; 32],
    /// The account that created it.
    pub created_by: String,
    /// Created.
    pub created_at: Millis,
    /// Unusable from this time on.
    pub expires_at: Option<Millis>,
    /// Last successful use (coalesced; not exact to the request).
    pub last_used_at: Option<Millis>,
    /// Revoked at; a revoked key never comes back.
    pub revoked_at: Option<Millis>,
}

/// The fields of a new API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Public id.
    pub key_id: String,
    /// Label.
    pub name: String,
    /// Scope.
    pub scope: Scope,
    /// Keyed digest of the secret.
    pub digest: [u8; 32],
    /// Creator.
    pub created_by: String,
    /// Expiry.
    pub expires_at: Option<Millis>,
}

/// An AMT device on the allowlist (MPS's device row plus our credential fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The AMT GUID, canonical lowercase hyphenated form, unique.
    pub guid: String,
    /// Host name.
    pub hostname: Option<String>,
    /// A display name.
    pub friendly_name: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Tenant id ("" when multi-tenancy is not used, as in MPS).
    pub tenant_id: String,
    /// DNS suffix reported by the device.
    pub dns_suffix: Option<String>,
    /// The user name the device presents in APF user authentication.
    pub mps_username: String,
    /// Keyed digest of the device's MPS password; `None` until one is set (such a device is
    /// allowlisted but cannot authenticate).
    pub mps_digest: Option<[u8; 32]>,
    /// The AMT admin password, sealed (envelope encryption); `None` if unset or kept in Vault.
    pub amt_password: Option<Vec<u8>>,
    /// MPS's `deviceInfo` object, kept as JSON text.
    pub device_info: Option<String>,
    /// Created.
    pub created_at: Millis,
    /// Last changed.
    pub updated_at: Millis,
    /// Connection state, written by the CIRA side (never part of the policy generation).
    pub connection: DeviceConnection,
}

/// A device's connection state (MPS's `connectionStatus`, `lastConnected`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceConnection {
    /// Connected now.
    pub connected: bool,
    /// The node holding its tunnel.
    pub node: Option<String>,
    /// Last connect.
    pub last_connected: Option<Millis>,
    /// Last traffic seen (coalesced).
    pub last_seen: Option<Millis>,
    /// Last disconnect.
    pub last_disconnected: Option<Millis>,
}

/// One data plane's report on the CIRA devices it holds (one `DEVICES` frame of the control
/// link), applied by [`Store::record_connections`](crate::Store::record_connections).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionReport {
    /// The data plane (`mpsInstance`).
    pub node: String,
    /// The events are every device connected to `node` now: every other device recorded as
    /// connected there is disconnected.
    pub full: bool,
    /// In the order they happened.
    pub events: Vec<ConnectionEvent>,
}

/// A device connecting (or listed in a full report) or disconnecting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionEvent {
    /// Canonical GUID. An unknown one (a device deleted meanwhile) is ignored.
    pub guid: String,
    /// Connected or disconnected.
    pub connected: bool,
    /// When it connected or disconnected.
    pub at: Millis,
    /// When it was last heard from.
    pub last_seen: Millis,
}

/// What [`Store::record_connections`](crate::Store::record_connections) changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionsRecorded {
    /// Device rows the events updated (an unknown GUID, or a disconnect from a node that no
    /// longer holds the device, updates none).
    pub updated: u64,
    /// Devices a full report found no longer connected to its node.
    pub reconciled: u64,
}

/// The fields of a new device, or all fields of an upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// Canonical GUID.
    pub guid: String,
    /// Host name.
    pub hostname: Option<String>,
    /// Display name.
    pub friendly_name: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Tenant.
    pub tenant_id: String,
    /// DNS suffix.
    pub dns_suffix: Option<String>,
    /// MPS user name.
    pub mps_username: String,
    /// MPS password digest.
    pub mps_digest: Option<[u8; 32]>,
    /// `deviceInfo` JSON text.
    pub device_info: Option<String>,
}

/// A partial update to a device: `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceUpdate {
    /// Host name.
    pub hostname: Option<Option<String>>,
    /// Display name.
    pub friendly_name: Option<Option<String>>,
    /// Tags (replaced as a whole).
    pub tags: Option<Vec<String>>,
    /// Tenant.
    pub tenant_id: Option<String>,
    /// DNS suffix.
    pub dns_suffix: Option<Option<String>>,
    /// MPS user name.
    pub mps_username: Option<String>,
    /// MPS password digest.
    pub mps_digest: Option<Option<[u8; 32]>>,
    /// Sealed AMT password.
    pub amt_password: Option<Option<Vec<u8>>>,
    /// `deviceInfo` JSON text.
    pub device_info: Option<Option<String>>,
}

/// How [`crate::Store::list_devices`] filters and pages (MPS's query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceQuery {
    /// Exact host name.
    pub hostname: Option<String>,
    /// Exact display name.
    pub friendly_name: Option<String>,
    /// Devices carrying these tags...
    pub tags: Vec<String>,
    /// ...all of them (`true`, MPS `method=AND`) or any of them (`false`, `OR`).
    pub tags_all: bool,
    /// Only this tenant.
    pub tenant_id: Option<String>,
    /// Only connected (`Some(true)`) or disconnected devices.
    pub connected: Option<bool>,
    /// Skip this many (after filtering, ordered by GUID).
    pub skip: u32,
    /// Return at most this many.
    pub top: u32,
}

/// A web session. Only digests of its two tokens are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Digest of the session cookie's token: the lookup key.
    pub token_digest: [u8; 32],
    /// Digest of its CSRF token.
    pub csrf_digest: [u8; 32],
    /// The account it belongs to (deleting the account deletes its sessions).
    pub account: String,
    /// Created.
    pub created_at: Millis,
    /// Unusable from this time on.
    pub expires_at: Millis,
}

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was refused or failed.
    Failure,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// One audit record. Never carries a password, key, token or hash: `detail` is for reasons
/// and non-secret attributes only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Store-assigned, increasing; 0 before it is stored.
    #[serde(default)]
    pub id: i64,
    /// When.
    pub time: Millis,
    /// Who (account name, `apikey:<key_id>`, `device:<guid>`, `local:<uid>`, `system`).
    pub actor: String,
    /// Source address, if there is one.
    pub source: Option<String>,
    /// What, dotted (`auth.login`, `user.create`, `acl.deny`, `device.connect`, ...).
    pub action: String,
    /// On what (account name, rule id, key id, GUID), if anything.
    pub object: Option<String>,
    /// Success or failure.
    pub outcome: Outcome,
    /// A short non-secret reason or detail.
    pub detail: Option<String>,
}

/// Which audit records [`crate::Store::list_audit`] returns, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records with an id below this (paging backwards).
    pub before_id: Option<i64>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// Everything the policy snapshot is compiled from, read in one consistent transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyData {
    /// The policy generation this data is at.
    pub generation: u64,
    /// All accounts.
    pub accounts: Vec<Account>,
    /// All ACL rules.
    pub acls: Vec<AclRule>,
    /// API keys that are neither revoked nor expired at read time.
    pub api_keys: Vec<ApiKey>,
    /// All devices.
    pub devices: Vec<Device>,
}
