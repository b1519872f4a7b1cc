//! Cooperative cancellation and progress. A long computation (the propagation, the generator)
//! takes a check from its caller and consults it now and then, throttled by wall time, telling
//! it how far it has got (the time reached by a propagation, the ADOs done by the generator);
//! when the check returns an error (normally
//! [`HeomError::Interrupted`](super::error::HeomError::Interrupted)), the computation stops
//! between two units of work and returns that error.
//!
//! The core knows nothing about where a cancellation request comes from or where progress goes:
//! the Python binding's check runs the interpreter's signal handlers (Ctrl-C) and a progress bar.

use super::error::HeomResult;
use std::time::{Duration, Instant};

/// Longest wall time between two consultations of the check (plus one unit of work, e.g. one
/// integration step).
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// A caller's check: called with the progress so far; an error stops the computation.
pub type Check<'a> = dyn FnMut(f64) -> HeomResult<()> + 'a;

/// The check of a caller that never cancels and follows no progress.
pub fn never(_progress: f64) -> HeomResult<()> {
    Ok(())
}

/// A caller's check, consulted at most once per [`CHECK_INTERVAL`].
///
/// [`Throttle::poll`] costs one reading of the monotonic clock (tens of nanoseconds), so it is
/// meant for loops whose iterations take microseconds or more.
pub struct Throttle<'a, 'b> {
    check: &'a mut Check<'b>,
    due: Instant,
}

impl<'a, 'b> Throttle<'a, 'b> {
    /// Start the clock: the first consultation is due one interval from now (a short call never
    /// consults the check at all).
    pub fn new(check: &'a mut Check<'b>) -> Self {
        Throttle {
            check,
            due: Instant::now() + CHECK_INTERVAL,
        }
    }

    /// Consult the check, with the progress so far, if the interval since the last
    /// consultation has passed.
    #[inline]
    pub fn poll(&mut self, progress: f64) -> HeomResult<()> {
        let now = Instant::now();
        if now < self.due {
            return Ok(());
        }
        self.due = now + CHECK_INTERVAL;
        (self.check)(progress)
    }
}
