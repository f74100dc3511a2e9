//! CSR mode: per-service keys and certificate signing requests for an external CA.

use std::fmt;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer as _;
use zeroize::Zeroizing;

use crate::authority::service_params;
use crate::error::CaError;
use crate::key::PrivateKey;
use crate::names::Names;
use crate::pem;
use crate::service::Service;

/// PEM label of a PKCS#10 CSR (RFC 7468 §7).
const CSR_PEM_LABEL: &str = "CERTIFICATE REQUEST";

/// A fresh service key and the CSR for it. `Debug` leaves the key out.
pub struct ServiceCsr {
    /// The service it is for.
    pub service: Service,
    /// The PKCS#10 request, PEM "CERTIFICATE REQUEST", self-signed with `key_pem`.
    pub csr_pem: String,
    /// The private key, unencrypted PKCS#8 PEM ("PRIVATE KEY"); protect it by file mode.
    pub key_pem: Zeroizing<String>,
}

impl fmt::Debug for ServiceCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceCsr")
            .field("service", &self.service)
            .field("csr_pem", &self.csr_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Generates, for every service, a fresh P-384 key and a CSR with the same subject, SANs and
/// usages a self-signed run would put in the certificate (CN = [`Names::cn`], DNS SAN = CN,
/// IP SANs, digitalSignature, serverAuth).
pub fn generate_csrs(names: &Names) -> Result<Vec<ServiceCsr>, CaError> {
    Service::ALL
        .into_iter()
        .map(|service| {
            let key = PrivateKey::generate()?;
            // service_params leaves serial and authority key identifier unset: rcgen refuses
            // both in a CSR (Error::UnsupportedInCsr).
            let params = service_params(service, names)?;
            let csr = params
                .serialize_request(key.pair())
                .map_err(CaError::rcgen("building a CSR"))?;
            let csr_pem = csr.pem().map_err(CaError::rcgen("encoding a CSR"))?;
            Ok(ServiceCsr {
                service,
                csr_pem,
                key_pem: key.to_pkcs8_pem(),
            })
        })
        .collect()
}

/// A service waiting for its externally signed certificate: its private key and the DNS name
/// its CSR asked for.
#[derive(Debug)]
pub struct PendingService {
    pub(crate) service: Service,
    pub(crate) spki_der: Vec<u8>,
    pub(crate) expected_dns: String,
}

impl PendingService {
    /// Loads a pending service from its key and CSR. The CSR's signature must verify and it
    /// must carry the key's public key; its common name becomes the DNS SAN the signed
    /// certificate has to contain.
    pub fn from_pem(
        service: Service,
        key_pem: &str,
        csr_pem: &str,
    ) -> Result<PendingService, CaError> {
        let key = PrivateKey::from_pkcs8_pem(key_pem)?;
        let der = pem::decode_one("certificate signing request", CSR_PEM_LABEL, csr_pem)?;
        let (_, csr) = X509CertificationRequest::from_der(&der).map_err(|_| CaError::X509 {
            what: "certificate signing request",
        })?;
        csr.verify_signature()
            .map_err(|_| CaError::CsrSignature { service })?;
        let info = &csr.certification_request_info;
        let spki_der = key.public_key_spki_der();
        if info.subject_pki.raw != spki_der.as_slice() {
            return Err(CaError::CsrKeyMismatch { service });
        }
        let expected_dns = info
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .filter(|cn| !cn.is_empty())
            .ok_or(CaError::CsrWithoutCommonName { service })?
            .to_ascii_lowercase();
        Ok(PendingService {
            service,
            spki_der,
            expected_dns,
        })
    }

    /// The service.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The DNS name the signed certificate must carry as a SAN.
    pub fn expected_dns(&self) -> &str {
        &self.expected_dns
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr};

    use x509_parser::extensions::{GeneralName, ParsedExtension};

    use super::*;

    fn names() -> Names {
        Names::new(
            "edge",
            Some("example.test"),
            [IpAddr::V6(Ipv6Addr::LOCALHOST)],
        )
        .unwrap()
    }

    #[test]
    fn csrs_carry_cn_sans_and_a_valid_signature() {
        let csrs = generate_csrs(&names()).unwrap();
        assert_eq!(csrs.len(), 4);
        for (item, service) in csrs.iter().zip(Service::ALL) {
            assert_eq!(item.service, service);
            let der = pem::decode_one("test", CSR_PEM_LABEL, &item.csr_pem).unwrap();
            let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
            csr.verify_signature().unwrap();
            assert_eq!(
                csr.certification_request_info.subject.to_string(),
                "CN=edge.example.test"
            );
            let sans: Vec<_> = csr
                .requested_extensions()
                .into_iter()
                .flatten()
                .filter_map(|ext| match ext {
                    ParsedExtension::SubjectAlternativeName(san) => Some(san.general_names.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            let mut loopback = [0u8; 16];
            loopback[15] = 1;
            assert_eq!(
                sans,
                vec![
                    GeneralName::DNSName("edge.example.test"),
                    GeneralName::IPAddress(&loopback),
                ]
            );

            let pending = PendingService::from_pem(service, &item.key_pem, &item.csr_pem).unwrap();
            assert_eq!(pending.expected_dns(), "edge.example.test");
        }
    }

    #[test]
    fn csr_must_match_its_key() {
        let csrs = generate_csrs(&names()).unwrap();
        let err = PendingService::from_pem(Service::Https, &csrs[1].key_pem, &csrs[0].csr_pem)
            .unwrap_err();
        assert!(matches!(
            err,
            CaError::CsrKeyMismatch {
                service: Service::Https
            }
        ));
    }
}
