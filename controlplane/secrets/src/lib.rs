//! Rampart's secrets directory: its layout, file modes, first-run `init`, installing externally
//! signed certificates, and the permission check run before anything reads a secret.
//!
//! Layout (every directory 0700, every file 0600):
//!
//! ```text
//! <secrets>/ca/ca.pem            CA certificate (self-signed, or the external CA after install)
//! <secrets>/ca/ca.key            CA key, PKCS#8 encrypted under a discarded CERTPASS
//! <secrets>/certs/<svc>.pem      service certificate (svc = https | mqtt | cira | controlplane)
//! <secrets>/certs/<svc>.key      service private key, PKCS#8
//! <secrets>/certs/<svc>.csr      CSR for an external CA (`csr` mode)
//! <secrets>/admin.argon2         Argon2id PHC hash of the `admin` password (SUPASS)
//! <secrets>/session.key          session-signing secret, 64 random bytes in base64
//! <secrets>/master.key           master key (KEK) for locally sealed secrets, 32 bytes in base64
//! <secrets>/credential.key       HMAC key for machine-credential digests, 32 bytes in base64
//! <secrets>/dbpass               database password
//! <secrets>/controller.auth      {"user": "scenectrl", "password": "..."}
//! <secrets>/browser.auth         {"user": "webuser", "password": "..."}
//! <secrets>/calibration.auth     {"user": "calibration", "password": "..."}
//! ```
//!
//! Files are created with their final mode (never chmod after writing) through a temporary
//! file in the same directory, then linked (new files) or renamed (replacements) into place, so
//! a reader never sees a partial secret and an existing secret is never clobbered by accident.
//!
//! An installation initialised before `master.key` and `credential.key` existed gets them from
//! [`ensure_keys`] at start-up; [`read_key32`] loads them with the same mode rules.
//!
//! Generators (passwords, keys) and Argon2id hashing come from `rampart-credentials`, so there
//! is one implementation of each.
//!
//! What it deliberately does not do:
//!
//! - no silent repair: a directory or file that group or others can access is an error, not
//!   something to chmod quietly;
//! - no printing or logging: the generated admin password is handed back once in
//!   [`InitReport::admin_password`] and the caller shows it; plaintext passwords for `admin`
//!   and CERTPASS are never written anywhere;
//! - no ownership checks (uid) and no protection against another process of the same user;
//! - no PKI crypto of its own: keys, certificates and checks come from `rampart-ca`.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod auth;
mod check;
mod error;
mod fsutil;
mod generate;
mod init;
mod install;
mod keys;
mod layout;

pub use auth::read_auth_file;
pub use check::check_private;
pub use error::SecretsError;
pub use generate::{ADMIN_PASSWORD_LEN, ADMIN_USER, KEY_LEN};
pub use init::{InitOptions, InitReport, init};
pub use install::install_certs;
pub use keys::{ensure_keys, read_key32};
pub use layout::{DIR_MODE, FILE_MODE, Layout, ServiceAccount};
pub use rampart_ca::{Names, Service};
