//! Where the control plane keeps AMT passwords: sealed locally, or in Vault.

use zeroize::Zeroizing;

use crate::envelope::{self, EnvelopeError, Kek};
use crate::guid::{DeviceGuid, InvalidGuid};
use crate::vault::{VaultClient, VaultError};

/// Why storing, loading or deleting an AMT password failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmtSecretError {
    /// The device GUID is not canonical.
    #[error(transparent)]
    InvalidGuid(#[from] InvalidGuid),
    /// Sealing or opening the local blob failed.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// Vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The decrypted password is not UTF-8 (the blob was not written by [`AmtSecretStore`]).
    #[error("the stored AMT password is not UTF-8 text")]
    NotText,
    /// Vault answered but cannot serve secrets (sealed, uninitialised, or a DR secondary).
    #[error("Vault is not ready (HTTP {status}, sealed: {sealed}, initialised: {initialized})")]
    NotReady {
        /// Health status code.
        status: u16,
        /// Sealed.
        sealed: bool,
        /// Initialised.
        initialized: bool,
    },
}

/// The AMT password store the control plane is configured with.
///
/// - `Local`: the password is sealed with the master key ([`envelope::seal`], context
///   `device:<guid>:amt_password`), and the caller keeps the blob in its database row for the
///   device. [`AmtSecretStore::store`] returns the blob; [`AmtSecretStore::load`] needs it back.
/// - `Vault`: the password lives in Vault at `<secrets_path>devices/<guid>` (the MPS layout);
///   nothing goes into the database, `store` returns `None` and `load` ignores the blob.
#[derive(Debug)]
pub enum AmtSecretStore {
    /// Envelope encryption under this master key; blobs live in the caller's database.
    Local(Kek),
    /// HashiCorp Vault KV v2.
    Vault(VaultClient),
}

impl AmtSecretStore {
    /// Stores `password` for the device. Returns the blob to save in the device's database row
    /// (`Local`), or `None` when there is nothing to save (`Vault`).
    pub fn store(&self, guid: &str, password: &str) -> Result<Option<Vec<u8>>, AmtSecretError> {
        let guid = DeviceGuid::parse(guid)?;
        match self {
            AmtSecretStore::Local(kek) => Ok(Some(envelope::seal(
                kek,
                &context(&guid),
                password.as_bytes(),
            )?)),
            AmtSecretStore::Vault(client) => {
                client.put_amt_password(guid.as_str(), password)?;
                Ok(None)
            }
        }
    }

    /// Loads the device's password. `blob` is what [`AmtSecretStore::store`] returned (from
    /// the database row); `Local` with no blob means no password is stored. `None` if the device
    /// has no password.
    pub fn load(
        &self,
        guid: &str,
        blob: Option<&[u8]>,
    ) -> Result<Option<Zeroizing<String>>, AmtSecretError> {
        let guid = DeviceGuid::parse(guid)?;
        match self {
            AmtSecretStore::Local(kek) => {
                let Some(blob) = blob else {
                    return Ok(None);
                };
                let mut bytes = envelope::open(kek, &context(&guid), blob)?;
                match String::from_utf8(std::mem::take(&mut *bytes)) {
                    Ok(text) => Ok(Some(Zeroizing::new(text))),
                    Err(e) => {
                        drop(Zeroizing::new(e.into_bytes()));
                        Err(AmtSecretError::NotText)
                    }
                }
            }
            AmtSecretStore::Vault(client) => Ok(client.get_amt_password(guid.as_str())?),
        }
    }

    /// Forgets the device's password. `Local`: nothing to do here (the caller deletes the row
    /// holding the blob). `Vault`: deletes every version and the metadata.
    pub fn delete(&self, guid: &str) -> Result<(), AmtSecretError> {
        let guid = DeviceGuid::parse(guid)?;
        match self {
            AmtSecretStore::Local(_) => Ok(()),
            AmtSecretStore::Vault(client) => Ok(client.delete_device(guid.as_str())?),
        }
    }

    /// The backend's name for health reports: `local` or `vault`.
    pub fn name(&self) -> &'static str {
        match self {
            AmtSecretStore::Local(_) => "local",
            AmtSecretStore::Vault(_) => "vault",
        }
    }

    /// Whether the store can serve secrets now. `Local` always can; `Vault` asks
    /// `sys/health`.
    pub fn health(&self) -> Result<(), AmtSecretError> {
        match self {
            AmtSecretStore::Local(_) => Ok(()),
            AmtSecretStore::Vault(client) => {
                let h = client.health()?;
                if h.is_ok() {
                    Ok(())
                } else {
                    Err(AmtSecretError::NotReady {
                        status: h.status,
                        sealed: h.sealed,
                        initialized: h.initialized,
                    })
                }
            }
        }
    }

    /// Whether blobs returned by [`AmtSecretStore::store`] must be kept by the caller.
    pub fn uses_database(&self) -> bool {
        matches!(self, AmtSecretStore::Local(_))
    }
}

/// The associated-data context binding a sealed AMT password to its device.
pub fn amt_password_context(guid: &DeviceGuid) -> String {
    context(guid)
}

fn context(guid: &DeviceGuid) -> String {
    format!("device:{guid}:amt_password")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "4C4C4544-0035-5910-8044-B4C04F4A4E32";
    const OTHER: &str = "4c4c4544-0035-5910-8044-b4c04f4a4e33";

    #[test]
    fn local_store_round_trips_through_the_caller() {
        let store = AmtSecretStore::Local(Kek::from_bytes(&[9; 32]));
        assert!(store.uses_database());
        let blob = store.store(GUID, "Amt-P@ssw0rd!").unwrap().unwrap();
        // Case of the GUID does not matter: it is canonicalised.
        let loaded = store
            .load(&GUID.to_ascii_lowercase(), Some(&blob))
            .unwrap()
            .unwrap();
        assert_eq!(loaded.as_str(), "Amt-P@ssw0rd!");
        assert!(store.load(GUID, None).unwrap().is_none());
        // Another device's row cannot use this blob.
        assert!(matches!(
            store.load(OTHER, Some(&blob)),
            Err(AmtSecretError::Envelope(EnvelopeError::Authentication))
        ));
        store.delete(GUID).unwrap();
        assert!(matches!(
            store.store("../x", "p"),
            Err(AmtSecretError::InvalidGuid(_))
        ));
        assert_eq!(
            amt_password_context(&DeviceGuid::parse(GUID).unwrap()),
            "device:4c4c4544-0035-5910-8044-b4c04f4a4e32:amt_password"
        );
    }

    #[test]
    fn non_utf8_plaintext_is_refused() {
        let kek = Kek::from_bytes(&[9; 32]);
        let guid = DeviceGuid::parse(GUID).unwrap();
        let blob = envelope::seal(&kek, &context(&guid), &[0xff, 0xfe]).unwrap();
        let store = AmtSecretStore::Local(kek);
        assert!(matches!(
            store.load(GUID, Some(&blob)),
            Err(AmtSecretError::NotText)
        ));
    }

    #[test]
    fn debug_shows_no_key() {
        let kek = Kek::from_bytes(&[9; 32]);
        let text = format!("{:?}", AmtSecretStore::Local(kek.clone()));
        assert!(text.contains(&kek.id().to_string()), "{text}");
        assert!(!text.contains("9, 9"), "{text}");
    }
}
