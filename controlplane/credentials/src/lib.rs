//! Credential handling for the control plane (being built).
#![forbid(unsafe_code)]
