//! Generated passwords and keys. The generators themselves live in `rampart-credentials`;
//! this module only decides which one each file gets and how it is encoded on disk.

use base64::engine::general_purpose::STANDARD;
use rampart_credentials::generate::{self as credgen, HUMAN_PASSWORD_LEN};
use rampart_credentials::password;
use zeroize::Zeroizing;

use crate::error::SecretsError;

/// The superuser's login name.
pub const ADMIN_USER: &str = "admin";
/// Characters in a generated admin password (about 139 bits of entropy).
pub const ADMIN_PASSWORD_LEN: usize = HUMAN_PASSWORD_LEN;
/// Length of `master.key` and `credential.key` in bytes (before base64).
pub const KEY_LEN: usize = 32;

/// Random bytes behind the session-signing secret.
const SESSION_KEY_BYTES: usize = 64;
/// Random bytes behind a generated database password (`openssl rand -base64 12`).
const DB_PASSWORD_BYTES: usize = 12;

fn encode(bytes: &[u8], extra: usize) -> Zeroizing<String> {
    use base64::Engine as _;
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4 + extra));
    STANDARD.encode_string(bytes, &mut out);
    out
}

/// The admin password (SUPASS): [`rampart_credentials::generate::human_password`], 24
/// characters from an alphabet without look-alikes, drawn without modulo bias.
pub(crate) fn admin_password() -> Result<Zeroizing<String>, SecretsError> {
    Ok(credgen::human_password()?)
}

/// The Argon2id PHC string for `password` ([`rampart_credentials::password::hash`]: m=19456
/// KiB, t=2, p=1, the OWASP minimum, and a random 16-byte salt).
pub(crate) fn hash_password(password: &str) -> Result<String, SecretsError> {
    password::hash(password).map_err(SecretsError::PasswordHash)
}

/// The session-signing secret: 64 random bytes, standard base64, newline-terminated.
pub(crate) fn session_key() -> Result<Zeroizing<String>, SecretsError> {
    let bytes = credgen::random_bytes::<SESSION_KEY_BYTES>()?;
    let mut text = encode(&bytes[..], 1);
    text.push('\n');
    Ok(text)
}

/// A 32-byte key file (`master.key`, `credential.key`): standard base64, newline-terminated.
pub(crate) fn key32() -> Result<Zeroizing<String>, SecretsError> {
    let bytes = credgen::random_bytes::<KEY_LEN>()?;
    let mut text = encode(&bytes[..], 1);
    text.push('\n');
    Ok(text)
}

/// A database password like `openssl rand -base64 12`: 16 characters of standard base64.
pub(crate) fn db_password() -> Result<Zeroizing<String>, SecretsError> {
    let bytes = credgen::random_bytes::<DB_PASSWORD_BYTES>()?;
    Ok(encode(&bytes[..], 1))
}

/// A service-account password: [`rampart_credentials::generate::machine_secret`], 32 random
/// bytes in base64url without padding (43 characters, safe in JSON, URLs and MQTT CONNECT
/// without escaping).
pub(crate) fn account_password() -> Result<Zeroizing<String>, SecretsError> {
    Ok(credgen::machine_secret()?)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn admin_passwords_come_from_the_shared_generator() {
        let password = admin_password().unwrap();
        assert_eq!(password.len(), ADMIN_PASSWORD_LEN);
        assert!(
            password
                .bytes()
                .all(|b| credgen::HUMAN_PASSWORD_ALPHABET.as_bytes().contains(&b))
        );
        assert_ne!(password, admin_password().unwrap());
    }

    #[test]
    fn hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let phc = hash_password("hunter2-but-longer").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(password::verify(&phc, "hunter2-but-longer"));
        assert!(!password::verify(&phc, "hunter3-but-longer"));
    }

    #[test]
    fn generated_secret_shapes() {
        let session = session_key().unwrap();
        assert_eq!(STANDARD.decode(session.trim_end()).unwrap().len(), 64);
        let key = key32().unwrap();
        assert!(key.ends_with('\n'));
        assert_eq!(STANDARD.decode(key.trim_end()).unwrap().len(), 32);
        assert_ne!(key, key32().unwrap());
        let db = db_password().unwrap();
        assert_eq!(db.len(), 16);
        assert_eq!(STANDARD.decode(db.as_bytes()).unwrap().len(), 12);
        let account = account_password().unwrap();
        assert_eq!(account.len(), 43);
        assert_eq!(
            URL_SAFE_NO_PAD.decode(account.as_bytes()).unwrap().len(),
            32
        );
    }
}
