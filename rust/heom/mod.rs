//! Hierarchical equations of motion, one concept per file.
