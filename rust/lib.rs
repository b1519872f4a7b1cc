//! qpump's Rust core: the hierarchical equations of motion (HEOM) of qubits coupled to
//! Drude-Lorentz baths. Pure Rust below `heom`; the Python binding lives in `py.rs` only.

pub mod heom;

#[cfg(feature = "python")]
mod py;

/// Build profile the crate was compiled with ("release" or "debug").
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Version of the Rust core (the crate version).
pub fn core_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
