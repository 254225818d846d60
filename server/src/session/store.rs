//! What must outlive a restart of the server: sessions (with their expiry)
//! and their instances, in an SQLite database in the data directory. The
//! kernel holds the rest (the instances keep running; the runtime finds
//! them again), so the database stays small and is written only when
//! sessions and instances come and go.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

/// A session as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSession {
    pub id: String,
    /// Capability for the session's read-only view.
    pub viewer_id: String,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    pub instances: Vec<StoredInstance>,
    /// Its progress through a scenario, when it was started from one.
    pub tutorial: Option<StoredTutorial>,
    /// The public keys its owner added for SSH.
    pub ssh_keys: Vec<crate::session::ssh_keys::SshKey>,
}

/// A session's place in its scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTutorial {
    pub scenario: String,
    pub page: u32,
    pub reached: u32,
    pub finished: bool,
}

/// An instance as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredInstance {
    pub name: String,
    /// The runtime's id (names its directory and cgroup).
    pub runtime_id: String,
    pub ip: std::net::Ipv4Addr,
    pub created_at: SystemTime,
    pub profile: sandbox::Profile,
}

pub struct Store {
    db: Mutex<Connection>,
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64
}

fn time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

type Result<T> = std::result::Result<T, rusqlite::Error>;

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let db = Connection::open(path)?;
        // WAL: writers do not block readers, and a crash loses nothing that
        // was committed.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS sessions (
                 id TEXT PRIMARY KEY,
                 created_at INTEGER NOT NULL,
                 expires_at INTEGER NOT NULL,
                 viewer_id TEXT NOT NULL DEFAULT ''
             );
             CREATE TABLE IF NOT EXISTS instances (
                 session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                 name TEXT NOT NULL,
                 runtime_id TEXT NOT NULL UNIQUE,
                 ip TEXT NOT NULL,
                 created_at INTEGER NOT NULL,
                 PRIMARY KEY (session_id, name)
             );
             CREATE TABLE IF NOT EXISTS ssh_keys (
                 session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                 fingerprint TEXT NOT NULL,
                 openssh TEXT NOT NULL,
                 comment TEXT NOT NULL,
                 PRIMARY KEY (session_id, fingerprint)
             );
             CREATE TABLE IF NOT EXISTS tutorials (
                 session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
                 scenario TEXT NOT NULL,
                 page INTEGER NOT NULL,
                 reached INTEGER NOT NULL,
                 finished INTEGER NOT NULL
             );",
        )?;
        // A database of an earlier version lacks the column; such sessions
        // get a new viewer id when taken back.
        let _ = db.execute(
            "ALTER TABLE sessions ADD COLUMN viewer_id TEXT NOT NULL DEFAULT ''",
            [],
        );
        // Instances of an earlier version were all of the strict profile.
        let _ = db.execute(
            "ALTER TABLE instances ADD COLUMN profile TEXT NOT NULL DEFAULT 'strict'",
            [],
        );
        Ok(Store { db: Mutex::new(db) })
    }

    pub fn add_session(
        &self,
        id: &str,
        viewer_id: &str,
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<()> {
        self.db.lock().unwrap().execute(
            "INSERT INTO sessions (id, viewer_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, viewer_id, secs(created_at), secs(expires_at)],
        )?;
        Ok(())
    }

    /// Record a session's new expiry (after an extension).
    pub fn set_expiry(&self, id: &str, expires_at: SystemTime) -> Result<()> {
        self.db.lock().unwrap().execute(
            "UPDATE sessions SET expires_at = ?2 WHERE id = ?1",
            params![id, secs(expires_at)],
        )?;
        Ok(())
    }

    pub fn remove_session(&self, id: &str) -> Result<()> {
        self.db
            .lock()
            .unwrap()
            .execute("DELETE FROM sessions WHERE id = ?1", params![id])?;
        Ok(())
    }

    pub fn add_instance(&self, session_id: &str, instance: &StoredInstance) -> Result<()> {
        self.db.lock().unwrap().execute(
            "INSERT INTO instances (session_id, name, runtime_id, ip, created_at, profile)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                session_id,
                instance.name,
                instance.runtime_id,
                instance.ip.to_string(),
                secs(instance.created_at),
                instance.profile.name()
            ],
        )?;
        Ok(())
    }

    pub fn remove_instance(&self, session_id: &str, name: &str) -> Result<()> {
        self.db.lock().unwrap().execute(
            "DELETE FROM instances WHERE session_id = ?1 AND name = ?2",
            params![session_id, name],
        )?;
        Ok(())
    }

    /// Record where a session is in its scenario (the first time, or after
    /// it moved).
    pub fn set_tutorial(&self, session_id: &str, tutorial: &StoredTutorial) -> Result<()> {
        self.db.lock().unwrap().execute(
            "INSERT INTO tutorials (session_id, scenario, page, reached, finished)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (session_id) DO UPDATE
             SET page = excluded.page, reached = excluded.reached, finished = excluded.finished",
            params![
                session_id,
                tutorial.scenario,
                tutorial.page,
                tutorial.reached,
                tutorial.finished
            ],
        )?;
        Ok(())
    }

    pub fn add_ssh_key(
        &self,
        session_id: &str,
        key: &crate::session::ssh_keys::SshKey,
    ) -> Result<()> {
        self.db.lock().unwrap().execute(
            "INSERT OR IGNORE INTO ssh_keys (session_id, fingerprint, openssh, comment)
             VALUES (?1, ?2, ?3, ?4)",
            params![session_id, key.fingerprint, key.openssh, key.comment],
        )?;
        Ok(())
    }

    pub fn remove_ssh_key(&self, session_id: &str, fingerprint: &str) -> Result<()> {
        self.db.lock().unwrap().execute(
            "DELETE FROM ssh_keys WHERE session_id = ?1 AND fingerprint = ?2",
            params![session_id, fingerprint],
        )?;
        Ok(())
    }

    /// Every stored session with its instances.
    pub fn sessions(&self) -> Result<Vec<StoredSession>> {
        let db = self.db.lock().unwrap();
        let mut sessions: Vec<StoredSession> = db
            .prepare(
                "SELECT id, created_at, expires_at, viewer_id FROM sessions ORDER BY created_at",
            )?
            .query_map([], |row| {
                Ok(StoredSession {
                    id: row.get(0)?,
                    created_at: time(row.get(1)?),
                    expires_at: time(row.get(2)?),
                    viewer_id: row.get(3)?,
                    instances: Vec::new(),
                    tutorial: None,
                    ssh_keys: Vec::new(),
                })
            })?
            .collect::<Result<_>>()?;
        let mut query = db.prepare(
            "SELECT name, runtime_id, ip, created_at, profile FROM instances WHERE session_id = ?1 ORDER BY name",
        )?;
        let mut ssh_keys = db.prepare(
            "SELECT fingerprint, openssh, comment FROM ssh_keys WHERE session_id = ?1 ORDER BY rowid",
        )?;
        let mut tutorials = db.prepare(
            "SELECT scenario, page, reached, finished FROM tutorials WHERE session_id = ?1",
        )?;
        for session in &mut sessions {
            session.instances = query
                .query_map(params![session.id], |row| {
                    let ip: String = row.get(2)?;
                    Ok(StoredInstance {
                        name: row.get(0)?,
                        runtime_id: row.get(1)?,
                        ip: ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                        created_at: time(row.get(3)?),
                        profile: row
                            .get::<_, String>(4)?
                            .parse()
                            .unwrap_or(sandbox::Profile::Strict),
                    })
                })?
                .collect::<Result<_>>()?;
            session.ssh_keys = ssh_keys
                .query_map(params![session.id], |row| {
                    Ok(crate::session::ssh_keys::SshKey {
                        fingerprint: row.get(0)?,
                        openssh: row.get(1)?,
                        comment: row.get(2)?,
                    })
                })?
                .collect::<Result<_>>()?;
            session.tutorial = tutorials
                .query_map(params![session.id], |row| {
                    Ok(StoredTutorial {
                        scenario: row.get(0)?,
                        page: row.get(1)?,
                        reached: row.get(2)?,
                        finished: row.get(3)?,
                    })
                })?
                .next()
                .transpose()?;
        }
        Ok(sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_instances_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.db");
        let now = time(secs(SystemTime::now()));
        {
            let store = Store::open(&path).unwrap();
            store
                .add_session("s1", "v1", now, now + Duration::from_secs(60))
                .unwrap();
            store
                .add_session("s2", "v2", now, now + Duration::from_secs(60))
                .unwrap();
            store
                .set_expiry("s1", now + Duration::from_secs(90))
                .unwrap();
            let instance = StoredInstance {
                name: "node1".into(),
                runtime_id: "s1-node1".into(),
                ip: "10.100.0.2".parse().unwrap(),
                profile: sandbox::Profile::Nesting,
                created_at: now,
            };
            store.add_instance("s1", &instance).unwrap();
            let mut tutorial = StoredTutorial {
                scenario: "docker-basics".into(),
                page: 0,
                reached: 0,
                finished: false,
            };
            store.set_tutorial("s1", &tutorial).unwrap();
            (tutorial.page, tutorial.reached) = (2, 3);
            store.set_tutorial("s1", &tutorial).unwrap();
            store.set_tutorial("s2", &tutorial).unwrap();
            let key = crate::session::ssh_keys::SshKey {
                fingerprint: "SHA256:abc".into(),
                openssh: "ssh-ed25519 AAAA".into(),
                comment: "ada".into(),
            };
            store.add_ssh_key("s1", &key).unwrap();
            store.add_ssh_key("s1", &key).unwrap();
            store.add_ssh_key("s2", &key).unwrap();
            store.remove_session("s2").unwrap();
        }
        let store = Store::open(&path).unwrap();
        let sessions = store.sessions().unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].expires_at, now + Duration::from_secs(90));
        assert_eq!(sessions[0].viewer_id, "v1");
        assert_eq!(sessions[0].instances[0].runtime_id, "s1-node1");
        let tutorial = sessions[0].tutorial.as_ref().unwrap();
        assert_eq!((tutorial.page, tutorial.reached), (2, 3));
        assert_eq!(tutorial.scenario, "docker-basics");
        assert_eq!(sessions[0].ssh_keys.len(), 1);
        store.remove_ssh_key("s1", "SHA256:abc").unwrap();
        assert!(store.sessions().unwrap()[0].ssh_keys.is_empty());
        store.remove_instance("s1", "node1").unwrap();
        store.remove_session("s1").unwrap();
        assert!(store.sessions().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
