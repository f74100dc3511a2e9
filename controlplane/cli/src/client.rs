//! A small HTTP/1.1 client for the control plane's admin socket (a Unix socket, so no TLS and
//! no proxy): one request per connection, `Connection: close`, JSON in and out.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// The largest answer read, in bytes.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// An answer: status and JSON body (`Null` when empty).
#[derive(Debug)]
pub(crate) struct Answer {
    /// HTTP status.
    pub(crate) status: u16,
    /// Parsed body.
    pub(crate) body: serde_json::Value,
}

impl Answer {
    /// The body if the status is 2xx; otherwise the API's error as an `anyhow` error.
    pub(crate) fn ok(self) -> anyhow::Result<serde_json::Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let code = self.body["error"]["code"].as_str().unwrap_or("error");
        let message = self.body["error"]["message"]
            .as_str()
            .unwrap_or("no message");
        bail!("{message} ({code}, HTTP {})", self.status)
    }
}

/// Sends one request to the admin socket.
pub(crate) fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<Answer> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the control plane at {} (is `rampart up` running, with the same --config?)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    let payload = match body {
        Some(v) => serde_json::to_vec(v)?,
        None => Vec::new(),
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: rampart\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(&payload)?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE).read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> anyhow::Result<Answer> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the control plane's answer has no header end")?;
    let head = std::str::from_utf8(&raw[..split]).context("non-UTF-8 response head")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed status line")?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body)?;
    }
    let body = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).context("the control plane's answer is not JSON")?
    };
    Ok(Answer { status, body })
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk")?;
        let size_text = std::str::from_utf8(&b[..eol])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let a = parse_response(b"HTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\n{\"a\":1}\n")
            .unwrap();
        assert_eq!(a.status, 201);
        assert_eq!(a.body["a"], 1);
        let a = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(a.body, serde_json::json!([1, 2]));
        let a = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert!(a.body.is_null());
        assert!(parse_response(b"garbage").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn errors_carry_code_and_message() {
        let a = Answer {
            status: 404,
            body: serde_json::json!({"error": {"code": "not_found", "message": "user not found"}}),
        };
        let e = a.ok().unwrap_err().to_string();
        assert_eq!(e, "user not found (not_found, HTTP 404)");
    }
}
