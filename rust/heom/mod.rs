//! Hierarchical equations of motion, one concept per file: the model (`model.rs`), the state
//! (`state.rs`), the stepper (`multistep.rs`), observables of model and state
//! (`observables.rs`), smooth drives of the Hamiltonian (`drive.rs`), the assembled generator (`steady.rs`), and the facade owning the three
//! that the binding uses (`solver.rs`). The parts live in private modules; what the binding and
//! other callers use is re-exported here.

pub mod bath;
pub mod cancel;
pub mod drive;
pub mod error;
pub mod hierarchy;
pub mod linalg;
mod model;
mod multistep;
mod observables;
mod rhs;
mod solver;
mod state;
mod steady;
#[cfg(test)]
mod testing;

pub use model::BathSpec;
pub use multistep::{simd_path, Stats};
pub use observables::Observation;
pub use solver::{memory_estimate, Solver};
pub use steady::Triplets;
