//! WS-MAN to Intel AMT devices through their CIRA tunnels, driven by the control plane so the
//! AMT password never leaves it.
//!
//! One AMT operation (`rampart_wsman::amt::Operation`: Get, Enumerate + Pull, Invoke, Put) is a
//! sequence of exchanges; each exchange is one HTTP request on a fresh APF channel to port 16992,
//! opened through the data plane's channel service (`channels.sock`, see
//! `rampart_dataplane::cira::channel`): `OPEN <guid> 16992\n`, `OK\n`, then the channel's bytes.
//! A 401 with a digest challenge is answered on another fresh channel (AMT closes after a 401),
//! at most `rampart_wsman::MAX_ATTEMPTS` times.
//!
//! Per device: the digest state (the challenge and its nonce count, so later calls authenticate
//! at once) and at most [`PER_DEVICE`] operations at a time (as MPS's limiter); more wait for a
//! slot within their time limit. Every operation has a time limit that covers the wait, every
//! channel and every read.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rampart_wsman::amt::{AmtError, Operation, Request};
use rampart_wsman::{Call, CallError, DigestClient, Next, Response};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;

/// AMT's WS-MAN port (plain HTTP inside the TLS tunnel, as MPS uses it).
pub const WSMAN_PORT: u32 = 16992;
/// Operations per device at once.
pub const PER_DEVICE: usize = 3;
/// The AMT account MPS uses.
pub const AMT_USER: &str = "admin";
/// Longest answer line from the channel service.
const MAX_LINE: usize = 256;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmtCallError {
    /// No data plane holds a tunnel for the device.
    #[error("the device is not connected")]
    NotConnected,
    /// [`PER_DEVICE`] operations are running and none finished in time.
    #[error("too many operations on this device")]
    Busy,
    /// The time limit passed.
    #[error("the device did not answer in time")]
    Timeout,
    /// The channel service or the device refused the channel.
    #[error("channel refused: {code} {text}")]
    Refused {
        /// The channel service's code (`port_not_forwarded`, `refused`, ...).
        code: String,
        /// Its explanation.
        text: String,
    },
    /// The channel service is not reachable (no data plane on this machine).
    #[error("channel service: {0}")]
    Io(#[from] io::Error),
    /// The HTTP exchange failed (bad response, wrong AMT password).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The device's answer was a fault or not what the operation expects.
    #[error(transparent)]
    Amt(#[from] AmtError),
}

/// One device's shared state.
#[derive(Debug)]
struct DeviceSlot {
    digest: parking_lot::Mutex<DigestClient>,
    calls: tokio::sync::Semaphore,
}

/// The WS-MAN client of every device.
#[derive(Debug)]
pub struct AmtClient {
    socket: PathBuf,
    devices: parking_lot::Mutex<HashMap<String, Arc<DeviceSlot>>>,
}

impl AmtClient {
    /// A client that opens channels through the channel service at `socket`.
    pub fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            devices: parking_lot::Mutex::default(),
        }
    }

    /// Forgets a device's digest state (it was deleted or its password changed).
    pub fn forget(&self, guid: &str) {
        self.devices.lock().remove(guid);
    }

    fn slot(&self, guid: &str) -> Arc<DeviceSlot> {
        self.devices
            .lock()
            .entry(guid.to_owned())
            .or_insert_with(|| {
                Arc::new(DeviceSlot {
                    digest: parking_lot::Mutex::new(DigestClient::new()),
                    calls: tokio::sync::Semaphore::new(PER_DEVICE),
                })
            })
            .clone()
    }

    /// Runs `req` on the device `guid` (canonical lower-case form) with its AMT `password`,
    /// within `limit`; the MPS-shaped JSON answer.
    pub async fn run(
        &self,
        guid: &str,
        password: &[u8],
        req: Request,
        limit: Duration,
    ) -> Result<Value, AmtCallError> {
        let deadline = Instant::now() + limit;
        let slot = self.slot(guid);
        let _permit = tokio::time::timeout_at(deadline, slot.calls.acquire())
            .await
            .map_err(|_| AmtCallError::Busy)?
            .map_err(|_| AmtCallError::Busy)?;
        let host = format!("{guid}:{WSMAN_PORT}");
        let mut op = Operation::new(req, &host);
        while let Some(body) = op.next_request(&message_id()) {
            let resp = self
                .exchange(guid, &host, &slot, password, body, deadline)
                .await?;
            op.on_response(resp.status, &resp.body)?;
        }
        Ok(op.finish()?)
    }

    /// One request and its answer, with the digest retry.
    async fn exchange(
        &self,
        guid: &str,
        host: &str,
        slot: &DeviceSlot,
        password: &[u8],
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<Response, AmtCallError> {
        let mut call = Call::new(host, body);
        let mut bytes = call.request(&mut slot.digest.lock(), AMT_USER, password, &nonce());
        loop {
            let resp = tokio::time::timeout_at(deadline, self.round_trip(guid, &bytes, &mut call))
                .await
                .map_err(|_| AmtCallError::Timeout)??;
            let next = call.after(resp, &mut slot.digest.lock(), AMT_USER, password, &nonce())?;
            match next {
                Next::Done(r) => return Ok(r),
                Next::Retry(again) => bytes = again,
            }
        }
    }

    /// Opens a channel, sends `bytes`, reads one response; the channel closes when the socket
    /// drops.
    async fn round_trip(
        &self,
        guid: &str,
        bytes: &[u8],
        call: &mut Call,
    ) -> Result<Response, AmtCallError> {
        let mut s = open_channel(&self.socket, guid, WSMAN_PORT).await?;
        s.write_all(bytes).await?;
        let mut buf = BytesMut::with_capacity(8 * 1024);
        loop {
            let n = s.read_buf(&mut buf).await?;
            if n == 0 {
                return Ok(call.on_close(&mut buf)?);
            }
            if let Some(r) = call.on_data(&mut buf)? {
                return Ok(r);
            }
        }
    }
}

/// Asks the channel service for a channel to `port` of `guid`.
pub async fn open_channel(
    socket: &std::path::Path,
    guid: &str,
    port: u32,
) -> Result<UnixStream, AmtCallError> {
    let mut s = UnixStream::connect(socket).await?;
    s.write_all(format!("OPEN {guid} {port}\n").as_bytes())
        .await?;
    // Byte by byte: what follows the line is the channel's.
    let mut line = Vec::with_capacity(16);
    while line.last() != Some(&b'\n') {
        if line.len() >= MAX_LINE {
            return Err(AmtCallError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "channel service answer too long",
            )));
        }
        line.push(s.read_u8().await?);
    }
    let line = String::from_utf8_lossy(&line);
    let line = line.trim_end();
    if line == "OK" {
        return Ok(s);
    }
    let rest = line.strip_prefix("ERR ").unwrap_or(line);
    let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
    if code == "not_connected" {
        return Err(AmtCallError::NotConnected);
    }
    Err(AmtCallError::Refused {
        code: code.to_owned(),
        text: text.to_owned(),
    })
}

/// A WS-Addressing message id: `uuid:` and a random version-4 UUID.
fn message_id() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A fresh digest client nonce.
fn nonce() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fill(b: &mut [u8]) {
    // The OS generator does not fail on Linux once booted; a failure would leave zeros, which
    // is still a valid (if predictable) message id and cnonce, never a secret.
    let _ = getrandom::fill(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_uuids() {
        let a = message_id();
        let b = message_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 36);
        assert_eq!(&a[5 + 14..5 + 15], "4");
        assert_eq!(nonce().len(), 32);
    }

    /// A channel service that answers every channel's request after `delay` with a 500 (so
    /// each operation ends after one exchange) and records how many channels were open at once.
    async fn slow_service(
        listener: tokio::net::UnixListener,
        delay: Duration,
        open: Arc<std::sync::atomic::AtomicUsize>,
        most: Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::Ordering;
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let (open, most) = (open.clone(), most.clone());
            tokio::spawn(async move {
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                // The OPEN line, then the whole request (its body follows the blank line).
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                    if got.ends_with(b"\n") && got.starts_with(b"OPEN ") && !got.contains(&b'\r') {
                        s.write_all(b"OK\n").await.unwrap();
                    }
                }
                tokio::time::sleep(delay).await;
                let _ = s
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                    .await;
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    #[tokio::test]
    async fn at_most_three_operations_per_device_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channels.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let delay = Duration::from_millis(200);
        tokio::spawn(slow_service(listener, delay, open, most.clone()));
        let client = Arc::new(AmtClient::new(path));
        let g = "12345678-9abc-def0-1122-334455667788";
        let start = Instant::now();
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move {
                    c.run(g, b"pw", Request::PowerState, Duration::from_secs(10))
                        .await
                })
            })
            .collect();
        for call in calls {
            // The scripted 500 ends each operation: what matters is that all ran.
            assert!(matches!(
                call.await.unwrap(),
                Err(AmtCallError::Amt(AmtError::Http(500)))
            ));
        }
        assert_eq!(most.load(Ordering::SeqCst), PER_DEVICE);
        // Six operations, three at a time: two rounds of the service's delay at least.
        assert!(start.elapsed() >= delay * 2);
        // A device whose three slots are taken answers busy once the time limit passes in the
        // queue.
        let slow = Duration::from_millis(300);
        let held: Vec<_> = (0..3)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move { c.run(g, b"pw", Request::PowerState, slow * 4).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = client
            .run(g, b"pw", Request::PowerState, Duration::from_millis(50))
            .await;
        assert!(matches!(r, Err(AmtCallError::Busy)), "{r:?}");
        for h in held {
            let _ = h.await;
        }
    }

    #[tokio::test]
    async fn channel_service_answers_are_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channels.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            for answer in [
                "OK\nHTTP",
                "ERR not_connected no tunnel\n",
                "ERR refused 2\n",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut line = vec![0u8; 48];
                let n = s.read(&mut line).await.unwrap();
                assert!(line[..n].starts_with(b"OPEN 12345678-"));
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let g = "12345678-9abc-def0-1122-334455667788";
        let mut s = open_channel(&path, g, 16992).await.unwrap();
        let mut rest = [0u8; 4];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"HTTP");
        assert!(matches!(
            open_channel(&path, g, 16992).await,
            Err(AmtCallError::NotConnected)
        ));
        match open_channel(&path, g, 16992).await {
            Err(AmtCallError::Refused { code, text }) => {
                assert_eq!((code.as_str(), text.as_str()), ("refused", "2"));
            }
            other => panic!("{other:?}"),
        }
        server.await.unwrap();
    }
}
