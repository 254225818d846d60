//! A session's tutorial as data: its scenario, the page shown and the
//! furthest reached, the newest check, and the scripts' runs kept for the
//! author. What happens in the instances is `tutorial.rs`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex as StdMutex};

use playground_protocol::{CheckResult, PageKind, ScriptRun, TutorialPage, TutorialState};

use crate::session::scenarios::{Page, Scenario};
use crate::session::store::StoredTutorial;

/// Script runs kept per session for the author.
const SCRIPT_RUNS: usize = 50;

/// A session's tutorial: its scenario and the learner's progress.
pub struct Tutorial {
    pub scenario: Arc<Scenario>,
    pub(super) progress: StdMutex<Progress>,
    /// One verify script at a time: Check and the watcher take turns.
    pub(super) checking: tokio::sync::Mutex<()>,
    /// The newest script runs, each with a number to find it again.
    scripts: StdMutex<ScriptLog>,
}

#[derive(Default)]
struct ScriptLog {
    next: u64,
    runs: VecDeque<(u64, ScriptRun)>,
}

pub(super) struct Progress {
    pub(super) page: u32,
    pub(super) reached: u32,
    pub(super) finished: bool,
    pub(super) last_check: Option<CheckResult>,
}

/// The pages in order: the intro, the steps, the finish.
pub fn pages(scenario: &Scenario) -> Vec<(PageKind, &Page)> {
    let intro = scenario.intro.iter().map(|p| (PageKind::Intro, p));
    let steps = scenario.steps.iter().map(|p| (PageKind::Step, p));
    let finish = scenario.finish.iter().map(|p| (PageKind::Finish, p));
    intro.chain(steps).chain(finish).collect()
}

/// The pages as the tutorial page shows them (titles made up where a page
/// has none; scripts stay here).
pub fn page_infos(scenario: &Scenario) -> Vec<TutorialPage> {
    let mut step = 0;
    pages(scenario)
        .into_iter()
        .map(|(kind, page)| {
            let made_up = match kind {
                PageKind::Intro => scenario.title.clone(),
                PageKind::Step => {
                    step += 1;
                    format!("Step {step}")
                }
                PageKind::Finish => "Finished".to_string(),
            };
            TutorialPage {
                kind,
                title: page.title.clone().unwrap_or(made_up),
                html: page.html.clone(),
                has_check: page.verify.is_some(),
            }
        })
        .collect()
}

impl Tutorial {
    /// A tutorial at its first page, or where `stored` says it was.
    pub fn new(scenario: Arc<Scenario>, stored: Option<&StoredTutorial>) -> Tutorial {
        let last = pages(&scenario).len().saturating_sub(1) as u32;
        let (page, reached, finished) = stored
            .map(|s| (s.page.min(last), s.reached.min(last), s.finished))
            .unwrap_or((0, 0, false));
        Tutorial {
            scenario,
            progress: StdMutex::new(Progress {
                page: page.min(reached),
                reached,
                finished,
                last_check: None,
            }),
            checking: tokio::sync::Mutex::new(()),
            scripts: StdMutex::new(ScriptLog::default()),
        }
    }

    pub fn state(&self) -> TutorialState {
        let p = self.progress.lock().unwrap();
        TutorialState {
            scenario: self.scenario.id.clone(),
            page: p.page,
            reached: p.reached,
            finished: p.finished,
            last_check: p.last_check.clone(),
        }
    }

    pub fn stored(&self) -> StoredTutorial {
        let p = self.progress.lock().unwrap();
        StoredTutorial {
            scenario: self.scenario.id.clone(),
            page: p.page,
            reached: p.reached,
            finished: p.finished,
        }
    }

    pub fn scripts(&self) -> Vec<ScriptRun> {
        let log = self.scripts.lock().unwrap();
        log.runs.iter().map(|(_, run)| run.clone()).collect()
    }

    /// Keep a run (the oldest goes past [`SCRIPT_RUNS`]); its number.
    pub(super) fn record(&self, run: ScriptRun) -> u64 {
        let mut log = self.scripts.lock().unwrap();
        if log.runs.len() >= SCRIPT_RUNS {
            log.runs.pop_front();
        }
        let id = log.next;
        log.next += 1;
        log.runs.push_back((id, run));
        id
    }

    /// Fill in a run that has ended, unless it is gone already.
    pub(super) fn ended(&self, id: u64, fill: impl FnOnce(&mut ScriptRun)) {
        let mut log = self.scripts.lock().unwrap();
        if let Some((_, run)) = log.runs.iter_mut().find(|(n, _)| *n == id) {
            fill(run);
        }
    }

    /// The index of the last step (the page whose passing finishes the
    /// tutorial).
    pub(super) fn last_step(&self) -> Option<u32> {
        let pages = pages(&self.scenario);
        pages
            .iter()
            .rposition(|(kind, _)| *kind == PageKind::Step)
            .map(|i| i as u32)
    }
}
