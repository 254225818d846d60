//! Tutorials: scenarios in Killercoda's format (`--scenarios DIR`), a
//! session's progress through one, and the results of its checks.
//!
//! A scenario's pages are one list: the intro (when it has one), the steps,
//! the finish (when it has one). A session's progress names pages by their
//! index in that list.

use serde::{Deserialize, Serialize};

/// One entry of `GET /api/scenarios`: a scenario, or a course grouping
/// scenarios (and maybe other courses), in the order the landing page lists them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CatalogEntry {
    Scenario(ScenarioSummary),
    Course {
        id: String,
        title: String,
        #[serde(default)]
        description: String,
        entries: Vec<CatalogEntry>,
    },
}

/// What a list shows of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    /// Its folder under the scenarios folder (`/`-separated); used in
    /// `CreateSession.scenario`, `GET /api/scenarios/{id}` and the page's
    /// `/tutorials/{id}`.
    pub id: String,
    pub title: String,
    /// Plain text.
    #[serde(default)]
    pub description: String,
    /// The instances a session of it starts, by hostname; the first is
    /// Killercoda's `host01`, where scripts run.
    pub hosts: Vec<String>,
    /// The instance profile (`nesting` or `strict`).
    pub profile: String,
    /// How many steps (intro and finish not counted).
    pub steps: u32,
}

/// `GET /api/scenarios/{id}`: a whole scenario, as the tutorial page shows it.
/// Scripts stay on the server; a page only says whether it has a check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    #[serde(flatten)]
    pub summary: ScenarioSummary,
    /// Killercoda's `interface.layout` as written (`terminal` when absent).
    #[serde(default)]
    pub layout: String,
    pub pages: Vec<TutorialPage>,
}

/// The intro, a step or the finish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TutorialPage {
    pub kind: PageKind,
    /// The page's own title, or one made up (`Step 2`).
    pub title: String,
    /// Sanitised HTML. Clickable parts, by class: `code.exec` and `pre.exec`
    /// type their text into the terminal and run it (with `interrupt`,
    /// Ctrl-C first); `.copy` copies it; `a.traffic` with `data-host="N"`
    /// (Nth host, from 1) and `data-port` opens that port; `a.traffic-selector`
    /// lets the learner pick a port.
    pub html: String,
    /// Whether the page has a verify script: Check runs it, and the
    /// server runs it by itself every few seconds while the page is open.
    #[serde(default)]
    pub has_check: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    Intro,
    Step,
    Finish,
}

/// A session's progress through its scenario (`SessionInfo.tutorial`, the
/// `tutorial` session event, the answers of the tutorial endpoints).
/// Stored with the session: a reload or a server restart keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TutorialState {
    /// The scenario's id.
    pub scenario: String,
    /// The page shown, an index into `ScenarioInfo.pages`.
    pub page: u32,
    /// The furthest page the learner has unlocked; every page before it is
    /// done, and any page up to it may be opened again.
    pub reached: u32,
    /// True once the last step is done.
    pub finished: bool,
    /// The newest check, when there is one: of the page shown, or (when it
    /// passed) of the page before, which it moved on from. Opening a page
    /// clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<CheckResult>,
}

/// What a verify script said (`POST /api/sessions/{sid}/tutorial/check`,
/// and the checks the server runs by itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The page checked.
    pub page: u32,
    /// Exit status 0: the step is done and the next page is unlocked and shown.
    pub passed: bool,
    /// The script's output (standard output, then standard error): the hint.
    #[serde(default)]
    pub output: String,
    /// The script ran past its time limit and was killed.
    #[serde(default)]
    pub timed_out: bool,
    /// The server ran it by itself, not the Check button.
    #[serde(default)]
    pub automatic: bool,
    /// When it finished (RFC 3339).
    pub at: String,
}

/// Body of `POST /api/sessions/{sid}/tutorial/page`: open a page again
/// (any page up to `TutorialState.reached`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenPage {
    pub page: u32,
}

/// One run of a page's background or foreground script, kept for the
/// scenario's author (`GET /api/sessions/{sid}/tutorial/scripts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptRun {
    pub page: u32,
    pub kind: ScriptKind,
    /// The instance it ran on.
    pub host: String,
    /// Absent while it runs, and for foreground scripts (they run in the terminal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Standard output then standard error, the last 64 KiB (background only).
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub timed_out: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    Background,
    Foreground,
}
