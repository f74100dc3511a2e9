//! Control-plane credential handling for Rampart.
//!
//! - [`password`]: Argon2id hashing of human passwords (OWASP parameters), constant-shape
//!   verification for unknown accounts, rehash detection and a strength check.
//! - [`generate`]: random machine secrets, human-typable passwords, raw key bytes and session
//!   tokens, all from the operating system's CSPRNG and held in zeroizing buffers.
//! - [`envelope`]: local secret storage with envelope encryption (XChaCha20-Poly1305): a random
//!   data key per record, wrapped by the master key (`master.key`), with the record's identity
//!   bound as associated data; key ids and re-wrapping for master-key rotation.
//! - [`vault`]: a small synchronous HashiCorp Vault KV v2 client for per-device AMT passwords,
//!   using the Intel MPS layout (`secret/data/devices/<guid>` → `AMT_PASSWORD`).
//! - [`store`]: [`AmtSecretStore`], the one switch the control plane uses to keep AMT
//!   passwords either sealed locally (the caller stores the blob in its database) or in Vault.
//!
//! What it deliberately does not do:
//!
//! - no API-key token format and no keyed (HMAC) credential digests: those are shared with the
//!   data plane and live in `rampart_policy::cred`;
//! - no database access: sealed blobs are handed to, and taken from, the caller;
//! - no logging of secrets: passwords, tokens and keys never reach `tracing`, `Debug` output
//!   or error messages (key types print their key id only);
//! - no data-plane use: Argon2id and Vault round trips are slow and blocking, so call them
//!   from control-plane threads only;
//! - no reading of the secrets directory's files: `rampart-secrets` owns paths and modes (its
//!   `read_key32` loads `master.key` for [`envelope::Kek::from_bytes`]). The one exception is
//!   the Vault token file, which may live outside the secrets directory.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod envelope;
pub mod generate;
pub mod guid;
pub mod password;
pub mod store;
pub mod vault;

pub use envelope::{EnvelopeError, Kek, KeyId};
pub use generate::RandomError;
pub use guid::{DeviceGuid, InvalidGuid};
pub use password::{PasswordError, Weakness};
pub use store::{AmtSecretError, AmtSecretStore, amt_password_context};
pub use vault::{VaultClient, VaultConfig, VaultError, VaultHealth, VaultTokenSource};
