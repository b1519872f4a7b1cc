//! Hierarchical equations of motion, one concept per file.

pub mod bath;
pub mod cancel;
pub mod error;
pub mod frame;
pub mod hierarchy;
pub mod integrate;
pub mod linalg;
pub mod multistep;
pub mod observables;
pub mod rhs;
pub mod solver;
pub mod steady;
#[cfg(test)]
pub mod testing;
