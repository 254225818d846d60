//! What of classes outlives a restart: instructors (their tokens hashed),
//! classes and their students' seats, in the data directory's SQLite
//! database beside the sessions (a connection of its own).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

pub type Result<T> = std::result::Result<T, rusqlite::Error>;

#[derive(Clone, Debug, PartialEq)]
pub struct StoredInstructor {
    pub id: String,
    pub name: String,
    pub created_at: SystemTime,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredClass {
    pub id: String,
    pub code: String,
    pub title: String,
    pub template: Option<String>,
    pub scenario: Option<String>,
    pub seats: u32,
    /// Instances each seat's session starts with.
    pub per_seat: u32,
    pub starts_at: Option<SystemTime>,
    pub ends_at: Option<SystemTime>,
    pub ended: bool,
    /// `admin`, or the instructor's id.
    pub owner: String,
    pub created_at: SystemTime,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredStudent {
    pub id: String,
    pub name: String,
    /// SHA-256 of the token the student comes back with.
    pub token_hash: String,
    pub session_id: String,
    pub joined_at: SystemTime,
}

pub struct ClassStore {
    db: Mutex<Connection>,
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64
}

fn time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

/// A secret as stored: its SHA-256, in hex. Tokens are random UUIDs, so a
/// plain hash is enough (nothing to guess from a dictionary).
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ClassStore {
    pub fn open(path: &Path) -> Result<ClassStore> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.busy_timeout(Duration::from_secs(5))?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS instructors (
                 id TEXT PRIMARY KEY,
                 name TEXT NOT NULL,
                 token_hash TEXT NOT NULL UNIQUE,
                 created_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS classes (
                 id TEXT PRIMARY KEY,
                 code TEXT NOT NULL UNIQUE,
                 title TEXT NOT NULL,
                 template TEXT,
                 scenario TEXT,
                 seats INTEGER NOT NULL,
                 per_seat INTEGER NOT NULL,
                 starts_at INTEGER,
                 ends_at INTEGER,
                 ended INTEGER NOT NULL DEFAULT 0,
                 owner TEXT NOT NULL,
                 created_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS students (
                 class_id TEXT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                 id TEXT NOT NULL,
                 name TEXT NOT NULL,
                 token_hash TEXT NOT NULL,
                 session_id TEXT NOT NULL,
                 joined_at INTEGER NOT NULL,
                 PRIMARY KEY (class_id, id)
             );",
        )?;
        Ok(ClassStore { db: Mutex::new(db) })
    }

    pub fn add_instructor(&self, instructor: &StoredInstructor, token: &str) -> Result<()> {
        self.db.lock().unwrap().execute(
            "INSERT INTO instructors (id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                instructor.id,
                instructor.name,
                hash(token),
                secs(instructor.created_at)
            ],
        )?;
        Ok(())
    }

    /// Whether one was removed.
    pub fn remove_instructor(&self, id: &str) -> Result<bool> {
        let n = self
            .db
            .lock()
            .unwrap()
            .execute("DELETE FROM instructors WHERE id = ?1", params![id])?;
        Ok(n > 0)
    }

    pub fn instructors(&self) -> Result<Vec<StoredInstructor>> {
        let db = self.db.lock().unwrap();
        let mut query =
            db.prepare("SELECT id, name, created_at FROM instructors ORDER BY created_at")?;
        let rows = query.query_map([], |row| {
            Ok(StoredInstructor {
                id: row.get(0)?,
                name: row.get(1)?,
                created_at: time(row.get(2)?),
            })
        })?;
        rows.collect()
    }

    /// The instructor a token belongs to.
    pub fn instructor_by_token(&self, token: &str) -> Result<Option<String>> {
        self.db
            .lock()
            .unwrap()
            .query_row(
                "SELECT id FROM instructors WHERE token_hash = ?1",
                params![hash(token)],
                |row| row.get(0),
            )
            .optional()
    }

    pub fn add_class(&self, class: &StoredClass) -> Result<()> {
        self.db.lock().unwrap().execute(
            "INSERT INTO classes (id, code, title, template, scenario, seats, per_seat, starts_at,
                 ends_at, ended, owner, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                class.id,
                class.code,
                class.title,
                class.template,
                class.scenario,
                class.seats,
                class.per_seat,
                class.starts_at.map(secs),
                class.ends_at.map(secs),
                class.ended,
                class.owner,
                secs(class.created_at)
            ],
        )?;
        Ok(())
    }

    pub fn set_class_end(&self, id: &str, ends_at: Option<SystemTime>, ended: bool) -> Result<()> {
        self.db.lock().unwrap().execute(
            "UPDATE classes SET ends_at = ?2, ended = ?3 WHERE id = ?1",
            params![id, ends_at.map(secs), ended],
        )?;
        Ok(())
    }

    pub fn add_student(&self, class_id: &str, student: &StoredStudent) -> Result<()> {
        self.db.lock().unwrap().execute(
            "INSERT INTO students (class_id, id, name, token_hash, session_id, joined_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                class_id,
                student.id,
                student.name,
                student.token_hash,
                student.session_id,
                secs(student.joined_at)
            ],
        )?;
        Ok(())
    }

    /// Every class with its students, oldest first.
    pub fn classes(&self) -> Result<Vec<(StoredClass, Vec<StoredStudent>)>> {
        let db = self.db.lock().unwrap();
        let mut query = db.prepare(
            "SELECT id, code, title, template, scenario, seats, per_seat, starts_at, ends_at,
                 ended, owner, created_at
             FROM classes ORDER BY created_at, id",
        )?;
        let classes: Vec<StoredClass> = query
            .query_map([], |row| {
                Ok(StoredClass {
                    id: row.get(0)?,
                    code: row.get(1)?,
                    title: row.get(2)?,
                    template: row.get(3)?,
                    scenario: row.get(4)?,
                    seats: row.get(5)?,
                    per_seat: row.get(6)?,
                    starts_at: row.get::<_, Option<i64>>(7)?.map(time),
                    ends_at: row.get::<_, Option<i64>>(8)?.map(time),
                    ended: row.get(9)?,
                    owner: row.get(10)?,
                    created_at: time(row.get(11)?),
                })
            })?
            .collect::<Result<_>>()?;
        let mut students = db.prepare(
            "SELECT id, name, token_hash, session_id, joined_at FROM students
             WHERE class_id = ?1 ORDER BY joined_at, rowid",
        )?;
        let mut all = Vec::new();
        for class in classes {
            let seated = students
                .query_map(params![class.id], |row| {
                    Ok(StoredStudent {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        token_hash: row.get(2)?,
                        session_id: row.get(3)?,
                        joined_at: time(row.get(4)?),
                    })
                })?
                .collect::<Result<_>>()?;
            all.push((class, seated));
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_students_and_instructors_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let now = time(secs(SystemTime::now()));
        let class = StoredClass {
            id: "c1".into(),
            code: "ABC234".into(),
            title: "Docker lab".into(),
            template: None,
            scenario: Some("docker-basics".into()),
            seats: 30,
            per_seat: 1,
            starts_at: None,
            ends_at: Some(now + Duration::from_secs(3600)),
            ended: false,
            owner: "i1".into(),
            created_at: now,
        };
        let student = StoredStudent {
            id: "s1".into(),
            name: "Ada".into(),
            token_hash: hash("secret"),
            session_id: "sess".into(),
            joined_at: now,
        };
        {
            let store = ClassStore::open(&path).unwrap();
            let instructor = StoredInstructor {
                id: "i1".into(),
                name: "Grace".into(),
                created_at: now,
            };
            store.add_instructor(&instructor, "tok").unwrap();
            store.add_class(&class).unwrap();
            store.add_student("c1", &student).unwrap();
            store.set_class_end("c1", None, true).unwrap();
        }
        let store = ClassStore::open(&path).unwrap();
        assert_eq!(
            store.instructor_by_token("tok").unwrap().as_deref(),
            Some("i1")
        );
        assert_eq!(store.instructor_by_token("nope").unwrap(), None);
        let all = store.classes().unwrap();
        let (stored, students) = &all[0];
        assert!(stored.ended && stored.ends_at.is_none());
        assert_eq!(stored.code, class.code);
        assert_eq!(students, &vec![student]);
        assert!(store.remove_instructor("i1").unwrap());
        assert!(store.instructors().unwrap().is_empty());
    }
}
