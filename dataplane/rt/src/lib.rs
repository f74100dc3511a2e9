//! The thread-per-core runtime of the Rampart data plane.
//!
//! - [`start`] runs one single-threaded [compio] executor per core, each on its own OS thread,
//!   pinned to one CPU. There is no work stealing: a connection accepted on a core lives and dies
//!   there.
//! - The I/O driver is io_uring where the kernel allows it and the polling driver (epoll)
//!   otherwise: Docker's default seccomp profile, `kernel.io_uring_disabled`, old kernels.
//!   [`DriverChoice`] forces either one; [`start`] reports which driver every core got.
//! - [`listener::reuseport`] opens one `SO_REUSEPORT` listener per core and port, so the kernel
//!   spreads new connections over the cores without a shared accept lock.
//! - [`channel`] is the only way between cores: bounded, lock-free, multi-producer queues with a
//!   waker; a full queue is an explicit error the sender decides about.
//! - [`drain::Drain`] is the per-core drain state: stop accepting, tell connections, wait for them.
//!
//! This is the only data-plane crate allowed `unsafe` (CPU affinity and system calls). It knows
//! nothing of protocols, TLS or configuration files.

// The one data-plane crate with `unsafe`: CPU affinity needs libc. Every block has a SAFETY note.
#![allow(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fmt;
use std::future::Future;
use std::io;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::thread;

use compio::driver::{DriverType, ProactorBuilder};
use compio::runtime::RuntimeBuilder;

pub mod channel;
pub mod drain;
pub mod listener;

/// Which I/O driver the executors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// io_uring when the kernel offers every operation we need, polling otherwise.
    #[default]
    Auto,
    /// io_uring or fail to start.
    IoUring,
    /// The polling driver (epoll), even where io_uring works.
    Poll,
}

impl DriverChoice {
    /// Configuration spelling: `auto`, `io_uring`, `poll`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::IoUring => "io_uring",
            Self::Poll => "poll",
        }
    }
}

/// The I/O driver an executor actually runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Linux io_uring.
    IoUring,
    /// readiness polling (epoll).
    Poll,
}

impl Driver {
    /// Stable label for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::IoUring => "io_uring",
            Self::Poll => "poll",
        }
    }

    fn from_compio(t: DriverType) -> Self {
        if t.is_iouring() {
            Self::IoUring
        } else {
            Self::Poll
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many executors to run and how.
#[derive(Debug, Clone)]
pub struct RtConfig {
    /// Number of executors (cores). See [`available_cores`] for the default.
    pub cores: NonZeroUsize,
    /// The I/O driver.
    pub driver: DriverChoice,
    /// Pin executor `i` to the `i`-th CPU this process may run on.
    pub pin: bool,
    /// Capacity of each core's mailbox.
    pub mailbox_capacity: usize,
}

/// The CPUs this process may run on (its affinity mask), at least one.
pub fn available_cores() -> NonZeroUsize {
    thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

/// What a core's main future gets.
#[derive(Debug)]
pub struct CoreCtx<M> {
    /// This core's index, `0..cores`.
    pub id: usize,
    /// The number of cores.
    pub cores: usize,
    /// The I/O driver this core runs.
    pub driver: Driver,
    /// The CPU this core is pinned to, if pinned.
    pub cpu: Option<usize>,
    /// Messages from outside (the main thread or other cores).
    pub mailbox: channel::Receiver<M>,
}

/// A core's main future.
pub type CoreFuture = Pin<Box<dyn Future<Output = ()>>>;

/// Builds each core's main future, on that core's thread.
pub type CoreMain<M> = Arc<dyn Fn(CoreCtx<M>) -> CoreFuture + Send + Sync>;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtError {
    /// A core's executor could not be built (e.g. io_uring forced where it is blocked).
    #[error("core {core}: cannot start the {driver} driver: {source}")]
    Driver {
        /// The core.
        core: usize,
        /// The driver that was asked for.
        driver: &'static str,
        /// The system error.
        source: io::Error,
    },
    /// The OS refused a thread.
    #[error("cannot spawn core thread: {0}")]
    Spawn(io::Error),
    /// A core thread died before reporting.
    #[error("core {0} died during start")]
    CoreDied(usize),
}

/// The running cores.
#[derive(Debug)]
pub struct Cores<M> {
    mailboxes: Vec<channel::Sender<M>>,
    threads: Vec<thread::JoinHandle<()>>,
    drivers: Vec<Driver>,
}

impl<M: Send + 'static> Cores<M> {
    /// The driver each core runs, by core index.
    pub fn drivers(&self) -> &[Driver] {
        &self.drivers
    }

    /// The mailbox of every core, by core index.
    pub fn mailboxes(&self) -> &[channel::Sender<M>] {
        &self.mailboxes
    }

    /// Sends `make()` to every core; returns how many mailboxes were full or closed.
    pub fn broadcast(&self, make: impl Fn() -> M) -> usize {
        self.mailboxes
            .iter()
            .filter(|tx| tx.try_send(make()).is_err())
            .count()
    }

    /// Waits for every core's main future to return. Returns the number of cores that panicked.
    pub fn join(self) -> usize {
        drop(self.mailboxes);
        self.threads
            .into_iter()
            .map(|t| t.join())
            .filter(Result::is_err)
            .count()
    }
}

/// Starts `config.cores` executors, each running `main(ctx)` until it returns.
///
/// Returns once every core has built its executor, so a driver that cannot start is an error
/// here, not a log line later.
pub fn start<M: Send + 'static>(config: &RtConfig, main: CoreMain<M>) -> Result<Cores<M>, RtError> {
    let n = config.cores.get();
    let cpus = if config.pin {
        allowed_cpus()
    } else {
        Vec::new()
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<(usize, Result<Driver, io::Error>)>();
    let mut mailboxes = Vec::with_capacity(n);
    let mut threads = Vec::with_capacity(n);
    for id in 0..n {
        let (tx, rx) = channel::bounded::<M>(config.mailbox_capacity.max(1));
        mailboxes.push(tx);
        let cpu = (!cpus.is_empty()).then(|| cpus[id % cpus.len()]);
        let choice = config.driver;
        let main = main.clone();
        let ready = ready_tx.clone();
        let thread = thread::Builder::new()
            .name(format!("rampart-core-{id}"))
            .spawn(move || run_core(id, n, cpu, choice, rx, main, ready))
            .map_err(RtError::Spawn)?;
        threads.push(thread);
    }
    drop(ready_tx);

    let mut drivers = vec![Driver::Poll; n];
    let mut failure = None;
    for _ in 0..n {
        match ready_rx.recv() {
            Ok((core, Ok(driver))) => drivers[core] = driver,
            Ok((core, Err(source))) => {
                failure.get_or_insert(RtError::Driver {
                    core,
                    driver: config.driver.as_str(),
                    source,
                });
            }
            Err(_) => {
                failure.get_or_insert(RtError::CoreDied(0));
                break;
            }
        }
    }
    let cores = Cores {
        mailboxes,
        threads,
        drivers,
    };
    match failure {
        None => Ok(cores),
        Some(e) => {
            // Cores that did start see their mailbox close and are expected to return.
            cores.join();
            Err(e)
        }
    }
}

fn run_core<M>(
    id: usize,
    cores: usize,
    cpu: Option<usize>,
    choice: DriverChoice,
    mailbox: channel::Receiver<M>,
    main: CoreMain<M>,
    ready: std::sync::mpsc::Sender<(usize, Result<Driver, io::Error>)>,
) {
    let mut proactor = ProactorBuilder::new();
    match choice {
        DriverChoice::Auto => {}
        DriverChoice::IoUring => {
            proactor.driver_type(DriverType::IoUring);
        }
        DriverChoice::Poll => {
            proactor.driver_type(DriverType::Poll);
        }
    }
    let mut builder = RuntimeBuilder::new();
    builder.with_proactor(proactor);
    if let Some(cpu) = cpu {
        builder.thread_affinity(std::iter::once(cpu).collect());
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send((id, Err(e)));
            return;
        }
    };
    let driver = Driver::from_compio(runtime.driver_type());
    let _ = ready.send((id, Ok(driver)));
    drop(ready);
    let ctx = CoreCtx {
        id,
        cores,
        driver,
        cpu,
        mailbox,
    };
    runtime.block_on(main(ctx));
}

/// The CPU ids in this process's affinity mask, in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is a plain bit set; zeroed is its empty value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: we pass the size of `set` and a valid pointer to it; pid 0 is the calling thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE and `set` was filled by the kernel.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Why io_uring may be unavailable, for the start-up log: the `kernel.io_uring_disabled` sysctl
/// (Linux ≥ 6.6) when it is non-zero.
pub fn io_uring_hint() -> Option<String> {
    let v = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok()?;
    let v = v.trim();
    (v != "0").then(|| format!("kernel.io_uring_disabled = {v}"))
}
