//! Smooth time dependence of the system Hamiltonian, H(t) = H_0 + sum_k f_k(t) V_k.
//!
//! H_0 is the Hamiltonian the integrator treats exactly (its eigenbasis and interaction
//! picture, `model.rs`); each drive term enters the forcing as -i f_k(t) [V_k, rho_n] on every
//! ADO, with V_k carried into the interaction picture like the coupling operators, so the step
//! control sees it as it sees the bath couplings. A profile f_k is a named ramp, evaluated here,
//! or any function of time given by the caller (the binding wraps a Python callable).

use super::error::{HeomError, HeomResult};
use super::linalg::C64;
use std::f64::consts::FRAC_PI_2;
use std::fmt;
use std::sync::Arc;

/// The shape s(x) of a ramp on x in [0, 1], s(0) = 0, s(1) = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RampShape {
    /// s(x) = x: a constant rate, with kinks at both ends.
    Linear,
    /// s(x) = sin^2(pi x / 2): starts and ends with zero slope.
    Sin2,
}

impl RampShape {
    /// The shape called `name` ("linear" or "sin2").
    pub fn parse(name: &str) -> HeomResult<Self> {
        match name {
            "linear" => Ok(RampShape::Linear),
            "sin2" => Ok(RampShape::Sin2),
            other => Err(HeomError::invalid(
                "ramp",
                format!("ramp = {other:?} must be 'linear' or 'sin2'"),
            )),
        }
    }

    fn value(self, x: f64) -> f64 {
        match self {
            RampShape::Linear => x,
            RampShape::Sin2 => (FRAC_PI_2 * x).sin().powi(2),
        }
    }

    fn slope(self, x: f64) -> f64 {
        match self {
            RampShape::Linear => 1.0,
            RampShape::Sin2 => FRAC_PI_2 * (std::f64::consts::PI * x).sin(),
        }
    }
}

/// f(t) = from + (to - from) s((t - start) / duration), constant outside the ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub shape: RampShape,
    pub start: f64,
    pub duration: f64,
    pub from: f64,
    pub to: f64,
}

impl Ramp {
    /// A ramp whose times and values are finite and whose duration is positive.
    pub fn new(
        shape: RampShape,
        start: f64,
        duration: f64,
        from: f64,
        to: f64,
    ) -> HeomResult<Self> {
        for (name, v) in [("start", start), ("from", from), ("to", to)] {
            if !v.is_finite() {
                return Err(HeomError::invalid(
                    name,
                    format!("{name} = {v} is not finite"),
                ));
            }
        }
        if !(duration.is_finite() && duration > 0.0) {
            return Err(HeomError::invalid(
                "ramp_time",
                format!("ramp_time = {duration} is outside the allowed range (0, inf)"),
            ));
        }
        Ok(Ramp {
            shape,
            start,
            duration,
            from,
            to,
        })
    }

    fn progress(&self, t: f64) -> f64 {
        ((t - self.start) / self.duration).clamp(0.0, 1.0)
    }

    /// f(t).
    pub fn value(&self, t: f64) -> f64 {
        self.from + (self.to - self.from) * self.shape.value(self.progress(t))
    }

    /// f'(t) (zero outside the ramp).
    pub fn derivative(&self, t: f64) -> f64 {
        let x = (t - self.start) / self.duration;
        if !(0.0..=1.0).contains(&x) {
            return 0.0;
        }
        (self.to - self.from) * self.shape.slope(x) / self.duration
    }
}

/// A profile given by the caller: f(t), or a message saying why it has no value.
pub type Callback = Arc<dyn Fn(f64) -> Result<f64, String> + Send + Sync>;

/// The time dependence f_k(t) of one drive term.
#[derive(Clone)]
pub enum Profile {
    Ramp(Ramp),
    Callback(Callback),
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Profile::Ramp(r) => write!(f, "Ramp({r:?})"),
            Profile::Callback(_) => write!(f, "Callback"),
        }
    }
}

impl Profile {
    /// f(t), an error naming the time when the callback fails or returns a non-finite value.
    pub fn value(&self, t: f64) -> HeomResult<f64> {
        let v = match self {
            Profile::Ramp(r) => Ok(r.value(t)),
            Profile::Callback(f) => f(t),
        };
        match v {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(v) => Err(HeomError::Drive {
                time: t,
                message: format!("the drive's profile returned {v}"),
            }),
            Err(message) => Err(HeomError::Drive { time: t, message }),
        }
    }
}

/// One term f(t) V of the Hamiltonian (V row-major d x d, computational basis, Hermitian).
#[derive(Debug, Clone)]
pub struct DriveTerm {
    pub v: Vec<C64>,
    pub profile: Profile,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_start_and_end_where_they_should_and_their_slope_is_the_derivative() {
        for shape in [RampShape::Linear, RampShape::Sin2] {
            let r = Ramp::new(shape, 2.0, 0.5, 1.0, -0.5).unwrap();
            assert_eq!(r.value(1.0), 1.0);
            assert_eq!(r.value(2.0), 1.0);
            assert!((r.value(2.5) + 0.5).abs() < 1e-15);
            assert!((r.value(9.0) + 0.5).abs() < 1e-15);
            assert!((r.value(2.25) - 0.25).abs() < 1e-15); // both shapes pass the middle at 1/2
            assert_eq!(r.derivative(1.9), 0.0);
            for t in [2.05, 2.2, 2.31, 2.45] {
                let h = 1e-6;
                let numeric = (r.value(t + h) - r.value(t - h)) / (2.0 * h);
                assert!((r.derivative(t) - numeric).abs() < 1e-8, "{shape:?} at {t}");
            }
        }
        let s = Ramp::new(RampShape::Sin2, 0.0, 1.0, 0.0, 1.0).unwrap();
        assert_eq!(s.derivative(0.0), 0.0);
        assert!(s.derivative(1.0).abs() < 1e-15);
        assert!(Ramp::new(RampShape::Linear, 0.0, 0.0, 0.0, 1.0).is_err());
        assert!(RampShape::parse("cubic").is_err());
    }

    #[test]
    fn a_failing_or_non_finite_profile_is_an_error_naming_the_time() {
        let bad: Callback = Arc::new(|t| {
            if t < 1.0 {
                Ok(f64::NAN)
            } else {
                Err("no".into())
            }
        });
        let p = Profile::Callback(bad);
        assert!(matches!(p.value(0.5), Err(HeomError::Drive { time, .. }) if time == 0.5));
        let err = p.value(2.0).unwrap_err().to_string();
        assert!(err.contains("t = 2") && err.contains("no"), "{err}");
    }
}
