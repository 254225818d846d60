//! The CPU figure of an instance. The server reports CPU seconds used;
//! the page turns two readings into a percentage of one core.

/// CPU use of one instance, from the change in CPU time between two samples.
#[derive(Default)]
pub struct CpuMeter {
    /// CPU seconds and `Date.now()` of the baseline sample.
    last: Option<(f64, f64)>,
    /// Percent of one core over the last interval.
    pub percent: Option<f64>,
}

impl CpuMeter {
    /// Take a new reading of the instance's total CPU seconds at `now_ms`.
    pub fn sample(&mut self, cpu_seconds: f64, now_ms: f64) {
        match self.last {
            Some((cpu, at)) => {
                let elapsed = (now_ms - at) / 1000.0;
                if cpu_seconds < cpu {
                    // A counter that went back: start over.
                    self.last = Some((cpu_seconds, now_ms));
                } else if elapsed >= 0.5 {
                    // Shorter gaps (a snapshot right after a stats event)
                    // keep the older baseline.
                    self.percent = Some((cpu_seconds - cpu) / elapsed * 100.0);
                    self.last = Some((cpu_seconds, now_ms));
                }
            }
            None => self.last = Some((cpu_seconds, now_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_from_two_samples() {
        let mut m = CpuMeter::default();
        m.sample(1.0, 0.0);
        assert_eq!(m.percent, None);
        m.sample(1.5, 2_000.0);
        assert_eq!(m.percent, Some(25.0));
        // Too close to the last sample: keep the baseline.
        m.sample(1.6, 2_100.0);
        assert_eq!(m.percent, Some(25.0));
    }
}
