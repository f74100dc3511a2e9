//! The web console's static files, served from memory.
//!
//! The directory is read once at start (regular files only, symbolic links and dot files
//! skipped, bounded in count and bytes), so a request never touches the file system from a
//! core, and a path can only ever name a file that was in the directory. Each file carries its
//! content type and a strong ETag (a SHA-256 prefix of its bytes).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Most files read from the web root.
const MAX_FILES: usize = 10_000;
/// Most bytes read from the web root.
const MAX_BYTES: usize = 256 * 1024 * 1024;

/// The page served at `/` when no web root is configured.
const DEFAULT_INDEX: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Rampart</title></head><body><h1>Rampart</h1>\
<p>REST API: <code>/api/v1/</code>. MQTT over WebSocket: <code>/mqtt</code> (subprotocol \
<code>mqtt</code>). Health: <code>/healthz</code>, <code>/readyz</code>.</p>\
<p>No web console is installed: set <code>dataplane.front.web_root</code>.</p></body></html>\n";

/// One file.
#[derive(Debug, Clone)]
pub(crate) struct Asset {
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    /// Quoted, strong.
    pub(crate) etag: String,
}

impl Asset {
    fn new(body: Bytes, name: &str) -> Self {
        let digest = Sha256::digest(&body);
        let mut etag = String::with_capacity(34);
        etag.push('"');
        for b in &digest[..16] {
            let _ = write!(etag, "{b:02x}");
        }
        etag.push('"');
        Self {
            body,
            content_type: content_type(name),
            etag,
        }
    }

    /// Whether an `If-None-Match` value matches this file (RFC 9110 §13.1.2: weak comparison).
    pub(crate) fn matches(&self, if_none_match: &[u8]) -> bool {
        let Ok(v) = std::str::from_utf8(if_none_match) else {
            return false;
        };
        v.split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag.as_str())
    }
}

/// Every file of the web root by URL path (`/index.html`, `/js/app.js`).
#[derive(Debug, Default)]
pub(crate) struct Site {
    files: HashMap<String, Asset>,
}

impl Site {
    /// Reads `root`, or the built-in page when there is none.
    pub(crate) fn load(root: Option<&Path>) -> io::Result<Self> {
        let mut site = Self::default();
        match root {
            None => {
                site.files.insert(
                    "/index.html".into(),
                    Asset::new(Bytes::from_static(DEFAULT_INDEX.as_bytes()), "index.html"),
                );
            }
            Some(root) => {
                let mut total = 0;
                site.walk(root, "", &mut total)?;
            }
        }
        Ok(site)
    }

    fn walk(&mut self, dir: &Path, prefix: &str, total: &mut usize) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            // `file_type` does not follow symbolic links: they are skipped.
            let kind = entry.file_type()?;
            let url = format!("{prefix}/{name}");
            if kind.is_dir() {
                self.walk(&entry.path(), &url, total)?;
            } else if kind.is_file() {
                let body = fs::read(entry.path())?;
                *total += body.len();
                if self.files.len() >= MAX_FILES || *total > MAX_BYTES {
                    return Err(io::Error::other(format!(
                        "web root holds more than {MAX_FILES} files or {MAX_BYTES} bytes"
                    )));
                }
                self.files.insert(url, Asset::new(Bytes::from(body), name));
            }
        }
        Ok(())
    }

    /// The file for a decoded request path; a directory path means its `index.html`.
    pub(crate) fn get(&self, path: &str) -> Option<&Asset> {
        if path.ends_with('/') {
            return self.files.get(&format!("{path}index.html"));
        }
        self.files.get(path)
    }

    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }
}

/// Percent-decodes a request path and refuses anything that is not a plain path: invalid
/// escapes or UTF-8, NUL, backslashes, and `.` or `..` segments.
pub(crate) fn decode_path(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let path = String::from_utf8(out).ok()?;
    if !path.starts_with('/') || path.contains(['\0', '\\']) {
        return None;
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return None;
    }
    Some(path)
}

fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_decoded_and_traversal_refused() {
        assert_eq!(decode_path("/a%20b/c.js").as_deref(), Some("/a b/c.js"));
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/a/./b",
            "/%00",
            "/a\\b",
            "/%zz",
            "/%e2%28",
            "/%2",
            "/%+f",
            "relative",
        ] {
            assert_eq!(decode_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn loads_regular_files_with_types_and_etags() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("index.html"), "<p>hi</p>").unwrap();
        fs::create_dir(dir.path().join("js")).unwrap();
        fs::write(dir.path().join("js/app.js"), "1").unwrap();
        fs::write(dir.path().join(".secret"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let site = Site::load(Some(dir.path())).unwrap();
        assert_eq!(site.len(), 2);
        let index = site.get("/").unwrap();
        assert_eq!(index.content_type, "text/html; charset=utf-8");
        assert_eq!(index.etag.len(), 34);
        assert!(index.matches(index.etag.as_bytes()));
        assert!(index.matches(format!("\"x\", W/{}", index.etag).as_bytes()));
        assert!(!index.matches(b"\"other\""));
        assert_eq!(
            site.get("/js/app.js").unwrap().content_type,
            "text/javascript; charset=utf-8"
        );
        assert!(site.get("/passwd").is_none());
        assert!(site.get("/.secret").is_none());
    }
}
