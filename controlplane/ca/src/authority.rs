//! The self-signed root CA and the service certificates it issues.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyUsagePurpose,
    SanType,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::certpass::{self, CertPass};
use crate::error::CaError;
use crate::key::PrivateKey;
use crate::names::Names;
use crate::random;
use crate::service::Service;

/// Lifetime of the self-signed root CA (guide: 1825 days, 5 years).
pub const CA_VALIDITY_DAYS: i64 = 1825;
/// Lifetime of a service certificate (guide: 360 days).
pub const SERVICE_VALIDITY_DAYS: i64 = 360;
/// Organisation in the root CA's subject.
const CA_ORGANIZATION: &str = "Rampart";

/// A CA certificate with its private key in memory, able to sign service certificates.
pub struct CertificateAuthority {
    cert_der: Vec<u8>,
    cert_pem: String,
    key: PrivateKey,
}

impl CertificateAuthority {
    /// Generates a self-signed root CA for `names`: fresh P-384 key, ecdsa-with-SHA384, valid
    /// from `now` for [`CA_VALIDITY_DAYS`], basicConstraints cA (critical), keyUsage
    /// keyCertSign + cRLSign + digitalSignature, subject `CN=Rampart Root CA <cn>, O=Rampart`
    /// and a random serial.
    pub fn generate(names: &Names, now: OffsetDateTime) -> Result<CertificateAuthority, CaError> {
        let key = PrivateKey::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("Rampart Root CA {}", names.cn()),
        );
        dn.push(DnType::OrganizationName, CA_ORGANIZATION);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, now, CA_VALIDITY_DAYS);
        params.serial_number = Some(random::serial_number()?);

        let cert = params
            .self_signed(key.pair())
            .map_err(CaError::rcgen("self-signing the root CA"))?;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
        })
    }

    /// Loads a CA from its certificate PEM and its encrypted key, for signing more
    /// certificates with a caller-chosen CERTPASS. The key must belong to the certificate.
    pub fn from_encrypted_pem(
        cert_pem: &str,
        encrypted_key_pem: &str,
        pass: &CertPass,
    ) -> Result<CertificateAuthority, CaError> {
        let der = crate::pem::decode_one("CA certificate", "CERTIFICATE", cert_pem)?;
        let cert_der = der.to_vec();
        let key = certpass::decrypt_private_key(encrypted_key_pem, pass)?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|_| CaError::X509 {
                what: "CA certificate",
            })?;
        if parsed.public_key().raw != key.public_key_spki_der().as_slice() {
            return Err(CaError::KeyMismatch);
        }
        Ok(CertificateAuthority {
            cert_pem: crate::pem::encode("CERTIFICATE", &cert_der)
                .as_str()
                .to_owned(),
            cert_der,
            key,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key, encrypted under `pass` (see [`certpass::encrypt_private_key`]).
    pub fn encrypted_key_pem(&self, pass: &CertPass) -> Result<String, CaError> {
        certpass::encrypt_private_key(&self.key, pass)
    }

    /// Issues a certificate for `service` with a fresh P-384 key, valid from `now` for
    /// [`SERVICE_VALIDITY_DAYS`] (never beyond the CA's own notAfter).
    pub fn issue(
        &self,
        service: Service,
        names: &Names,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, CaError> {
        let key = PrivateKey::generate()?;
        let mut params = service_params(service, names)?;
        set_validity(&mut params, now, SERVICE_VALIDITY_DAYS);
        params.serial_number = Some(random::serial_number()?);
        params.use_authority_key_identifier_extension = true;

        let issuer = Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), self.key.pair())
            .map_err(CaError::rcgen("reading the CA certificate"))?;
        if let Ok((_, ca)) = x509_parser::parse_x509_certificate(&self.cert_der) {
            let ca_not_after = ca.validity().not_after.to_datetime();
            if params.not_after > ca_not_after {
                params.not_after = ca_not_after;
            }
        }
        let cert = params
            .signed_by(key.pair(), &issuer)
            .map_err(CaError::rcgen("signing a service certificate"))?;
        Ok(IssuedCert {
            service,
            cert_pem: cert.pem(),
            key_pem: key.to_pkcs8_pem(),
        })
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .field("key", &self.key)
            .finish()
    }
}

/// A service certificate and its private key. `Debug` leaves the key out.
pub struct IssuedCert {
    /// The service it is for.
    pub service: Service,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, unencrypted PKCS#8 PEM ("PRIVATE KEY"); protect it by file mode.
    pub key_pem: Zeroizing<String>,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("service", &self.service)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Everything the self-signed mode writes: the CA certificate, the encrypted CA key and one
/// certificate and key per service.
#[derive(Debug)]
pub struct SelfSignedPki {
    /// The root CA certificate, PEM.
    pub ca_cert_pem: String,
    /// The root CA key, PEM "ENCRYPTED PRIVATE KEY" (ciphertext).
    pub ca_key_pem: String,
    /// One entry per [`Service::ALL`], in that order.
    pub services: Vec<IssuedCert>,
}

/// The guide's default flow: generates the root CA, encrypts its key under a fresh random
/// CERTPASS, issues every service certificate with the still-in-memory CA key, then drops the
/// CERTPASS (zeroized). Nobody ever learns it, so this CA cannot sign anything else.
pub fn generate_self_signed(names: &Names) -> Result<SelfSignedPki, CaError> {
    let pass = CertPass::generate()?;
    generate_self_signed_with_certpass(names, &pass)
    // `pass` is dropped and zeroized here.
}

/// Like [`generate_self_signed`], with a caller-chosen CERTPASS: the guide's custom
/// `CERTPASS`, which keeps the CA usable later via [`CertificateAuthority::from_encrypted_pem`].
pub fn generate_self_signed_with_certpass(
    names: &Names,
    pass: &CertPass,
) -> Result<SelfSignedPki, CaError> {
    let now = OffsetDateTime::now_utc();
    let ca = CertificateAuthority::generate(names, now)?;
    let ca_key_pem = ca.encrypted_key_pem(pass)?;
    let services = Service::ALL
        .into_iter()
        .map(|service| ca.issue(service, names, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SelfSignedPki {
        ca_cert_pem: ca.cert_pem.clone(),
        ca_key_pem,
        services,
    })
}

/// Subject, SANs, usages and basic constraints shared by issued certificates and CSRs. Serial,
/// validity and authority key identifier are left unset (a CSR must not carry them).
pub(crate) fn service_params(
    service: Service,
    names: &Names,
) -> Result<CertificateParams, CaError> {
    let cn = names.cn();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn.as_str());
    params.distinguished_name = dn;

    let dns = cn
        .clone()
        .try_into()
        .map_err(CaError::rcgen("encoding the DNS SAN"))?;
    params.subject_alt_names = vec![SanType::DnsName(dns)];
    params
        .subject_alt_names
        .extend(names.ip_sans().iter().copied().map(SanType::IpAddress));

    // ExplicitNoCa writes basicConstraints cA=FALSE and a subject key identifier.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = service.extended_key_usages();
    Ok(params)
}

/// Sets notBefore = `now` (whole seconds) and notAfter = notBefore + `days`, replacing rcgen's
/// default 1975..4096 window.
fn set_validity(params: &mut CertificateParams, now: OffsetDateTime, days: i64) {
    let not_before = now.replace_nanosecond(0).unwrap_or(now);
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(days);
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::X509Certificate;

    use super::*;

    fn names() -> Names {
        Names::new(
            "edge",
            Some("example.test"),
            [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))],
        )
        .unwrap()
    }

    fn parse(pem_text: &str) -> Vec<u8> {
        crate::pem::decode_one("test", "CERTIFICATE", pem_text)
            .unwrap()
            .to_vec()
    }

    fn days(cert: &X509Certificate<'_>) -> i64 {
        let v = cert.validity();
        (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_days()
    }

    /// The self-signed flow minus key encryption, which is slow in debug builds and tested on
    /// its own (certpass tests, `reloaded_ca_signs_with_the_same_key`).
    fn unencrypted_pki() -> SelfSignedPki {
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate(&names(), now).unwrap();
        let services = Service::ALL
            .into_iter()
            .map(|service| ca.issue(service, &names(), now).unwrap())
            .collect();
        SelfSignedPki {
            ca_cert_pem: ca.cert_pem().to_owned(),
            ca_key_pem: String::new(),
            services,
        }
    }

    fn pass() -> CertPass {
        CertPass::from_secret(Zeroizing::new("a-test-certpass-1234".to_owned())).unwrap()
    }

    #[test]
    fn ca_certificate_shape() {
        let before = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let pki = unencrypted_pki();
        let after = OffsetDateTime::now_utc();
        let der = parse(&pki.ca_cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&der).unwrap();

        assert_eq!(days(&ca), CA_VALIDITY_DAYS);
        let not_before = ca.validity().not_before.to_datetime();
        assert!(before <= not_before && not_before <= after);
        assert_eq!(ca.subject(), ca.issuer());
        assert_eq!(
            ca.subject().to_string(),
            "CN=Rampart Root CA edge.example.test, O=Rampart"
        );
        assert_eq!(
            ca.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA384
        );
        let bc = ca.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca);
        let ku = ca.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && ku.digital_signature());
        ca.verify_signature(None).unwrap();
        // Serial is 16 random bytes (the DER integer may drop a leading zero byte).
        assert!((12..=16).contains(&ca.raw_serial().len()));
    }

    #[test]
    fn service_certificate_shape() {
        let pki = unencrypted_pki();
        let ca_der = parse(&pki.ca_cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let ca_ski = match ca
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            }) {
            Some(id) => id,
            None => panic!("CA has no subject key identifier"),
        };

        assert_eq!(pki.services.len(), 4);
        let mut serials = vec![ca.raw_serial().to_vec()];
        for (issued, service) in pki.services.iter().zip(Service::ALL) {
            assert_eq!(issued.service, service);
            let der = parse(&issued.cert_pem);
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            cert.verify_signature(Some(ca.public_key())).unwrap();
            assert_eq!(cert.issuer(), ca.subject());
            assert_eq!(days(&cert), SERVICE_VALIDITY_DAYS);
            assert_eq!(cert.subject().to_string(), "CN=edge.example.test");
            assert!(!cert.is_ca());

            let san = cert.subject_alternative_name().unwrap().unwrap().value;
            assert_eq!(
                san.general_names,
                vec![
                    GeneralName::DNSName("edge.example.test"),
                    GeneralName::IPAddress(&[192, 0, 2, 10]),
                ]
            );
            let eku = cert.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.server_auth);
            assert_eq!(eku.client_auth, service == Service::ControlPlane);
            let ku = cert.key_usage().unwrap().unwrap().value;
            assert!(ku.digital_signature() && !ku.key_cert_sign());

            let aki = cert
                .extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.clone(),
                    _ => None,
                })
                .expect("authority key identifier");
            assert_eq!(aki.0, ca_ski.as_slice());

            let key = PrivateKey::from_pkcs8_pem(&issued.key_pem).unwrap();
            assert_eq!(cert.public_key().raw, key.public_key_spki_der().as_slice());
            assert!((12..=16).contains(&cert.raw_serial().len()));
            serials.push(cert.raw_serial().to_vec());
        }
        let unique: std::collections::HashSet<_> = serials.iter().collect();
        assert_eq!(unique.len(), serials.len(), "serials must differ");
    }

    #[test]
    fn validity_windows_start_at_now() {
        let now = OffsetDateTime::now_utc() - Duration::days(3);
        let ca = CertificateAuthority::generate(&names(), now).unwrap();
        let issued = ca.issue(Service::Mqtt, &names(), now).unwrap();
        let der = parse(&issued.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let v = cert.validity();
        assert_eq!(
            v.not_before.to_datetime(),
            now.replace_nanosecond(0).unwrap()
        );
        assert_eq!(
            v.not_after.to_datetime(),
            now.replace_nanosecond(0).unwrap() + Duration::days(SERVICE_VALIDITY_DAYS)
        );
    }

    #[test]
    fn service_validity_never_outlives_the_ca() {
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate(&names(), now - Duration::days(1700)).unwrap();
        let issued = ca.issue(Service::Https, &names(), now).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
        let der = parse(&issued.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(cert.validity().not_after, ca_cert.validity().not_after);
    }

    #[test]
    fn debug_output_never_shows_private_keys() {
        let pki = unencrypted_pki();
        let text = format!("{pki:?}");
        assert!(!text.contains("BEGIN PRIVATE KEY"), "{text}");
        let ca = CertificateAuthority::generate(&names(), OffsetDateTime::now_utc()).unwrap();
        assert!(!format!("{ca:?}").contains("BEGIN PRIVATE KEY"));
        let csrs = crate::csr::generate_csrs(&names()).unwrap();
        assert!(!format!("{csrs:?}").contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn two_runs_give_different_cas_and_serials() {
        let a = unencrypted_pki();
        let b = unencrypted_pki();
        assert_ne!(a.ca_cert_pem, b.ca_cert_pem);
        let serial = |pem_text: &str| {
            let der = parse(pem_text);
            let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
            c.raw_serial().to_vec()
        };
        assert_ne!(serial(&a.ca_cert_pem), serial(&b.ca_cert_pem));
        assert_ne!(
            serial(&a.services[0].cert_pem),
            serial(&b.services[0].cert_pem)
        );
    }

    #[test]
    fn reloaded_ca_signs_with_the_same_key() {
        let p = pass();
        let pki = generate_self_signed_with_certpass(&names(), &p).unwrap();
        let ca = CertificateAuthority::from_encrypted_pem(&pki.ca_cert_pem, &pki.ca_key_pem, &p)
            .unwrap();
        let issued = ca
            .issue(Service::Cira, &names(), OffsetDateTime::now_utc())
            .unwrap();
        let ca_der = parse(&pki.ca_cert_pem);
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let der = parse(&issued.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();

        let wrong =
            CertPass::from_secret(Zeroizing::new("not-the-certpass-1234".to_owned())).unwrap();
        assert!(matches!(
            CertificateAuthority::from_encrypted_pem(&pki.ca_cert_pem, &pki.ca_key_pem, &wrong),
            Err(CaError::KeyDecryption)
        ));
    }
}
