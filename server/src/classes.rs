//! Classes: labs for a group. An instructor (the operator's admin token, or
//! an instructor token the operator made) creates a class of a template or
//! a scenario with a number of seats; every seat's instances are reserved
//! on the host at once, or the class is refused. Students join with the
//! class's code and a display name and get a session each (coming back
//! with the token their join gave, they get the same one). The instructor
//! follows the roster (`roster.rs`), watches terminals through each
//! session's read-only view, helps in a session when its student agrees
//! (`session::help`), talks to everyone, extends or ends the class.
//!
//! Must not know HTTP (that is `api/classes.rs`); classes use the session
//! model, never the other way round.

mod roster;
pub mod store;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use playground_protocol::{
    ClassInfo, ClassState, CreateClass, HelpGrant, HelpState, JoinClass, JoinInfo, Joined,
    SessionEvent, TemplateInfo,
};
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::session::sessions::{Draw, Session, Sessions};
use crate::session::tutorial;
use store::{hash, ClassStore, StoredClass, StoredInstructor, StoredStudent};

pub use roster::{csv, roster};

/// Most seats a class may have.
const MAX_SEATS: u32 = 500;
/// Longest title, display name and broadcast message, in characters.
const MAX_TITLE: usize = 100;
const MAX_NAME: usize = 40;
const MAX_MESSAGE: usize = 500;
/// Characters of join codes: no 0/O, 1/I/L.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 6;

/// Who asks: the operator, or an instructor (who sees only their classes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    Admin,
    Instructor(String),
}

impl Who {
    fn owner(&self) -> String {
        match self {
            Who::Admin => "admin".into(),
            Who::Instructor(id) => id.clone(),
        }
    }
}

/// What each seat's session starts from.
#[derive(Clone, Debug)]
enum Source {
    Template(TemplateInfo),
    Scenario(String),
}

pub struct Class {
    stored: Mutex<StoredClass>,
    source: Source,
    students: Mutex<Vec<StoredStudent>>,
    /// Bumped on every change a roster shows.
    version: watch::Sender<u64>,
    /// When resource figures last bumped it: they change all the time, so
    /// they move the roster at most every [`STATS_EVERY`].
    stats_bumped: Mutex<std::time::Instant>,
}

/// How often fresh CPU and memory figures alone change the roster.
const STATS_EVERY: Duration = Duration::from_secs(5);

impl Class {
    pub fn id(&self) -> String {
        self.stored.lock().unwrap().id.clone()
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Fresh resource figures: a change, unless one was shown lately.
    fn stats_changed(&self) {
        let mut last = self.stats_bumped.lock().unwrap();
        if last.elapsed() >= STATS_EVERY {
            *last = std::time::Instant::now();
            drop(last);
            self.bump();
        }
    }

    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Wait until the roster changes after `since`, or `within` passes.
    pub async fn changed_after(&self, since: u64, within: Duration) {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|v| *v != since)).await;
    }

    fn state(&self, now: SystemTime) -> ClassState {
        let c = self.stored.lock().unwrap();
        if c.ended {
            ClassState::Ended
        } else if c.starts_at.is_some_and(|t| now < t) {
            ClassState::Scheduled
        } else {
            ClassState::Open
        }
    }

    fn seats_left(&self) -> u32 {
        let seats = self.stored.lock().unwrap().seats;
        seats.saturating_sub(self.students.lock().unwrap().len() as u32)
    }

    pub fn info(&self) -> ClassInfo {
        let state = self.state(SystemTime::now());
        let joined = self.students.lock().unwrap().len() as u32;
        let c = self.stored.lock().unwrap();
        ClassInfo {
            id: c.id.clone(),
            code: c.code.clone(),
            join_path: format!("/join/{}", c.code),
            title: c.title.clone(),
            template: c.template.clone(),
            scenario: c.scenario.clone(),
            seats: c.seats,
            joined,
            state,
            created_at: rfc3339(c.created_at),
            starts_at: c.starts_at.map(rfc3339),
            ends_at: c.ends_at.map(rfc3339),
        }
    }

    fn owned_by(&self, who: &Who) -> bool {
        *who == Who::Admin || self.stored.lock().unwrap().owner == who.owner()
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<SystemTime>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            humantime::parse_rfc3339_weak(v).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{field} must be a time like 2026-12-07T09:00:00Z: {e}"),
                )
            })
        })
        .transpose()
}

fn store_error(e: rusqlite::Error) -> ApiError {
    tracing::error!("class database: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the playground could not record the class (its database failed)",
    )
}

/// Every class, by id.
pub struct Classes {
    sessions: Arc<Sessions>,
    store: ClassStore,
    classes: RwLock<HashMap<String, Arc<Class>>>,
    /// One join at a time: seats are counted exactly.
    joining: tokio::sync::Mutex<()>,
}

impl Classes {
    /// Open the classes of `store`, taking their seats' reservations and
    /// their students' sessions back (after `Sessions::restore`).
    pub fn open(sessions: Arc<Sessions>, store: ClassStore) -> anyhow::Result<Arc<Classes>> {
        let classes = Arc::new(Classes {
            sessions,
            store,
            classes: RwLock::new(HashMap::new()),
            joining: tokio::sync::Mutex::new(()),
        });
        for (stored, students) in classes.store.classes()? {
            let source = match (&stored.template, &stored.scenario) {
                (Some(name), _) => {
                    let policy = classes.sessions.policy();
                    match policy.templates.iter().find(|t| &t.name == name) {
                        Some(t) => Source::Template(t.clone()),
                        None => {
                            tracing::warn!(class = %stored.id, template = %name, "its template is gone; nobody can join it any more");
                            Source::Template(TemplateInfo {
                                name: name.clone(),
                                title: name.clone(),
                                instances: Vec::new(),
                                profile: None,
                            })
                        }
                    }
                }
                (None, Some(id)) => Source::Scenario(id.clone()),
                (None, None) => continue,
            };
            if !stored.ended {
                let free_seats = stored.seats.saturating_sub(students.len() as u32);
                (classes.sessions.capacity()).add_reserved((free_seats * stored.per_seat) as usize);
            }
            let class = Arc::new(Class {
                stored: Mutex::new(stored),
                source,
                students: Mutex::new(students),
                version: watch::channel(1).0,
                stats_bumped: Mutex::new(std::time::Instant::now()),
            });
            for student in class.students.lock().unwrap().iter() {
                if let Ok(session) = classes.sessions.get(&student.session_id) {
                    follow(&class, &session);
                }
            }
            let id = class.id();
            classes.classes.write().unwrap().insert(id, class);
        }
        Ok(classes)
    }

    pub fn store(&self) -> &ClassStore {
        &self.store
    }

    /// A class `who` may run.
    pub fn get(&self, id: &str, who: &Who) -> Result<Arc<Class>, ApiError> {
        let classes = self.classes.read().unwrap();
        classes
            .get(id)
            .filter(|c| c.owned_by(who))
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no class {id}")))
    }

    /// The classes `who` may run, newest first.
    pub fn list(&self, who: &Who) -> Vec<ClassInfo> {
        let classes = self.classes.read().unwrap();
        let mut list: Vec<ClassInfo> = (classes.values())
            .filter(|c| c.owned_by(who))
            .map(|c| c.info())
            .collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        list
    }

    fn by_code(&self, code: &str) -> Result<Arc<Class>, ApiError> {
        let code = code.trim().to_ascii_uppercase();
        let classes = self.classes.read().unwrap();
        (classes.values())
            .find(|c| c.stored.lock().unwrap().code == code)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no class has the code {code}: check it with your instructor"),
                )
            })
    }

    pub fn create(&self, who: &Who, request: CreateClass) -> Result<Arc<Class>, ApiError> {
        let unprocessable = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m);
        let title = request.title.trim().to_string();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(unprocessable(format!(
                "the title must have 1 to {MAX_TITLE} characters"
            )));
        }
        if request.seats == 0 || request.seats > MAX_SEATS {
            return Err(unprocessable(format!(
                "seats must be between 1 and {MAX_SEATS}"
            )));
        }
        let policy = self.sessions.policy();
        let (source, per_seat) = match (&request.template, &request.scenario) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(unprocessable(
                    "give the class a template or a scenario (one of them)".into(),
                ))
            }
            (Some(name), None) => {
                let t = (policy.templates.iter())
                    .find(|t| &t.name == name)
                    .ok_or_else(|| {
                        ApiError::new(StatusCode::NOT_FOUND, format!("no template named {name:?}"))
                    })?;
                (Source::Template(t.clone()), t.instances.len() as u32)
            }
            (None, Some(id)) => {
                let s = policy.scenarios.scenario(id).ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, format!("no scenario named {id:?}"))
                })?;
                (Source::Scenario(id.clone()), s.hostnames.len() as u32)
            }
        };
        let now = SystemTime::now();
        let starts_at = parse_time("starts_at", &request.starts_at)?;
        let ends_at = parse_time("ends_at", &request.ends_at)?;
        if let Some(end) = ends_at {
            if end <= now || starts_at.is_some_and(|s| end <= s) {
                return Err(unprocessable(
                    "ends_at must be later than now and than starts_at".into(),
                ));
            }
        }
        let needed = (request.seats * per_seat) as usize;
        let capacity = self.sessions.capacity();
        if !capacity.reserve(needed) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the playground cannot hold this class now: {} seats of {per_seat} \
                     instance{} need {needed} instances, and {} of {} are free; \
                     make it smaller, or try when other classes have ended",
                    request.seats,
                    if per_seat == 1 { "" } else { "s" },
                    capacity.free(),
                    capacity.limit()
                ),
            ));
        }
        let code = {
            let classes = self.classes.read().unwrap();
            loop {
                let code = new_code();
                if !classes
                    .values()
                    .any(|c| c.stored.lock().unwrap().code == code)
                {
                    break code;
                }
            }
        };
        let stored = StoredClass {
            id: uuid::Uuid::new_v4().to_string(),
            code,
            title,
            template: request.template,
            scenario: request.scenario,
            seats: request.seats,
            per_seat,
            starts_at,
            ends_at,
            ended: false,
            owner: who.owner(),
            created_at: now,
        };
        if let Err(e) = self.store.add_class(&stored) {
            capacity.unreserve(needed);
            return Err(store_error(e));
        }
        let class = Arc::new(Class {
            stored: Mutex::new(stored),
            source,
            students: Mutex::new(Vec::new()),
            version: watch::channel(1).0,
            stats_bumped: Mutex::new(std::time::Instant::now()),
        });
        tracing::info!(class = %class.id(), seats = request.seats, "class created");
        self.classes
            .write()
            .unwrap()
            .insert(class.id(), class.clone());
        Ok(class)
    }

    /// What a student sees before joining.
    pub fn join_info(&self, code: &str) -> Result<JoinInfo, ApiError> {
        let class = self.by_code(code)?;
        let state = class.state(SystemTime::now());
        let seats_left = class.seats_left();
        let c = class.stored.lock().unwrap().clone();
        Ok(JoinInfo {
            title: c.title,
            state,
            seats_left,
            starts_at: c.starts_at.map(rfc3339),
            ends_at: c.ends_at.map(rfc3339),
        })
    }

    /// Take a seat (or, with a token, come back to one).
    pub async fn join(
        &self,
        code: &str,
        request: JoinClass,
        client: Option<IpAddr>,
    ) -> Result<Joined, ApiError> {
        let class = self.by_code(code)?;
        let policy = self.sessions.policy();
        if let Some(token) = request.token.as_deref().filter(|t| !t.is_empty()) {
            let token_hash = hash(token);
            let seat = (class.students.lock().unwrap().iter())
                .find(|s| s.token_hash == token_hash)
                .cloned();
            if let Some(seat) = seat {
                let session = self.sessions.get(&seat.session_id).map_err(|_| {
                    ApiError::new(
                        StatusCode::GONE,
                        "your session of this class has ended; ask your instructor",
                    )
                })?;
                return Ok(Joined {
                    student_id: seat.id,
                    name: seat.name,
                    token: token.to_string(),
                    session: session.info(policy, false).await,
                });
            }
            // An unknown token (another class's, or cleared): join anew.
        }
        let name = request.name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("type your name (1 to {MAX_NAME} characters) to join"),
            ));
        }
        let _one_at_a_time = self.joining.lock().await;
        let now = SystemTime::now();
        match class.state(now) {
            ClassState::Scheduled => {
                let starts = class.stored.lock().unwrap().starts_at.map(rfc3339);
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "this class opens at {} (UTC): come back then",
                        starts.unwrap_or_default()
                    ),
                ));
            }
            ClassState::Ended => {
                return Err(ApiError::new(StatusCode::GONE, "this class has ended"));
            }
            ClassState::Open => {}
        }
        if class.seats_left() == 0 {
            let seats = class.stored.lock().unwrap().seats;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("all {seats} seats of this class are taken; ask your instructor"),
            ));
        }
        let session = match &class.source {
            Source::Template(t) => {
                (self.sessions)
                    .create_from_template(t, client, Draw::Reserved, None)
                    .await?
            }
            Source::Scenario(id) => {
                tutorial::start(&self.sessions, id, client, Draw::Reserved, None).await?
            }
        };
        let token = uuid::Uuid::new_v4().to_string();
        let student = StoredStudent {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            name,
            token_hash: hash(&token),
            session_id: session.id.clone(),
            joined_at: now,
        };
        let class_id = class.id();
        if let Err(e) = self.store.add_student(&class_id, &student) {
            let _ = self.sessions.end(&session.id).await;
            return Err(store_error(e));
        }
        class.students.lock().unwrap().push(student.clone());
        follow(&class, &session);
        class.bump();
        tracing::info!(class = %class_id, student = %student.id, session = %session.id, "student joined");
        Ok(Joined {
            student_id: student.id,
            name: student.name,
            token,
            session: session.info(policy, false).await,
        })
    }

    fn student_session(&self, class: &Class, student: &str) -> Result<Arc<Session>, ApiError> {
        let seat = (class.students.lock().unwrap().iter())
            .find(|s| s.id == student)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no student {student} in this class"),
                )
            })?;
        self.sessions
            .get(&seat.session_id)
            .map_err(|_| ApiError::new(StatusCode::GONE, "this student's session has ended"))
    }

    /// Ask to help a student: their page asks them.
    pub fn request_help(&self, class: &Class, student: &str) -> Result<HelpGrant, ApiError> {
        let session = self.student_session(class, student)?;
        let (state, key) = session.help.request();
        session.publish(SessionEvent::Help { state });
        // Now, not when the event reaches `follow`: the answer names the
        // roster version that shows the request.
        class.bump();
        Ok(HelpGrant {
            state,
            key,
            version: class.version(),
        })
    }

    /// Stop helping (or withdraw the request).
    pub fn end_help(&self, class: &Class, student: &str) -> Result<(), ApiError> {
        let session = self.student_session(class, student)?;
        session.help.end();
        session.publish(SessionEvent::Help {
            state: HelpState::None,
        });
        Ok(())
    }

    /// Show `message` on every student's page.
    pub fn broadcast(&self, class: &Class, message: &str) -> Result<u32, ApiError> {
        let message = message.trim();
        if message.is_empty() || message.chars().count() > MAX_MESSAGE {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the message must have 1 to {MAX_MESSAGE} characters"),
            ));
        }
        let at = rfc3339(SystemTime::now());
        let mut reached = 0;
        for session in self.live_sessions(class) {
            session.publish(SessionEvent::Message {
                text: message.to_string(),
                at: at.clone(),
            });
            reached += 1;
        }
        Ok(reached)
    }

    fn live_sessions(&self, class: &Class) -> Vec<Arc<Session>> {
        let ids: Vec<String> = (class.students.lock().unwrap().iter())
            .map(|s| s.session_id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.sessions.get(id).ok())
            .collect()
    }

    /// Give every student's session more time (as their own Extend would);
    /// the class's end moves to the latest of them.
    pub async fn extend(&self, class: &Class) -> Result<(), ApiError> {
        if class.state(SystemTime::now()) == ClassState::Ended {
            return Err(ApiError::new(StatusCode::GONE, "this class has ended"));
        }
        let mut latest = None;
        for session in self.live_sessions(class) {
            let _ = self.sessions.extend(&session).await;
            latest = latest.max(Some(session.expires_at()));
        }
        let (id, ends_at) = {
            let mut c = class.stored.lock().unwrap();
            if let (Some(end), Some(latest)) = (c.ends_at, latest) {
                c.ends_at = Some(end.max(latest));
            } else if let Some(end) = c.ends_at {
                c.ends_at = Some(end + self.sessions.policy().session_ttl);
            }
            (c.id.clone(), c.ends_at)
        };
        self.store
            .set_class_end(&id, ends_at, false)
            .map_err(store_error)?;
        class.bump();
        Ok(())
    }

    /// End the class: every student's session ends, the free seats'
    /// reservation is given back. The roster stays (for the CSV).
    pub async fn end(&self, class: &Class) -> Result<(), ApiError> {
        let (id, free) = {
            let mut c = class.stored.lock().unwrap();
            if c.ended {
                return Ok(());
            }
            c.ended = true;
            let joined = class.students.lock().unwrap().len() as u32;
            (
                c.id.clone(),
                (c.seats.saturating_sub(joined) * c.per_seat) as usize,
            )
        };
        self.sessions.capacity().unreserve(free);
        self.store
            .set_class_end(&id, class.stored.lock().unwrap().ends_at, true)
            .map_err(store_error)?;
        for session in self.live_sessions(class) {
            let _ = self.sessions.end(&session.id).await;
        }
        class.bump();
        tracing::info!(class = %id, "class ended");
        Ok(())
    }

    /// End the classes whose end time has come.
    pub async fn end_due(&self) {
        let now = SystemTime::now();
        let due: Vec<Arc<Class>> = (self.classes.read().unwrap().values())
            .filter(|c| {
                let c = c.stored.lock().unwrap();
                !c.ended && c.ends_at.is_some_and(|t| t <= now)
            })
            .cloned()
            .collect();
        for class in due {
            if let Err(e) = self.end(&class).await {
                tracing::warn!(class = %class.id(), "ending a class: {}", e.message);
            }
        }
    }

    pub fn add_instructor(&self, name: &str) -> Result<(StoredInstructor, String), ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("an instructor's name has 1 to {MAX_NAME} characters"),
            ));
        }
        let instructor = StoredInstructor {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            name: name.to_string(),
            created_at: SystemTime::now(),
        };
        let token = format!("pgi_{}", uuid::Uuid::new_v4().simple());
        self.store
            .add_instructor(&instructor, &token)
            .map_err(store_error)?;
        Ok((instructor, token))
    }
}

/// Keep a class's roster current with a student's session: progress,
/// instances, help, its end.
fn follow(class: &Arc<Class>, session: &Arc<Session>) {
    let mut events = session.subscribe();
    let class = Arc::downgrade(class);
    tokio::spawn(async move {
        loop {
            let ended = match events.recv().await {
                Ok(SessionEvent::PortsChanged { .. }) => continue,
                Ok(SessionEvent::Stats { .. }) => {
                    let Some(class) = class.upgrade() else { return };
                    class.stats_changed();
                    continue;
                }
                Ok(SessionEvent::Ended) | Err(broadcast::error::RecvError::Closed) => true,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => false,
            };
            let Some(class) = class.upgrade() else { return };
            class.bump();
            if ended {
                return;
            }
        }
    });
}

fn new_code() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    (bytes.iter().take(CODE_LEN))
        .map(|b| CODE_ALPHABET[*b as usize % CODE_ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_short_and_unambiguous() {
        for _ in 0..100 {
            let code = new_code();
            assert_eq!(code.len(), CODE_LEN);
            assert!(code.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
        }
    }
}
