//! Classes: a lab for a group of students, run by an instructor. Each
//! student joins with the class's link and a display name and gets a
//! session of the class's template or scenario; the instructor follows the
//! roster, watches a terminal, helps in one when the student agrees, and
//! talks to everyone.

use serde::{Deserialize, Serialize};

/// Body of `POST /api/admin/instructors`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInstructor {
    pub name: String,
}

/// An instructor: may create classes and sees only their own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstructorInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// The token (`Authorization: Bearer <token>`), shown once, when created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Body of `POST /api/classes`: a template or a scenario, not both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClass {
    pub title: String,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub scenario: Option<String>,
    pub seats: u32,
    /// RFC 3339; joining opens then (now when absent).
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339; the class, and every student's session, ends then
    /// (when absent: the sessions' own time limits).
    #[serde(default)]
    pub ends_at: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassState {
    /// Before `starts_at`: nobody may join yet.
    Scheduled,
    Open,
    /// Ended by the instructor or by `ends_at`; its sessions are gone.
    Ended,
}

/// A class as its instructor sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassInfo {
    pub id: String,
    /// The short code students may type (`/join/<code>`).
    pub code: String,
    /// The page students open: `/join/<code>`.
    pub join_path: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    pub seats: u32,
    /// Seats taken.
    pub joined: u32,
    pub state: ClassState,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// `GET /api/join/{code}`: what a student sees before joining.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinInfo {
    pub title: String,
    pub state: ClassState,
    pub seats_left: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// Body of `POST /api/join/{code}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinClass {
    /// The name the instructor sees (1 to 40 characters).
    #[serde(default)]
    pub name: String,
    /// A token an earlier join gave: come back to that seat and session.
    #[serde(default)]
    pub token: Option<String>,
}

/// Answer of `POST /api/join/{code}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Joined {
    pub student_id: String,
    pub name: String,
    /// Keep it (the page keeps it in the browser) to come back to this seat.
    pub token: String,
    pub session: crate::SessionInfo,
}

/// Whether the instructor may type into a student's terminals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelpState {
    #[default]
    None,
    /// The instructor asked; the student's page asks the student.
    Requested,
    /// The student accepted; it ends when either ends it.
    Active,
}

/// `GET /api/classes/{id}`: the class, its students and its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Roster {
    pub class: ClassInfo,
    /// Changes whenever the roster does: pass it as `?since=` to wait for
    /// the next change.
    pub version: u64,
    /// The steps of the class's scenario, each with how many students have
    /// done it (empty for a template).
    pub steps: Vec<StepProgress>,
    pub students: Vec<StudentRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepProgress {
    pub title: String,
    /// Students who have done this step.
    pub done: u32,
    /// Students on this page now.
    pub on_it: u32,
}

/// One student, as the instructor sees them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudentRow {
    pub id: String,
    pub name: String,
    pub joined_at: String,
    /// False once the student's session has ended.
    pub live: bool,
    /// Capability for the student's session read-only (`/api/view/{viewer_id}/...`).
    #[serde(default)]
    pub viewer_id: String,
    /// The instances, by name.
    #[serde(default)]
    pub instances: Vec<String>,
    /// The tutorial's state, for a scenario's class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tutorial: Option<crate::TutorialState>,
    /// Steps done (checks passed).
    pub steps_done: u32,
    /// The last keystroke in a terminal or check (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_at: Option<String>,
    /// CPU seconds and memory in use, over the student's instances.
    pub cpu_seconds: f64,
    pub memory_bytes: u64,
    pub help: HelpState,
}

/// Body of `POST /api/classes/{id}/broadcast`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Broadcast {
    /// Shown on every student's page (1 to 500 characters).
    pub message: String,
}

/// Answer of `POST /api/classes/{id}/students/{student}/help`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HelpGrant {
    pub state: HelpState,
    /// Capability for typing into the student's terminals while help is
    /// active: `/api/help/{key}/instances/{name}/terminal`. Until the
    /// student accepts, and after help ends, it is refused.
    pub key: String,
    /// The first roster version that shows this request: a roster of an
    /// older version (one already on its way) does not know of it yet.
    #[serde(default)]
    pub version: u64,
}

/// Body of `POST /api/sessions/{sid}/help`: the student's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpAnswer {
    pub accept: bool,
}
