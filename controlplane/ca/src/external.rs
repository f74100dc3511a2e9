//! Checking certificates signed by an organisation's own CA before they are installed.

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::csr::PendingService;
use crate::error::CaError;
use crate::pem;
use crate::service::Service;

/// PEM label of an X.509 certificate (RFC 7468 §5).
const CERT_PEM_LABEL: &str = "CERTIFICATE";

/// An external CA bundle (one root, or intermediates and root), checked on load: every
/// certificate is a CA, valid now, and signed by its issuer when that issuer is in the bundle.
#[derive(Debug)]
pub struct ExternalCa {
    certs: Vec<Vec<u8>>,
    bundle_pem: String,
}

/// A certificate that passed [`ExternalCa::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCert {
    /// The service whose pending key the certificate carries.
    pub service: Service,
    /// The certificate alone, re-encoded as PEM.
    pub cert_pem: String,
    /// Its notAfter, for the operator's renewal reminder.
    pub not_after: OffsetDateTime,
}

impl ExternalCa {
    /// Parses and checks a CA bundle. Only CERTIFICATE blocks are allowed.
    pub fn from_pem(bundle_pem: &str, now: OffsetDateTime) -> Result<ExternalCa, CaError> {
        let certs = certificates("CA file", bundle_pem)?;
        if certs.is_empty() {
            return Err(CaError::EmptyCaBundle);
        }
        let parsed = certs
            .iter()
            .map(|der| parse("CA certificate", der))
            .collect::<Result<Vec<_>, _>>()?;

        for (i, cert) in parsed.iter().enumerate() {
            let index = i + 1;
            let subject = cert.subject().to_string();
            if !cert.is_ca() {
                return Err(CaError::CaCertNotCa { index, subject });
            }
            let validity = cert.validity();
            if !validity.is_valid_at(now.into()) {
                return Err(CaError::CaCertNotValidNow {
                    index,
                    subject,
                    not_before: validity.not_before.to_string(),
                    not_after: validity.not_after.to_string(),
                });
            }
            let issuers: Vec<_> = parsed
                .iter()
                .filter(|candidate| candidate.subject() == cert.issuer())
                .collect();
            if !issuers.is_empty()
                && !issuers
                    .iter()
                    .any(|issuer| cert.verify_signature(Some(issuer.public_key())).is_ok())
            {
                return Err(CaError::CaChainSignature { index, subject });
            }
        }

        let mut bundle_pem = String::new();
        for der in &certs {
            bundle_pem.push_str(&pem::encode(CERT_PEM_LABEL, der));
        }
        Ok(ExternalCa { certs, bundle_pem })
    }

    /// The bundle, normalised to PEM certificates only (what `ca/ca.pem` receives).
    pub fn bundle_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// Checks one signed certificate and finds the pending service it belongs to.
    ///
    /// `cert_pem` holds the service certificate first; further certificates are accepted only if
    /// they are already in the CA bundle (a "full chain" file). The certificate must carry the
    /// public key of one of `pending`, be signed by a certificate in the bundle (whose own
    /// chain was checked on load), be valid at `now`, not be a CA, contain the DNS SAN its CSR
    /// asked for, and allow serverAuth if it restricts extended key usage.
    pub fn verify(
        &self,
        cert_pem: &str,
        pending: &[PendingService],
        now: OffsetDateTime,
    ) -> Result<VerifiedCert, CaError> {
        let certs = certificates("certificate file", cert_pem)?;
        let Some((leaf_der, rest)) = certs.split_first() else {
            return Err(CaError::NoCertificate);
        };
        if rest.iter().any(|extra| !self.certs.contains(extra)) {
            return Err(CaError::UnexpectedChain { count: certs.len() });
        }
        let leaf = parse("certificate", leaf_der)?;

        let Some(pending) = pending
            .iter()
            .find(|p| p.spki_der.as_slice() == leaf.public_key().raw)
        else {
            return Err(CaError::UnknownKey {
                subject: leaf.subject().to_string(),
            });
        };
        let service = pending.service;

        self.check_signed_by_bundle(&leaf, service)?;

        let validity = leaf.validity();
        if now < validity.not_before.to_datetime() {
            return Err(CaError::NotYetValid {
                service,
                not_before: validity.not_before.to_string(),
            });
        }
        if now > validity.not_after.to_datetime() {
            return Err(CaError::Expired {
                service,
                not_after: validity.not_after.to_string(),
            });
        }
        if leaf.is_ca() {
            return Err(CaError::LeafIsCa { service });
        }
        if !has_dns_san(&leaf, &pending.expected_dns) {
            return Err(CaError::MissingDnsSan {
                service,
                expected: pending.expected_dns.clone(),
            });
        }
        if let Ok(Some(eku)) = leaf.extended_key_usage()
            && !eku.value.server_auth
            && !eku.value.any
        {
            return Err(CaError::MissingServerAuth { service });
        }

        Ok(VerifiedCert {
            service,
            cert_pem: pem::encode(CERT_PEM_LABEL, leaf_der).as_str().to_owned(),
            not_after: validity.not_after.to_datetime(),
        })
    }

    fn check_signed_by_bundle(
        &self,
        leaf: &X509Certificate<'_>,
        service: Service,
    ) -> Result<(), CaError> {
        for der in &self.certs {
            // Every bundle certificate parsed on load.
            let Ok(ca) = parse("CA certificate", der) else {
                continue;
            };
            if ca.subject() == leaf.issuer() && leaf.verify_signature(Some(ca.public_key())).is_ok()
            {
                return Ok(());
            }
        }
        Err(CaError::BadSignature {
            service,
            issuer: leaf.issuer().to_string(),
        })
    }
}

/// Splits `text` into DER certificates; any other PEM block is an error.
fn certificates(what: &'static str, text: &str) -> Result<Vec<Vec<u8>>, CaError> {
    let blocks = pem::decode_all(what, text)?;
    blocks
        .into_iter()
        .map(|block| {
            if block.label == CERT_PEM_LABEL {
                Ok(block.der.to_vec())
            } else {
                Err(CaError::Pem {
                    what,
                    reason: "only CERTIFICATE blocks are allowed",
                })
            }
        })
        .collect()
}

fn parse<'a>(what: &'static str, der: &'a [u8]) -> Result<X509Certificate<'a>, CaError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(CaError::X509 { what }),
    }
}

fn has_dns_san(cert: &X509Certificate<'_>, expected: &str) -> bool {
    cert.extensions()
        .iter()
        .any(|ext| {
            match ext.parsed_extension() {
        ParsedExtension::SubjectAlternativeName(san) => san.general_names.iter().any(
            |name| matches!(name, GeneralName::DNSName(dns) if dns.eq_ignore_ascii_case(expected)),
        ),
        _ => false,
    }
        })
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        PKCS_ECDSA_P384_SHA384,
    };
    use time::Duration;

    use super::*;
    use crate::csr::{ServiceCsr, generate_csrs};
    use crate::names::Names;

    struct TestCa {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    fn test_ca(cn: &str, now: OffsetDateTime) -> TestCa {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(30);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa { params, key, pem }
    }

    /// Signs `csr` as a CA would, with the given validity.
    fn sign(ca: &TestCa, csr: &ServiceCsr, not_before: OffsetDateTime, days: i64) -> String {
        let mut req = rcgen::CertificateSigningRequestParams::from_pem(&csr.csr_pem).unwrap();
        req.params.not_before = not_before;
        req.params.not_after = not_before + Duration::days(days);
        req.params.is_ca = IsCa::ExplicitNoCa;
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        req.signed_by(&issuer).unwrap().pem()
    }

    fn setup() -> (TestCa, Vec<ServiceCsr>, Vec<PendingService>, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        let ca = test_ca("Test Org CA", now);
        let names = Names::new("edge", Some("example.test"), []).unwrap();
        let csrs = generate_csrs(&names).unwrap();
        let pending = csrs
            .iter()
            .map(|c| PendingService::from_pem(c.service, &c.key_pem, &c.csr_pem).unwrap())
            .collect();
        (ca, csrs, pending, now)
    }

    #[test]
    fn signed_certificates_are_matched_to_their_service() {
        let (ca, csrs, pending, now) = setup();
        let external = ExternalCa::from_pem(&ca.pem, now).unwrap();
        for csr in &csrs {
            let cert = sign(&ca, csr, now - Duration::hours(1), 30);
            let verified = external.verify(&cert, &pending, now).unwrap();
            assert_eq!(verified.service, csr.service);
            // A full-chain file (leaf + the CA itself) is accepted too.
            let full_chain = format!("{cert}{}", ca.pem);
            assert!(external.verify(&full_chain, &pending, now).is_ok());
        }
    }

    #[test]
    fn rejections() {
        let (ca, csrs, pending, now) = setup();
        let external = ExternalCa::from_pem(&ca.pem, now).unwrap();

        let other = test_ca("Test Org CA", now);
        let forged = sign(&other, &csrs[0], now - Duration::hours(1), 30);
        assert!(matches!(
            external.verify(&forged, &pending, now),
            Err(CaError::BadSignature { .. })
        ));

        let expired = sign(&ca, &csrs[1], now - Duration::days(10), 5);
        assert!(matches!(
            external.verify(&expired, &pending, now),
            Err(CaError::Expired {
                service: Service::Mqtt,
                ..
            })
        ));

        let future = sign(&ca, &csrs[1], now + Duration::days(2), 5);
        assert!(matches!(
            external.verify(&future, &pending, now),
            Err(CaError::NotYetValid { .. })
        ));

        let good = sign(&ca, &csrs[2], now - Duration::hours(1), 30);
        assert!(matches!(
            external.verify(&good, &pending[..2], now),
            Err(CaError::UnknownKey { .. })
        ));

        let with_foreign_chain = format!("{good}{}", other.pem);
        assert!(matches!(
            external.verify(&with_foreign_chain, &pending, now),
            Err(CaError::UnexpectedChain { count: 2 })
        ));

        assert!(matches!(
            external.verify("", &pending, now),
            Err(CaError::NoCertificate)
        ));
    }

    #[test]
    fn ca_bundle_checks() {
        let now = OffsetDateTime::now_utc();
        assert!(matches!(
            ExternalCa::from_pem("", now),
            Err(CaError::EmptyCaBundle)
        ));
        let ca = test_ca("Old CA", now - Duration::days(60));
        assert!(matches!(
            ExternalCa::from_pem(&ca.pem, now),
            Err(CaError::CaCertNotValidNow { index: 1, .. })
        ));

        let (good_ca, csrs, _, _) = setup();
        let leaf = sign(&good_ca, &csrs[0], now - Duration::hours(1), 30);
        assert!(matches!(
            ExternalCa::from_pem(&leaf, now),
            Err(CaError::CaCertNotCa { index: 1, .. })
        ));
        let with_key = format!("{}{}", good_ca.pem, good_ca.key.serialize_pem());
        assert!(matches!(
            ExternalCa::from_pem(&with_key, now),
            Err(CaError::Pem { .. })
        ));
    }
}
