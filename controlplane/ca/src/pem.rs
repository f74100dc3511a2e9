//! Minimal RFC 7468 PEM encoding and decoding that keeps secret bytes in zeroizing buffers.
//!
//! rcgen's and x509-parser's PEM helpers return plain `String`/`Vec<u8>`, which would leave
//! copies of private keys in freed memory; every buffer here is sized up front (no reallocation
//! leaves a stale copy behind) and wrapped in [`Zeroizing`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::CaError;

/// Line width of the base64 body (RFC 7468 §2).
const LINE_LEN: usize = 64;

/// One decoded PEM block.
pub(crate) struct PemBlock {
    pub(crate) label: String,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// Encodes `der` as a PEM block with the given label.
pub(crate) fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64_len = der.len().div_ceil(3) * 4;
    let mut b64 = Zeroizing::new(String::with_capacity(b64_len));
    STANDARD.encode_string(der, &mut b64);

    let lines = b64_len.div_ceil(LINE_LEN);
    let capacity = 2 * (label.len() + 17) + b64_len + lines;
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 output is ASCII, so byte chunks are valid UTF-8.
    for chunk in b64.as_bytes().chunks(LINE_LEN) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes every PEM block in `text`. Text outside blocks is ignored (RFC 7468 §5.2).
pub(crate) fn decode_all(what: &'static str, text: &str) -> Result<Vec<PemBlock>, CaError> {
    let bad = |reason| CaError::Pem { what, reason };
    let mut blocks = Vec::new();
    let mut current: Option<(String, Zeroizing<String>)> = None;

    for line in text.lines() {
        let line = line.trim();
        match current.as_mut() {
            None => {
                if let Some(label) = boundary(line, "-----BEGIN ") {
                    current = Some((
                        label.to_owned(),
                        Zeroizing::new(String::with_capacity(text.len())),
                    ));
                }
            }
            Some((label, body)) => {
                if let Some(end_label) = boundary(line, "-----END ") {
                    if end_label != label {
                        return Err(bad("END label does not match BEGIN label"));
                    }
                    let der = decode_body(body).ok_or_else(|| bad("invalid base64 body"))?;
                    blocks.push(PemBlock {
                        label: std::mem::take(label),
                        der,
                    });
                    current = None;
                } else if line.starts_with("-----") {
                    return Err(bad("nested or truncated PEM block"));
                } else if line.contains(':') {
                    return Err(bad(
                        "legacy PEM headers (Proc-Type/DEK-Info) are not supported",
                    ));
                } else {
                    body.push_str(line);
                }
            }
        }
    }
    if current.is_some() {
        return Err(bad("missing END line"));
    }
    Ok(blocks)
}

/// Decodes the single PEM block in `text`, which must carry `label`.
pub(crate) fn decode_one(
    what: &'static str,
    label: &str,
    text: &str,
) -> Result<Zeroizing<Vec<u8>>, CaError> {
    let mut blocks = decode_all(what, text)?;
    if blocks.len() != 1 {
        return Err(CaError::Pem {
            what,
            reason: "expected exactly one PEM block",
        });
    }
    let block = blocks.remove(0);
    if block.label != label {
        return Err(CaError::Pem {
            what,
            reason: "unexpected PEM label",
        });
    }
    Ok(block.der)
}

fn boundary<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix("-----")
}

fn decode_body(body: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut der = Zeroizing::new(Vec::with_capacity(body.len().div_ceil(4) * 3));
    STANDARD.decode_vec(body, &mut der).ok()?;
    if der.is_empty() {
        return None;
    }
    Some(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_line_wrapping() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = encode("TEST DATA", &der);
        assert!(pem.starts_with("-----BEGIN TEST DATA-----\n"));
        assert!(pem.ends_with("-----END TEST DATA-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = decode_one("test", "TEST DATA", &pem).unwrap();
        assert_eq!(&back[..], &der[..]);
    }

    #[test]
    fn several_blocks_and_surrounding_text() {
        let text = format!(
            "subject=foo\n{}junk\r\n{}",
            encode("CERTIFICATE", b"one").as_str(),
            encode("CERTIFICATE", b"two").as_str().replace('\n', "\r\n")
        );
        let blocks = decode_all("test", &text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(&blocks[1].der[..], b"two");
    }

    #[test]
    fn malformed_pem_is_rejected() {
        for bad in [
            "-----BEGIN X-----\nAAAA\n",
            "-----BEGIN X-----\nAAAA\n-----END Y-----\n",
            "-----BEGIN X-----\n!!!!\n-----END X-----\n",
            "-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END X-----\n",
            "-----BEGIN X-----\n-----END X-----\n",
        ] {
            assert!(decode_all("test", bad).is_err(), "{bad:?}");
        }
        assert!(decode_one("test", "X", "no pem here").is_err());
        assert!(decode_one("test", "Y", &encode("X", b"x")).is_err());
    }
}
