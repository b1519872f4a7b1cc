//! Hierarchical equations of motion, one concept per file. The solver's parts live in private
//! modules; what the binding and other callers use is re-exported here.

pub mod bath;
pub mod cancel;
pub mod error;
mod frame;
pub mod hierarchy;
pub mod linalg;
mod multistep;
mod observables;
mod rhs;
mod solver;
mod steady;
#[cfg(test)]
mod testing;

pub use multistep::simd_path;
pub use observables::Observation;
pub use solver::{memory_estimate, BathSpec, Solver, Stats};
pub use steady::Triplets;
