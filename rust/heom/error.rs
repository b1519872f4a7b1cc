//! Errors of the HEOM core. Every failure reachable from Python is one of these (never a panic).

use std::fmt;

/// What went wrong in the HEOM core.
#[derive(Debug, Clone, PartialEq)]
pub enum HeomError {
    /// A parameter is outside its allowed range; `name` is the parameter, `message` says why.
    InvalidParameter { name: String, message: String },
    /// A non-finite value appeared while integrating; `time` is the last time reached.
    NonFinite { time: f64 },
    /// The adaptive step size fell below what floating point can resolve.
    StepTooSmall { time: f64, step: f64 },
    /// A drive's profile had no finite value at `time` (`drive.rs`).
    Drive { time: f64, message: String },
    /// The caller's cancellation check stopped the computation (see `cancel.rs`); a propagation
    /// leaves the state at the end of its last completed step.
    Interrupted,
}

impl HeomError {
    /// Shorthand for [`HeomError::InvalidParameter`].
    pub fn invalid(name: &str, message: impl Into<String>) -> Self {
        HeomError::InvalidParameter {
            name: name.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for HeomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeomError::InvalidParameter { name, message } => write!(f, "{name}: {message}"),
            HeomError::NonFinite { time } => write!(
                f,
                "a non-finite value appeared during the HEOM integration at t = {time}; \
                 try a smaller max_step or tighter tolerances (rtol, atol)"
            ),
            HeomError::StepTooSmall { time, step } => write!(
                f,
                "the HEOM step size fell to {step:.3e} at t = {time}; \
                 try a smaller max_step or looser tolerances (rtol, atol)"
            ),
            HeomError::Drive { time, message } => {
                write!(f, "the drive's profile failed at t = {time}: {message}")
            }
            HeomError::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for HeomError {}

/// Result type of the HEOM core.
pub type HeomResult<T> = Result<T, HeomError>;
