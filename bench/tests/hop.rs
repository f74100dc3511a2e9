//! `rampart-hop` runs on the data plane's runtime and reports what it measured: every sample
//! arrives, the figures are printed, bad options are refused with exit code 2.

use std::process::Command;

fn hop(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart-hop"))
        .args(args)
        .output()
        .expect("rampart-hop runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn measures_both_hops_and_refuses_bad_options() {
    for (mode, label) in [
        (None, "cross-core hop"),
        (Some("--same-core"), "same-core hop"),
    ] {
        let mut args = vec!["--samples", "200", "--gap-us", "200", "--no-pin"];
        args.extend(mode);
        let (code, text) = hop(&args);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.starts_with(&format!("{label}, 200 samples every 200 us")),
            "{text}"
        );
        assert!(text.contains("p99"), "{text}");
    }
    for bad in [&["--gap-us", "0"][..], &["--samples"], &["--fast"]] {
        let (code, text) = hop(bad);
        assert_eq!(code, 2, "{bad:?}: {text}");
    }
}
