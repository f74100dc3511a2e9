//! The policy snapshot: what the control plane compiles and the data plane enforces.
//!
//! A [`Snapshot`] holds every account, ACL rule, API key and allowlisted device of one policy
//! generation, as plain data. The control plane builds one, [`encode`]s it and pushes the bytes
//! over the control link; the data plane [`decode`]s them into a [`Policy`] (checked twice:
//! structurally by rkyv's validation, then semantically) and swaps it in atomically.
//!
//! # Encoding
//!
//! ```text
//! offset  size  field
//!      0     8  magic "RMPTSNAP"
//!      8     4  schema version, u32 little-endian (SCHEMA_VERSION)
//!     12     4  reserved, zero
//!     16     8  generation, u64 little-endian (must equal the body's)
//!     24     8  body length, u64 little-endian (must equal what follows the header)
//!     32    32  SHA-256 of the body
//!     64     …  body: the Snapshot archived by rkyv 0.8 (little-endian, 32-bit offsets)
//! ```
//!
//! The whole encoding is at most [`MAX_SNAPSHOT`] bytes. The rkyv format depends on rkyv's
//! version and format features, which the workspace pins; a change there needs a new
//! [`SCHEMA_VERSION`].
//!
//! What this module deliberately does not do: hold secrets in clear. The snapshot carries the
//! installation's credential key (to verify digests) and digests only: never a password, an
//! Argon2 hash or an API-key secret. It never reads the clock either: times are passed in.

mod policy;
mod validate;

use sha2::{Digest as _, Sha256};

pub use crate::acl::Access;
pub use policy::{ApiKeyDenied, AuthDecision, Counts, DenyReason, DeviceDecision, Policy};
pub use validate::{
    MAX_ACCOUNTS, MAX_ACLS, MAX_API_KEYS, MAX_DEVICES, MAX_NAME_LEN, valid_name, valid_tenant_id,
};

/// Largest encoded snapshot (header included) either plane accepts: 64 MiB.
pub const MAX_SNAPSHOT: usize = 64 << 20;
/// The encoding's first eight bytes.
pub const MAGIC: [u8; 8] = *b"RMPTSNAP";
/// The body schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// Length of the fixed header before the body.
pub const HEADER_LEN: usize = 64;

// === The snapshot's records ===

/// One policy generation, as the control plane compiled it.
#[derive(Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Snapshot {
    /// The policy generation: increases with every change in the control plane's store.
    pub generation: u64,
    /// When the control plane compiled it, Unix milliseconds.
    pub created_at_ms: i64,
    /// The installation's credential key: the HMAC key of every digest below.
    pub credential_key: [u8; 32],
    /// Every account, sorted by name, names unique.
    pub accounts: Vec<AccountEntry>,
    /// Every ACL rule.
    pub acls: Vec<AclEntry>,
    /// Every usable API key (revoked and already expired keys are left out).
    pub api_keys: Vec<ApiKeyEntry>,
    /// The device allowlist.
    pub devices: Vec<DeviceEntry>,
    /// Data-plane limits that the control plane sets.
    pub limits: Limits,
}

/// A human user's role; service accounts have none.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub enum Role {
    /// Everything.
    Admin,
    /// Devices and their actions.
    Operator,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, in index order.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    /// The spelling used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Admin => 0,
            Self::Operator => 1,
            Self::Viewer => 2,
        }
    }
}

/// What kind of principal an account is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub enum AccountKind {
    /// A person (password verified by the control plane).
    Human,
    /// A machine with a generated secret (verified by the data plane).
    Service,
}

/// How an account's password is checked.
#[derive(Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Verifier {
    /// The data plane checks it: `cred::digest(credential_key, DOMAIN_ACCOUNT, password)`
    /// must equal this. Service accounts.
    Digest([u8; 32]),
    /// Only the control plane can check it (an Argon2id hash, which is never computed on a
    /// data-plane core). Human accounts.
    ControlPlane,
}

/// One account.
#[derive(Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct AccountEntry {
    /// Login name and MQTT username: non-empty, at most [`MAX_NAME_LEN`] bytes, no control
    /// characters.
    pub name: String,
    /// Human or service.
    pub kind: AccountKind,
    /// For humans: their role, whose ACL rules they get too. `None` for service accounts.
    pub role: Option<Role>,
    /// A disabled account is refused everything.
    pub disabled: bool,
    /// How its password is checked.
    pub verifier: Verifier,
}

/// Whom an ACL rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Subject {
    /// One account, by name (it must be in the snapshot).
    User(String),
    /// Every account with this role.
    Role(Role),
}

/// One ACL rule.
#[derive(Debug, Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct AclEntry {
    /// Whom it applies to.
    pub subject: Subject,
    /// A valid MQTT topic filter, possibly with `%u`/`%c` placeholders (see [`crate::acl`]).
    pub topic: String,
    /// What it grants.
    pub access: Access,
}

/// What an API key may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub enum Scope {
    /// GET requests only, no secrets.
    Read,
    /// Reads plus device management and device actions.
    Devices,
    /// Everything an admin can do.
    Admin,
}

impl Scope {
    /// The spelling used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Devices => "devices",
            Self::Admin => "admin",
        }
    }
}

/// One usable API key.
#[derive(Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ApiKeyEntry {
    /// The public key id ([`crate::cred::valid_key_id`]), unique.
    pub key_id: String,
    /// `cred::digest(credential_key, DOMAIN_API_KEY, secret)`.
    pub digest: [u8; 32],
    /// What it may do.
    pub scope: Scope,
    /// Unusable from this time on (Unix milliseconds), if it expires.
    pub expires_at_ms: Option<i64>,
}

/// One allowlisted AMT device.
#[derive(Clone, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct DeviceEntry {
    /// The AMT GUID, unique, in the byte order of its canonical text form (see
    /// [`parse_guid`]).
    pub guid: [u8; 16],
    /// The user name the device presents in APF user authentication.
    pub mps_username: String,
    /// `cred::digest(credential_key, DOMAIN_DEVICE, password)`; `None` until a password is
    /// set (the device is allowlisted but cannot authenticate).
    pub mps_digest: Option<[u8; 32]>,
    /// Tenant id; empty when multi-tenancy is not used.
    pub tenant_id: String,
}

/// Data-plane limits set by the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Limits {
    /// Failed authentications accepted from one source address per minute before further
    /// attempts are refused without checking. Default 10.
    pub max_auth_failures_per_minute: u32,
    /// Concurrent MQTT connections one account may hold. Default 64.
    pub max_connections_per_account: u32,
    /// Subscriptions one MQTT client may hold. Default 256.
    pub max_subscriptions_per_client: u32,
    /// Largest MQTT PUBLISH payload accepted, in bytes. Default 256 KiB.
    pub max_message_bytes: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_auth_failures_per_minute: 10,
            max_connections_per_account: 64,
            max_subscriptions_per_client: 256,
            max_message_bytes: 256 * 1024,
        }
    }
}

// Debug by hand: never print the credential key or a digest, even in a test failure.

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("created_at_ms", &self.created_at_ms)
            .field("credential_key", &"<redacted>")
            .field("accounts", &self.accounts)
            .field("acls", &self.acls)
            .field("api_keys", &self.api_keys)
            .field("devices", &self.devices)
            .field("limits", &self.limits)
            .finish()
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Digest(_) => f.write_str("Digest(<redacted>)"),
            Self::ControlPlane => f.write_str("ControlPlane"),
        }
    }
}

impl std::fmt::Debug for AccountEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountEntry")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("verifier", &self.verifier)
            .finish()
    }
}

impl std::fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("key_id", &self.key_id)
            .field("scope", &self.scope)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DeviceEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceEntry")
            .field("guid", &format_guid(&self.guid))
            .field("mps_username", &self.mps_username)
            .field("has_mps_digest", &self.mps_digest.is_some())
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

// === GUIDs ===

/// Parses a GUID's canonical text form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits in
/// either case) into 16 bytes **in the order the digits are written**: byte 0 is the first two
/// digits. This is not the mixed-endian layout SMBIOS and AMT use on the wire (whose first three
/// fields are little-endian); whoever reads a GUID from a device converts it to this order
/// before looking it up.
pub fn parse_guid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        let byte = out.get_mut(nibbles / 2)?;
        *byte = (*byte << 4) | v;
        nibbles += 1;
    }
    (nibbles == 32).then_some(out)
}

/// Formats 16 GUID bytes as the canonical lowercase text form; the inverse of [`parse_guid`].
pub fn format_guid(guid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in guid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

// === Errors ===

/// Which list of the snapshot a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Table {
    /// [`Snapshot::accounts`].
    Accounts,
    /// [`Snapshot::acls`].
    Acls,
    /// [`Snapshot::api_keys`].
    ApiKeys,
    /// [`Snapshot::devices`].
    Devices,
}

impl Table {
    /// The field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accounts => "accounts",
            Self::Acls => "acls",
            Self::ApiKeys => "api_keys",
            Self::Devices => "devices",
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is semantically wrong with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// More records than the table's limit (the index is the limit).
    #[error("more records than allowed")]
    TooMany,
    /// A name is empty, longer than [`MAX_NAME_LEN`] bytes, or has a control character.
    #[error("invalid name")]
    Name,
    /// Accounts are not in strictly increasing order of name.
    #[error("not sorted by name")]
    Unsorted,
    /// A second record with the same name, key id or GUID.
    #[error("duplicate")]
    Duplicate,
    /// A service account with a role.
    #[error("service account with a role")]
    ServiceWithRole,
    /// An ACL topic that is not a valid MQTT topic filter.
    #[error("invalid topic filter")]
    Topic,
    /// An ACL rule for an account that is not in the snapshot.
    #[error("rule for an unknown account")]
    UnknownAccount,
    /// A key id that is not 12 base62 characters.
    #[error("invalid API key id")]
    KeyId,
    /// A device's MPS user name is invalid (see [`Problem::Name`]).
    #[error("invalid MPS user name")]
    MpsUsername,
    /// A tenant id longer than [`MAX_NAME_LEN`] bytes or with a control character.
    #[error("invalid tenant id")]
    TenantId,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Longer than [`MAX_SNAPSHOT`].
    #[error("snapshot of {0} bytes is over the limit of {MAX_SNAPSHOT}")]
    TooLarge(usize),
    /// Shorter than the header.
    #[error("snapshot shorter than its header")]
    Truncated,
    /// The first eight bytes are not [`MAGIC`].
    #[error("not a Rampart policy snapshot (bad magic)")]
    Magic,
    /// A schema version this build does not read.
    #[error("unsupported snapshot schema version {0} (this build reads {SCHEMA_VERSION})")]
    Schema(u32),
    /// The reserved header field is not zero.
    #[error("reserved header field is not zero")]
    Reserved,
    /// The header's body length is not the length of what follows it.
    #[error("body length in the header does not match the data")]
    Length,
    /// The body's SHA-256 is not the header's.
    #[error("body checksum mismatch")]
    Checksum,
    /// The body is not a valid archive of a [`Snapshot`].
    #[error("body is not a valid snapshot archive")]
    Body,
    /// The header's generation is not the body's.
    #[error("header generation {header} differs from the body's {body}")]
    Generation {
        /// In the header.
        header: u64,
        /// In the body.
        body: u64,
    },
    /// A record breaks a semantic rule.
    #[error("invalid snapshot: {table}[{index}]: {problem}")]
    Invalid {
        /// Which list.
        table: Table,
        /// Which record (for [`Problem::TooMany`]: the limit).
        index: usize,
        /// What is wrong.
        problem: Problem,
    },
    /// The snapshot could not be serialised (too large for 32-bit offsets).
    #[error("cannot serialise the snapshot")]
    Encode,
}

impl SnapshotError {
    /// A short token for the control link's `REJECTED` line and for metrics: `[a-z_]+`, at
    /// most 64 bytes, never derived from the data.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "too_large",
            Self::Truncated => "truncated",
            Self::Magic => "bad_magic",
            Self::Schema(_) => "unsupported_schema",
            Self::Reserved => "reserved",
            Self::Length => "length_mismatch",
            Self::Checksum => "checksum_mismatch",
            Self::Body => "invalid_archive",
            Self::Generation { .. } => "generation_mismatch",
            Self::Invalid { table, .. } => match table {
                Table::Accounts => "invalid_accounts",
                Table::Acls => "invalid_acls",
                Table::ApiKeys => "invalid_api_keys",
                Table::Devices => "invalid_devices",
            },
            Self::Encode => "encode",
        }
    }
}

// === Encoding and decoding ===

/// Validates `snapshot` as [`decode`] would, then encodes it (header and rkyv body).
///
/// Fails if the snapshot breaks a semantic rule (so the control plane never publishes what
/// every data plane would refuse) or encodes to more than [`MAX_SNAPSHOT`] bytes.
pub fn encode(snapshot: &Snapshot) -> Result<Vec<u8>, SnapshotError> {
    validate::validate(snapshot)?;
    encode_unvalidated(snapshot)
}

fn encode_unvalidated(snapshot: &Snapshot) -> Result<Vec<u8>, SnapshotError> {
    let body =
        rkyv::to_bytes::<rkyv::rancor::Error>(snapshot).map_err(|_| SnapshotError::Encode)?;
    let total = HEADER_LEN.saturating_add(body.len());
    if total > MAX_SNAPSHOT {
        return Err(SnapshotError::TooLarge(total));
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&snapshot.generation.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&body));
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes and fully validates an encoded snapshot, and builds the [`Policy`] to enforce.
pub fn decode(bytes: &[u8]) -> Result<Policy, SnapshotError> {
    decode_snapshot(bytes).and_then(Policy::new)
}

/// Decodes and fully validates an encoded snapshot into plain data.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let header = Header::parse(bytes)?;
    if header.schema != SCHEMA_VERSION {
        return Err(SnapshotError::Schema(header.schema));
    }
    if header.reserved != 0 {
        return Err(SnapshotError::Reserved);
    }
    let body = &bytes[HEADER_LEN..];
    if header.body_len != body.len() as u64 {
        return Err(SnapshotError::Length);
    }
    if Sha256::digest(body).as_slice() != header.sha256 {
        return Err(SnapshotError::Checksum);
    }
    // rkyv needs its archive aligned; socket bytes are not.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
    let snapshot = rkyv::from_bytes::<Snapshot, rkyv::rancor::Error>(&aligned)
        .map_err(|_| SnapshotError::Body)?;
    if snapshot.generation != header.generation {
        return Err(SnapshotError::Generation {
            header: header.generation,
            body: snapshot.generation,
        });
    }
    validate::validate(&snapshot)?;
    Ok(snapshot)
}

/// The generation in an encoding's header, if it has a header with the right magic. For
/// reporting which generation was refused; says nothing about the rest.
pub fn peek_generation(bytes: &[u8]) -> Option<u64> {
    Header::parse(bytes).ok().map(|h| h.generation)
}

struct Header {
    schema: u32,
    reserved: u32,
    generation: u64,
    body_len: u64,
    sha256: [u8; 32],
}

impl Header {
    /// Size limit, length and magic; the remaining checks are the caller's.
    fn parse(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() > MAX_SNAPSHOT {
            return Err(SnapshotError::TooLarge(bytes.len()));
        }
        let Some((head, _)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(SnapshotError::Truncated);
        };
        let (magic, rest) = split::<8>(head);
        if magic != MAGIC {
            return Err(SnapshotError::Magic);
        }
        let (schema, rest) = split::<4>(rest);
        let (reserved, rest) = split::<4>(rest);
        let (generation, rest) = split::<8>(rest);
        let (body_len, rest) = split::<8>(rest);
        let (sha256, _) = split::<32>(rest);
        Ok(Self {
            schema: u32::from_le_bytes(schema),
            reserved: u32::from_le_bytes(reserved),
            generation: u64::from_le_bytes(generation),
            body_len: u64::from_le_bytes(body_len),
            sha256,
        })
    }
}

/// The first `N` bytes of `b` (zero-padded if shorter, which the fixed header never is).
fn split<const N: usize>(b: &[u8]) -> ([u8; N], &[u8]) {
    let mut out = [0u8; N];
    let n = b.len().min(N);
    out[..n].copy_from_slice(&b[..n]);
    (out, &b[n..])
}

#[cfg(test)]
mod tests;
