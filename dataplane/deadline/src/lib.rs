//! Sans-IO connection deadlines, one mechanism for every protocol Rampart speaks.
//!
//! This crate ports the deadline arithmetic of Apache's `mod_reqtimeout` (see
//! `docs/architecture.md`, "Connection deadlines"):
//!
//! - A connection moves through *stages* (TLS handshake, HTTP header, HTTP body, MQTT CONNECT,
//!   APF authentication, ...). Each stage has a [`StageLimit`]: a timeout `T`, optionally
//!   extended by `1 s / MinRate` for every byte received, optionally capped at `MAX`.
//! - A [`StageClock`] is started when the stage starts, is told how many raw socket bytes arrived
//!   ([`StageClock::on_bytes`]) and answers with the current deadline. The I/O layer races every
//!   read against that deadline.
//! - A [`WriteClock`] is the mirror image for writes: each write must make progress within a
//!   stall limit, so a peer that stops reading (slow read) cannot pin a connection forever.
//! - [`StagePlan`] parses the `RequestReadTimeout` syntax (`handshake=10 header=20-40,MinRate=500`)
//!   with Apache's validation rules, plus ours: a stage declared *bounded* (the TLS handshake)
//!   can never be configured as unlimited.
//!
//! What this crate deliberately does not do: read the clock, touch sockets, or log. Time enters
//! as `now: Instant`; the runtime owns the timers. Every outcome is a value ([`Timeout`]) that the
//! caller counts and logs.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Why a connection was closed by a deadline. Counted and logged by the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timeout {
    /// The TLS handshake did not complete within its stage limit.
    Handshake,
    /// A protocol stage (named by the protocol, e.g. `header`, `connect`) ran out of time.
    Stage(&'static str),
    /// A write made no progress within the write-stall limit (the peer stopped reading).
    WriteStall,
}

impl Timeout {
    /// Stable label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Stage(name) => name,
            Self::WriteStall => "write_stall",
        }
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl StageLimit ===

/// The limit of one stage: `T[-MAX][,MinRate=R]` in `mod_reqtimeout` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLimit {
    timeout: Duration,
    max: Option<Duration>,
    min_rate: Option<NonZeroU32>,
}

impl StageLimit {
    /// A stage with no limit at all (Apache's `T = 0`). Never accepted for a bounded stage.
    pub const DISABLED: Self = Self {
        timeout: Duration::ZERO,
        max: None,
        min_rate: None,
    };

    /// An absolute limit for the whole stage, not extended by received bytes.
    pub const fn fixed(timeout: Duration) -> Self {
        Self {
            timeout,
            max: None,
            min_rate: None,
        }
    }

    /// A limit extended by `1 s / min_rate` per received byte, capped at `max` when given.
    ///
    /// Fails with Apache's rules: `max` must be greater than `timeout`.
    pub fn with_rate(
        timeout: Duration,
        max: Option<Duration>,
        min_rate: NonZeroU32,
    ) -> Result<Self, ParseError> {
        if max.is_some_and(|max| max <= timeout) {
            return Err(ParseError::MaxNotAboveTimeout);
        }
        Ok(Self {
            timeout,
            max,
            min_rate: Some(min_rate),
        })
    }

    /// Parses one stage value: `T`, `T,MinRate=R` or `T-MAX,MinRate=R` (seconds, bytes/s).
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let mut parts = value.split(',');
        let times = parts.next().unwrap_or_default().trim();
        let mut min_rate = None;
        for opt in parts {
            let (key, val) = opt.split_once('=').ok_or(ParseError::BadOption)?;
            if !key.trim().eq_ignore_ascii_case("minrate") {
                return Err(ParseError::BadOption);
            }
            if min_rate.is_some() {
                return Err(ParseError::BadOption);
            }
            let val = val.trim();
            if val.is_empty() || !val.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::BadNumber);
            }
            let rate: u32 = val.parse().map_err(|_| ParseError::BadNumber)?;
            min_rate = Some(NonZeroU32::new(rate).ok_or(ParseError::ZeroMinRate)?);
        }
        let (timeout, max) = match times.split_once('-') {
            Some((t, m)) => (parse_secs(t)?, Some(parse_secs(m)?)),
            None => (parse_secs(times)?, None),
        };
        match (max, min_rate) {
            (Some(_), None) => Err(ParseError::RangeWithoutMinRate),
            (_, Some(rate)) => Self::with_rate(timeout, max, rate),
            (None, None) => Ok(Self::fixed(timeout)),
        }
    }

    /// True when the stage has no deadline at all.
    pub fn is_disabled(&self) -> bool {
        self.timeout.is_zero()
    }

    /// True when the stage always ends within a finite time from its start.
    pub fn is_bounded(&self) -> bool {
        !self.is_disabled() && (self.min_rate.is_none() || self.max.is_some())
    }

    /// The initial timeout `T`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The hard cap `MAX`, if any.
    pub fn max(&self) -> Option<Duration> {
        self.max
    }

    /// The minimum rate in bytes per second, if any.
    pub fn min_rate(&self) -> Option<NonZeroU32> {
        self.min_rate
    }

    /// The longest the stage can last: `MAX`, or `T` without a rate; `None` if unbounded.
    pub fn worst_case(&self) -> Option<Duration> {
        if !self.is_bounded() {
            return None;
        }
        Some(self.max.unwrap_or(self.timeout))
    }
}

impl fmt::Display for StageLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.timeout.as_secs())?;
        if let Some(max) = self.max {
            write!(f, "-{}", max.as_secs())?;
        }
        if let Some(rate) = self.min_rate {
            write!(f, ",MinRate={rate}")?;
        }
        Ok(())
    }
}

fn parse_secs(s: &str) -> Result<Duration, ParseError> {
    let s = s.trim();
    // Apache accepts plain non-negative integers of seconds; so do we (no signs, no units).
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber);
    }
    let secs: u32 = s.parse().map_err(|_| ParseError::BadNumber)?;
    Ok(Duration::from_secs(u64::from(secs)))
}

// === impl StagePlan ===

/// One stage a protocol declares, with its default and whether it must always be bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageSpec {
    /// The stage name used in configuration (`handshake`, `header`, ...).
    pub name: &'static str,
    /// The limit used when the configuration does not mention the stage.
    pub default: StageLimit,
    /// When true, the stage may not be configured as unlimited (`0`, or a rate without `MAX`).
    pub bounded: bool,
}

/// The limits of all stages of one listener, parsed from `RequestReadTimeout` syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    stages: Vec<(&'static str, StageLimit)>,
}

impl StagePlan {
    /// The plan made only of the specs' defaults.
    pub fn defaults(specs: &[StageSpec]) -> Self {
        Self {
            stages: specs.iter().map(|s| (s.name, s.default)).collect(),
        }
    }

    /// Parses `stage=value stage=value ...`; stages not mentioned keep their defaults.
    ///
    /// Stage names are matched case-insensitively, as Apache does. A stage may appear once.
    pub fn parse(input: &str, specs: &[StageSpec]) -> Result<Self, PlanError> {
        Self::parse_over(input, specs, Self::defaults(specs))
    }

    /// Like [`StagePlan::parse`], but stages not mentioned keep their value in `base` (which
    /// must have been made from the same `specs`).
    pub fn parse_over(input: &str, specs: &[StageSpec], base: Self) -> Result<Self, PlanError> {
        let mut plan = if base.stages.len() == specs.len() {
            base
        } else {
            Self::defaults(specs)
        };
        let mut seen = vec![false; specs.len()];
        for item in input.split_ascii_whitespace() {
            let (name, value) = item.split_once('=').ok_or_else(|| PlanError {
                stage: item.to_owned(),
                error: ParseError::MissingStage,
            })?;
            let idx = specs
                .iter()
                .position(|s| s.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| PlanError {
                    stage: name.to_owned(),
                    error: ParseError::UnknownStage,
                })?;
            let err = |error| PlanError {
                stage: specs[idx].name.to_owned(),
                error,
            };
            if seen[idx] {
                return Err(err(ParseError::Duplicate));
            }
            seen[idx] = true;
            let limit = StageLimit::parse(value).map_err(err)?;
            if specs[idx].bounded && !limit.is_bounded() {
                return Err(err(ParseError::MustBeBounded));
            }
            plan.stages[idx].1 = limit;
        }
        Ok(plan)
    }

    /// The limit of a stage, if the plan has it.
    pub fn get(&self, name: &str) -> Option<StageLimit> {
        self.stages
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, limit)| *limit)
    }

    /// All stages in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, StageLimit)> + '_ {
        self.stages.iter().copied()
    }
}

impl fmt::Display for StagePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, limit)) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={limit}")?;
        }
        Ok(())
    }
}

/// Why a stage value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A time was not a non-negative integer number of seconds.
    #[error("times are whole seconds, e.g. 20 or 20-40")]
    BadNumber,
    /// An option other than a single `MinRate=R` followed the times.
    #[error("the only option is MinRate=<bytes per second>")]
    BadOption,
    /// `MinRate=0` (Apache: "Minimum data rate must be larger than 0").
    #[error("MinRate must be larger than 0")]
    ZeroMinRate,
    /// `T-MAX` without `MinRate` (Apache: "Must set MinRate option if using timeout range").
    #[error("a timeout range needs a MinRate option")]
    RangeWithoutMinRate,
    /// `MAX <= T` (Apache: "Maximum timeout must be larger than initial timeout").
    #[error("the maximum timeout must be larger than the initial timeout")]
    MaxNotAboveTimeout,
    /// An item without `=`.
    #[error("expected stage=value")]
    MissingStage,
    /// A stage name the protocol does not have.
    #[error("unknown stage")]
    UnknownStage,
    /// The same stage twice.
    #[error("stage given twice")]
    Duplicate,
    /// An unlimited value (`0`, or a MinRate without a maximum) for a stage that must be bounded.
    #[error("this stage must be bounded: give a non-zero timeout, and a maximum with MinRate")]
    MustBeBounded,
}

/// A [`ParseError`] with the stage it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stage `{stage}`: {error}")]
pub struct PlanError {
    /// The stage name as configured.
    pub stage: String,
    /// What is wrong with it.
    pub error: ParseError,
}

// === impl StageClock ===

/// The running deadline of one stage of one connection (`mod_reqtimeout`'s `timeout_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageClock {
    deadline: Option<Instant>,
    cap: Option<Instant>,
    min_rate: Option<NonZeroU32>,
}

impl StageClock {
    /// Starts a stage at `now`: `deadline = now + T`, `cap = now + MAX`.
    pub fn start(limit: StageLimit, now: Instant) -> Self {
        if limit.is_disabled() {
            return Self {
                deadline: None,
                cap: None,
                min_rate: None,
            };
        }
        Self {
            deadline: Some(now.checked_add(limit.timeout).unwrap_or(now)),
            cap: limit.max.map(|m| now.checked_add(m).unwrap_or(now)),
            min_rate: limit.min_rate,
        }
    }

    /// Records `n` raw bytes received: extends the deadline by `n / MinRate` seconds, up to the
    /// cap. Without a MinRate, bytes do not extend the deadline.
    pub fn on_bytes(&mut self, n: usize) {
        let (Some(deadline), Some(rate)) = (self.deadline, self.min_rate) else {
            return;
        };
        let nanos = (n as u128).saturating_mul(1_000_000_000) / u128::from(rate.get());
        let ext = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        let extended = deadline.checked_add(ext);
        self.deadline = Some(match (extended, self.cap) {
            (Some(d), Some(cap)) => d.min(cap),
            (Some(d), None) => d,
            (None, Some(cap)) => cap,
            // Overflowing `Instant` means centuries away; keep the old deadline.
            (None, None) => deadline,
        });
    }

    /// The instant the stage expires, or `None` for a disabled stage.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True once `now` has reached the deadline.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

// === impl WriteClock ===

/// Write-progress deadline: each pending write must make progress within `stall`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteClock {
    stall: Duration,
    deadline: Option<Instant>,
}

impl WriteClock {
    /// A clock that allows `stall` without progress while output is pending.
    pub fn new(stall: Duration) -> Self {
        Self {
            stall,
            deadline: None,
        }
    }

    /// The allowed time without progress.
    pub fn stall(&self) -> Duration {
        self.stall
    }

    /// Output became pending at `now` (a write is about to start) if none was pending.
    pub fn on_pending(&mut self, now: Instant) {
        if self.deadline.is_none() {
            self.deadline = Some(now.checked_add(self.stall).unwrap_or(now));
        }
    }

    /// Some bytes were written at `now`: the stall window restarts.
    pub fn on_progress(&mut self, now: Instant) {
        self.deadline = Some(now.checked_add(self.stall).unwrap_or(now));
    }

    /// All output was written: no deadline until output is pending again.
    pub fn on_idle(&mut self) {
        self.deadline = None;
    }

    /// The instant the pending write is declared stalled.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

#[cfg(test)]
mod tests;
