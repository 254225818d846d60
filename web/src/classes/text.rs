//! Pure text and number helpers of the class pages (tested natively).

use playground_protocol::{ClassState, StepProgress, TutorialState};

/// "just now", "40 s ago", "2 min ago", "3 h ago" for `secs` seconds ago.
pub fn ago(secs: f64) -> String {
    let secs = secs.max(0.0) as u64;
    match secs {
        0..=9 => "just now".to_owned(),
        10..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

/// CPU use in percent of one core between two samples of (CPU seconds,
/// milliseconds since the epoch); `None` without time between them or when
/// the counter went back (instances removed).
pub fn cpu_percent(before: (f64, f64), after: (f64, f64)) -> Option<f64> {
    let elapsed = (after.1 - before.1) / 1000.0;
    let used = after.0 - before.0;
    (elapsed >= 0.5 && used >= 0.0).then(|| used / elapsed * 100.0)
}

/// `part` of `whole` in percent, for a bar's width (0 with nobody).
pub fn percent_of(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (f64::from(part) / f64::from(whole) * 100.0).min(100.0)
    }
}

/// The class's state in words.
pub fn state_label(state: ClassState) -> &'static str {
    match state {
        ClassState::Scheduled => "Scheduled",
        ClassState::Open => "Open",
        ClassState::Ended => "Ended",
    }
}

/// Where a student is in the scenario: the introduction, a step with its
/// title, or finished; "—" for a template's class.
pub fn current_step(tutorial: Option<&TutorialState>, steps: &[StepProgress]) -> String {
    let Some(t) = tutorial else {
        return "—".to_owned();
    };
    if t.finished {
        return "Finished".to_owned();
    }
    match t.page {
        0 => "Introduction".to_owned(),
        p => match steps.get(p as usize - 1) {
            Some(step) => format!("{p}. {}", step.title),
            None => "Finish".to_owned(),
        },
    }
}

/// The key under which the browser keeps the join token of class `code`.
pub fn token_key(code: &str) -> String {
    format!("playground.class.{}", code.trim().to_uppercase())
}

/// A code as typed on the landing page: its letters and digits only.
pub fn clean_code(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_like_a_person() {
        assert_eq!(ago(3.0), "just now");
        assert_eq!(ago(-5.0), "just now");
        assert_eq!(ago(42.0), "42 s ago");
        assert_eq!(ago(150.0), "2 min ago");
        assert_eq!(ago(7300.0), "2 h ago");
    }

    #[test]
    fn cpu_is_a_rate_between_samples() {
        assert_eq!(cpu_percent((1.0, 0.0), (2.0, 2000.0)), Some(50.0));
        assert_eq!(cpu_percent((1.0, 0.0), (2.0, 100.0)), None);
        assert_eq!(cpu_percent((5.0, 0.0), (2.0, 2000.0)), None);
    }

    #[test]
    fn bars_never_overflow() {
        assert_eq!(percent_of(1, 4), 25.0);
        assert_eq!(percent_of(3, 0), 0.0);
        assert_eq!(percent_of(5, 4), 100.0);
    }

    #[test]
    fn steps_by_page() {
        let steps = vec![
            StepProgress {
                title: "Make a file".into(),
                done: 0,
                on_it: 0,
            },
            StepProgress {
                title: "Make another".into(),
                done: 0,
                on_it: 0,
            },
        ];
        let state = |page, finished| TutorialState {
            scenario: "lab".into(),
            page,
            reached: page,
            finished,
            last_check: None,
        };
        assert_eq!(current_step(None, &steps), "—");
        assert_eq!(current_step(Some(&state(0, false)), &steps), "Introduction");
        assert_eq!(
            current_step(Some(&state(2, false)), &steps),
            "2. Make another"
        );
        assert_eq!(current_step(Some(&state(3, false)), &steps), "Finish");
        assert_eq!(current_step(Some(&state(3, true)), &steps), "Finished");
    }

    #[test]
    fn codes() {
        assert_eq!(clean_code(" ab-12 "), "ab12");
        assert_eq!(token_key("ab12"), "playground.class.AB12");
    }
}
