//! A class's roster as its instructor sees it: each student's place in the
//! scenario, steps done, last keystroke, resource use and help, the
//! class-wide progress per step; and the same as CSV.

use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use playground_protocol::{PageKind, Roster, StepProgress, StudentRow, TutorialState};

use super::{rfc3339, Class, Classes, Source};
use crate::session::progress;

/// The steps of the class's scenario, as (page index, title).
fn steps(classes: &Classes, class: &Class) -> Vec<(u32, String)> {
    let Source::Scenario(id) = &class.source else {
        return Vec::new();
    };
    let policy = classes.sessions.policy();
    let Some(scenario) = policy.scenarios.scenario(id) else {
        return Vec::new();
    };
    (progress::page_infos(scenario).into_iter().enumerate())
        .filter(|(_, p)| p.kind == PageKind::Step)
        .map(|(i, p)| (i as u32, p.title))
        .collect()
}

/// Steps done: every step before the furthest page reached, all of them
/// once finished.
fn steps_done(steps: &[(u32, String)], tutorial: Option<&TutorialState>) -> u32 {
    match tutorial {
        None => 0,
        Some(t) if t.finished => steps.len() as u32,
        Some(t) => steps.iter().filter(|(page, _)| *page < t.reached).count() as u32,
    }
}

pub async fn roster(classes: &Classes, class: &Class) -> Roster {
    let version = class.version();
    let steps = steps(classes, class);
    let students = class.students.lock().unwrap().clone();
    let policy = classes.sessions.policy();
    let mut rows = Vec::with_capacity(students.len());
    for student in students {
        let mut row = StudentRow {
            id: student.id.clone(),
            name: student.name.clone(),
            joined_at: rfc3339(student.joined_at),
            live: false,
            viewer_id: String::new(),
            instances: Vec::new(),
            tutorial: None,
            steps_done: 0,
            last_active_at: None,
            cpu_seconds: 0.0,
            memory_bytes: 0,
            help: Default::default(),
        };
        if let Ok(session) = classes.sessions.get(&student.session_id) {
            row.live = true;
            row.viewer_id = session.viewer_id.clone();
            row.tutorial = session.tutorial.as_ref().map(|t| t.state());
            row.help = session.help.state();
            let last = session.last_input.load(Ordering::Relaxed);
            row.last_active_at =
                (last > 0).then(|| rfc3339(UNIX_EPOCH + Duration::from_secs(last)));
            for entry in session.instances().await {
                row.instances.push(entry.name.clone());
                if entry.instance.is_running() {
                    let stats = entry.stats(&policy.limits);
                    row.cpu_seconds += stats.cpu_seconds;
                    row.memory_bytes += stats.memory_bytes;
                }
            }
        }
        row.steps_done = steps_done(&steps, row.tutorial.as_ref());
        rows.push(row);
    }
    let progress = (steps.iter().enumerate())
        .map(|(i, (page, title))| StepProgress {
            title: title.clone(),
            done: rows.iter().filter(|r| r.steps_done as usize > i).count() as u32,
            on_it: (rows.iter())
                .filter(|r| r.live)
                .filter(|r| (r.tutorial.as_ref()).is_some_and(|t| t.page == *page && !t.finished))
                .count() as u32,
        })
        .collect();
    Roster {
        class: class.info(),
        version,
        steps: progress,
        students: rows,
    }
}

/// The roster as CSV: a row per student.
pub fn csv(roster: &Roster) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "name",
        "joined_at",
        "session_live",
        "steps_done",
        "steps_total",
        "finished",
        "current_step",
        "last_active_at",
    ])?;
    let total = roster.steps.len();
    for row in &roster.students {
        let current = row.tutorial.as_ref().map(|t| {
            if t.finished {
                "finished".to_string()
            } else {
                // Pages before the first step are the intro.
                let steps_before = (row.steps_done as usize).min(total);
                format!("page {} (step {} of {total})", t.page, steps_before + 1)
            }
        });
        out.write_record([
            row.name.as_str(),
            row.joined_at.as_str(),
            if row.live { "yes" } else { "no" },
            &row.steps_done.to_string(),
            &total.to_string(),
            if row.tutorial.as_ref().is_some_and(|t| t.finished) {
                "yes"
            } else {
                "no"
            },
            current.as_deref().unwrap_or(""),
            row.last_active_at.as_deref().unwrap_or(""),
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(page: u32, reached: u32, finished: bool) -> TutorialState {
        TutorialState {
            scenario: "s".into(),
            page,
            reached,
            finished,
            last_check: None,
        }
    }

    #[test]
    fn steps_done_count_what_lies_behind() {
        // Intro (0), three steps (1-3), finish (4).
        let steps: Vec<(u32, String)> = (1..=3).map(|i| (i, format!("Step {i}"))).collect();
        assert_eq!(steps_done(&steps, None), 0);
        assert_eq!(steps_done(&steps, Some(&state(0, 0, false))), 0);
        assert_eq!(steps_done(&steps, Some(&state(1, 1, false))), 0);
        assert_eq!(
            steps_done(&steps, Some(&state(1, 3, false))),
            2,
            "back on step 1"
        );
        assert_eq!(steps_done(&steps, Some(&state(4, 4, true))), 3);
    }

    #[test]
    fn names_with_commas_and_quotes_stay_one_field() {
        let roster = Roster {
            class: playground_protocol::ClassInfo {
                id: "c".into(),
                code: "ABC234".into(),
                join_path: "/join/ABC234".into(),
                title: "t".into(),
                template: None,
                scenario: Some("s".into()),
                seats: 2,
                joined: 1,
                state: playground_protocol::ClassState::Open,
                created_at: "2026-12-07T00:00:00Z".into(),
                starts_at: None,
                ends_at: None,
            },
            version: 1,
            steps: vec![StepProgress {
                title: "one".into(),
                done: 0,
                on_it: 1,
            }],
            students: vec![StudentRow {
                id: "x".into(),
                name: "Doe, \"Jo\"".into(),
                joined_at: "2026-12-07T00:00:01Z".into(),
                live: true,
                viewer_id: String::new(),
                instances: vec![],
                tutorial: Some(state(1, 1, false)),
                steps_done: 0,
                last_active_at: None,
                cpu_seconds: 0.0,
                memory_bytes: 0,
                help: Default::default(),
            }],
        };
        let text = String::from_utf8(csv(&roster).unwrap()).unwrap();
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "\"Doe, \"\"Jo\"\"\",2026-12-07T00:00:01Z,yes,0,1,no,page 1 (step 1 of 1),"
        );
    }
}
