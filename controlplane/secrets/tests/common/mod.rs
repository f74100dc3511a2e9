//! Shared helpers for the integration tests: temporary secrets directories and the real
//! `openssl` command-line tool.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rampart_secrets::{InitOptions, InitReport, Names, init};
use zeroize::Zeroizing;

pub const HOST: &str = "edge";
pub const DOMAIN: &str = "example.test";
pub const CN: &str = "edge.example.test";
pub const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

pub fn names() -> Names {
    Names::new(HOST, Some(DOMAIN), [IpAddr::V4(IP)]).unwrap()
}

pub fn options(dir: &Path) -> InitOptions {
    InitOptions {
        secrets_dir: dir.to_owned(),
        names: names(),
        csr: false,
        force: false,
        db_password: None,
    }
}

/// A fresh temporary directory and the (not yet existing) secrets directory inside it.
pub fn secrets_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("secrets");
    (tmp, dir)
}

pub fn init_ok(opts: &InitOptions) -> InitReport {
    match init(opts) {
        Ok(report) => report,
        Err(e) => panic!("init failed: {e}"),
    }
}

/// Runs `openssl` with `args` and returns its output, whatever the exit status.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command-line tool must be installed")
}

/// Runs `openssl`, asserts success, and returns stdout and stderr together.
pub fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every regular file under `dir` with its contents.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(dir, &mut |path| {
        if path.is_file() {
            out.insert(path.to_owned(), fs::read(path).unwrap());
        }
    });
    out
}

/// Calls `visit` for every entry below `dir` (not following symlinks), depth first.
pub fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        visit(&path);
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, visit);
        }
    }
}

/// Parses a PEM certificate file with x509-parser and hands it to `f`.
pub fn with_cert<T>(
    path: &Path,
    f: impl FnOnce(&x509_parser::certificate::X509Certificate<'_>) -> T,
) -> T {
    let text = fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text).unwrap();
    let cert = pem.parse_x509().unwrap();
    f(&cert)
}

/// Whole days between notBefore and notAfter.
pub fn validity_days(path: &Path) -> i64 {
    with_cert(path, |cert| {
        let v = cert.validity();
        (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_days()
    })
}

pub fn serial(path: &Path) -> Vec<u8> {
    with_cert(path, |cert| cert.raw_serial().to_vec())
}

pub fn zs(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}
