//! Both I/O drivers, and the automatic fallback where io_uring is blocked.
//!
//! The fallback test blocks io_uring the way Docker's default seccomp profile does: a child
//! process of this test binary installs a seccomp filter that fails `io_uring_setup`,
//! `io_uring_enter` and `io_uring_register` with EPERM, then runs the `child_*` test.

#![allow(unsafe_code)]

use std::io::{Read, Write};
use std::num::NonZeroUsize;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use rampart_rt::{CoreCtx, CoreFuture, Driver, DriverChoice, RtConfig, RtError, listener};

const CHILD_ENV: &str = "RAMPART_TEST_SECCOMP_CHILD";

fn config(driver: DriverChoice, cores: usize) -> RtConfig {
    RtConfig {
        cores: NonZeroUsize::new(cores).unwrap(),
        driver,
        pin: true,
        mailbox_capacity: 8,
    }
}

/// Starts `cores` executors that each accept on a shared SO_REUSEPORT port and echo one
/// message per connection, then checks a real client round trip through every core.
fn echo_roundtrip(driver: DriverChoice, cores: usize) -> Result<Vec<Driver>, RtError> {
    let first = listener::reuseport("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = first.local_addr().unwrap();
    let sockets: Vec<_> = (0..cores)
        .map(|i| {
            if i == 0 {
                first.try_clone().unwrap()
            } else {
                listener::reuseport(addr, 64).unwrap()
            }
        })
        .collect();
    let queue = Arc::new(crossbeam_queue::ArrayQueue::new(cores));
    for s in sockets {
        queue.push(s).unwrap();
    }
    let main = Arc::new(move |mut ctx: CoreCtx<()>| -> CoreFuture {
        let std_listener = queue.pop().unwrap();
        Box::pin(async move {
            use compio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = compio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let accept = listener.accept();
                let stop = ctx.mailbox.recv();
                futures_util::pin_mut!(accept, stop);
                match futures_util::future::select(accept, stop).await {
                    futures_util::future::Either::Left((Ok((mut s, _)), _)) => {
                        let buf = vec![0u8; 5];
                        let compio::BufResult(r, buf) = s.read_exact(buf).await;
                        r.unwrap();
                        let mut out = buf.clone();
                        out.extend_from_slice(format!(":{}", ctx.id).as_bytes());
                        let compio::BufResult(r, _) = s.write_all(out).await;
                        r.unwrap();
                    }
                    futures_util::future::Either::Left((Err(e), _)) => panic!("accept: {e}"),
                    futures_util::future::Either::Right(_) => return,
                }
            }
        })
    });
    let cores_handle = rampart_rt::start(&config(driver, cores), main)?;
    let drivers = cores_handle.drivers().to_vec();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"hello").unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("hello:"), "{reply}");
        seen.insert(reply);
    }
    cores_handle.broadcast(|| ());
    assert_eq!(cores_handle.join(), 0);
    // SO_REUSEPORT spreads 64 connections over every core.
    assert_eq!(seen.len(), cores, "cores that answered: {seen:?}");
    Ok(drivers)
}

fn io_uring_usable() -> bool {
    // SAFETY: io_uring_setup with entries=1 and a zeroed params struct; we close the fd.
    unsafe {
        let mut params = [0u8; 120];
        let fd = libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr());
        if fd >= 0 {
            libc::close(fd as i32);
            true
        } else {
            false
        }
    }
}

#[test]
fn io_uring_driver_serves_every_core() {
    if !io_uring_usable() {
        // The fallback test below covers machines without io_uring; forcing it must then fail.
        assert!(matches!(
            echo_roundtrip(DriverChoice::IoUring, 2),
            Err(RtError::Driver { .. })
        ));
        return;
    }
    let drivers = echo_roundtrip(DriverChoice::IoUring, 2).unwrap();
    assert_eq!(drivers, vec![Driver::IoUring; 2]);
}

#[test]
fn poll_driver_serves_every_core() {
    let drivers = echo_roundtrip(DriverChoice::Poll, 2).unwrap();
    assert_eq!(drivers, vec![Driver::Poll; 2]);
}

#[test]
fn auto_prefers_io_uring_when_the_kernel_allows_it() {
    let drivers = echo_roundtrip(DriverChoice::Auto, 2).unwrap();
    let expected = if io_uring_usable() {
        Driver::IoUring
    } else {
        Driver::Poll
    };
    assert_eq!(drivers, vec![expected; 2]);
}

/// Blocks the io_uring system calls like Docker's default seccomp profile (EPERM).
fn block_io_uring() -> std::io::Result<()> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let f = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let filter = [
        f(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        f(JEQ_K, 3, 0, libc::SYS_io_uring_setup as u32),
        f(JEQ_K, 2, 0, libc::SYS_io_uring_enter as u32),
        f(JEQ_K, 1, 0, libc::SYS_io_uring_register as u32),
        f(RET_K, 0, 0, RET_ALLOW),
        f(RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `prog` points at `filter`, both alive for the call; the kernel copies the program.
    if unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            2, /* SECCOMP_MODE_FILTER */
            &prog,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn auto_falls_back_to_poll_where_seccomp_blocks_io_uring() {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "child_under_seccomp",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1");
    // SAFETY: the closure only makes two prctl system calls, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(block_io_uring);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
#[ignore = "runs only inside the seccomp child of auto_falls_back_to_poll_where_seccomp_blocks_io_uring"]
fn child_under_seccomp() {
    assert_eq!(
        std::env::var(CHILD_ENV).as_deref(),
        Ok("1"),
        "run via the parent test"
    );
    assert!(
        !io_uring_usable(),
        "the seccomp filter did not block io_uring"
    );
    let drivers = echo_roundtrip(DriverChoice::Auto, 2).unwrap();
    assert_eq!(drivers, vec![Driver::Poll; 2]);
    let forced = echo_roundtrip(DriverChoice::IoUring, 1);
    assert!(
        matches!(forced, Err(RtError::Driver { .. })),
        "forcing io_uring must fail: {forced:?}"
    );
}
