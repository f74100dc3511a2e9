//! The CIRA channel service end to end: `rampart up` with the CIRA port, a simulated AMT device
//! over real TLS, and a client on the data plane's `channels.sock` (as the control plane uses
//! it) asking for channels to the device's forwarded ports.
//!
//! The simulated device is single-threaded and blocking, so each test drives it on the test
//! thread while the channel client runs on another.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rampart_apf_proto::{Message, reason};
use rampart_loadgen::amt::{Device, Setup};

mod common;

use common::cira::{Cira, T};
use common::free_port;

const G1: &str = "12345678-9abc-def0-1122-334455667788";
const G2: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

/// Connects to `channels.sock` and sends `line`; returns the socket and the answer line.
fn request(c: &Cira, line: &str) -> (UnixStream, String) {
    request_at(&c.install.dir.path().join("var/run/channels.sock"), line)
}

fn request_at(path: &std::path::Path, line: &str) -> (UnixStream, String) {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: whatever follows the line is the channel's.
    while answer.last() != Some(&b'\n') {
        match s.read(&mut byte) {
            Ok(1) => answer.push(byte[0]),
            _ => break,
        }
    }
    (s, String::from_utf8(answer).unwrap())
}

/// Asks for a channel on another thread (the device must be served meanwhile).
fn request_async(c: &Cira, line: String) -> JoinHandle<(UnixStream, String)> {
    let path = c.install.dir.path().join("var/run/channels.sock");
    std::thread::spawn(move || request_at(&path, &line))
}

/// Serves `d` until `client` has finished; returns the client's result.
fn serve_until<R>(d: &mut Device, client: JoinHandle<R>, limit: Duration) -> R {
    let deadline = Instant::now() + limit;
    while !client.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the channel client did not finish"
        );
        if let Ok(Some(m)) = d.recv(Duration::from_millis(20)) {
            d.handle(m).unwrap();
        }
    }
    client.join().unwrap()
}

fn forwarding(c: &Cira, guid: &str, ports: &[u32]) -> Device {
    let pw = c.add_device(guid);
    let mut d = c.device(guid, &pw, ports);
    assert!(
        matches!(d.setup(0, T).unwrap(), Setup::Forwarding { .. }),
        "{}",
        c.log()
    );
    d
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_channel_carries_a_megabyte_both_ways_within_both_windows() {
    let c = Cira::start("", "", free_port());
    let mut d = forwarding(&c, G1, &[16992, 16994]);
    let opener = request_async(&c, format!("OPEN {G1} 16994\n"));
    let (s, answer) = serve_until(&mut d, opener, T);
    assert_eq!(answer, "OK\n", "{}", c.log());
    assert_eq!(c.metric("rampart_cira_channels"), Some(1));
    // The device echoes: 1 MiB up through its 4 KiB window, and back down through ours.
    const N: usize = 1 << 20;
    let client = std::thread::spawn(move || {
        let mut w = s.try_clone().unwrap();
        let writer = std::thread::spawn(move || w.write_all(&pattern(N)));
        let mut r = s;
        let mut back = vec![0u8; N];
        let got = r.read_exact(&mut back);
        writer.join().unwrap().unwrap();
        got.map_err(|e| format!("{e} before the whole echo came back"))?;
        // End of our input closes the channel: the socket ends with nothing more.
        r.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).map_err(|e| e.to_string())?;
        assert!(rest.is_empty());
        Ok::<_, String>(back)
    });
    let back = serve_until(&mut d, client, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}: {}", c.log()));
    assert_eq!(back.len(), N);
    assert!(back == pattern(N), "the echo differs");
    // Every byte reached the device once, in order.
    let got: Vec<u8> = d.received.values().flatten().copied().collect();
    assert!(got == pattern(N));
    let deadline = Instant::now() + T;
    while c.metric("rampart_cira_channels") != Some(0) {
        assert!(Instant::now() < deadline, "channel still counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.metric("rampart_cira_channels_opened_total"), Some(1));
    // The tunnel is still up and answers keepalives.
    assert_eq!(d.keepalive(7, T).unwrap(), 7);
}

#[test]
fn refusals_say_why_and_a_channel_ends_with_its_tunnel() {
    let c = Cira::start("", "", free_port());
    let mut d = forwarding(&c, G1, &[16992]);
    for (line, expect) in [
        (format!("OPEN {G2} 16992\n"), "ERR not_connected "),
        (format!("OPEN {G1} 5900\n"), "ERR port_not_forwarded "),
        (format!("OPEN {G1} 0\n"), "ERR bad_request "),
        ("GET / HTTP/1.1\n".to_owned(), "ERR bad_request "),
    ] {
        let (_, answer) = request(&c, &line);
        assert!(answer.starts_with(expect), "{line:?}: {answer:?}");
    }
    // The device refuses the channel itself.
    let client = std::thread::spawn({
        let path = c.install.dir.path().to_owned();
        move || {
            let mut s = UnixStream::connect(path.join("var/run/channels.sock")).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            s.write_all(format!("OPEN {G1} 16992\n").as_bytes())
                .unwrap();
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).unwrap();
            line
        }
    });
    let Ok(Some(Message::ChannelOpen { sender, .. })) = d.recv(T) else {
        panic!("no CHANNEL_OPEN");
    };
    d.send(&Message::ChannelOpenFailure {
        recipient: sender,
        reason: 2,
    })
    .unwrap();
    assert_eq!(client.join().unwrap(), "ERR refused 2\n");

    // A channel is open when the device goes: the client's socket ends.
    let opener = request_async(&c, format!("OPEN {G1} 16992\n"));
    let (s, answer) = serve_until(&mut d, opener, T);
    assert_eq!(answer, "OK\n");
    d.send(&Message::Disconnect {
        reason: reason::BY_APPLICATION,
    })
    .unwrap();
    let mut rest = Vec::new();
    let mut s = s;
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn windows_are_enforced_both_ways_over_tls() {
    let c = Cira::start("", "", free_port());
    let mut d = forwarding(&c, G1, &[16992, 16994]);
    let path = c.install.dir.path().join("var/run/channels.sock");
    // Our side keeps within the device's window: the device grants 1000 bytes and nothing
    // more arrives until it adjusts.
    let client = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut s = UnixStream::connect(path).unwrap();
            s.write_all(format!("OPEN {G1} 16994\n").as_bytes())
                .unwrap();
            let mut ok = [0u8; 3];
            s.read_exact(&mut ok).unwrap();
            assert_eq!(&ok, b"OK\n");
            s.write_all(&pattern(10_000)).unwrap();
            s
        }
    });
    let Ok(Some(Message::ChannelOpen { sender, window, .. })) = d.recv(T) else {
        panic!("no CHANNEL_OPEN");
    };
    assert_eq!(window, 81_920);
    let ours = 77;
    d.send(&Message::ChannelOpenConfirmation {
        recipient: sender,
        sender: ours,
        window: 1000,
    })
    .unwrap();
    let s = client.join().unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(800);
    while Instant::now() < deadline {
        match d.recv(Duration::from_millis(50)) {
            Ok(Some(Message::ChannelData { recipient, data })) => {
                assert_eq!(recipient, ours);
                got.extend_from_slice(&data);
            }
            Ok(Some(Message::KeepaliveRequest { cookie })) => {
                d.send(&Message::KeepaliveReply { cookie }).unwrap();
            }
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            _ => {}
        }
    }
    assert_eq!(got.len(), 1000, "sent beyond the device's window");
    d.send(&Message::WindowAdjust {
        recipient: sender,
        bytes: 9000,
    })
    .unwrap();
    while got.len() < 10_000 {
        match d.recv(T) {
            Ok(Some(Message::ChannelData { data, .. })) => got.extend_from_slice(&data),
            other => panic!("expected data, got {other:?}"),
        }
    }
    assert!(got == pattern(10_000));
    assert!(
        d.recv(Duration::from_millis(300)).is_err(),
        "nothing more to send"
    );

    // The device may not exceed ours: one message larger than the window it was given is a
    // protocol error that ends the tunnel (and so the channel).
    d.send(&Message::ChannelData {
        recipient: sender,
        data: Bytes::from(vec![0u8; 81_921]),
    })
    .unwrap();
    let (why, closed) = d.serve_for(T).unwrap();
    assert_eq!(why, Some(reason::PROTOCOL_ERROR));
    assert!(closed);
    let mut rest = Vec::new();
    let mut s = s;
    s.set_read_timeout(Some(T)).unwrap();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no device bytes were delivered");
}
