//! A session's way through its scenario, in its instances: starting a
//! session of a scenario, the pages' scripts, the checks, moving between
//! pages (stored, so a reload or a restart keeps them; the data itself is
//! `progress.rs`).
//!
//! Scripts run on the scenario's first instance (Killercoda's `host01`):
//! the assets are copied before the first page shows; when a page opens
//! for the first time its background script runs out of sight (its output
//! kept for the author) and its foreground script is typed into the first
//! terminal. A step's verify script is its check: exit status 0 unlocks and
//! shows the next page. Check runs it on request, and a watcher runs it
//! every few seconds while a page shows the step, so a step completes the
//! moment the learner has done it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use playground_protocol::{
    CheckResult, PageKind, ScriptKind, ScriptRun, SessionEvent, TutorialState,
};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::session::progress::{pages, Tutorial};
use crate::session::sessions::{Draw, InstanceEntry, Session, SessionIds, Sessions};

/// How long a verify script may run before it is stopped and reported.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a background script may run.
const BACKGROUND_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the watcher checks the step shown.
const AUTO_CHECK_EVERY: Duration = Duration::from_secs(3);
/// Most output kept of a script (each of stdout and stderr).
const SCRIPT_OUTPUT: usize = 64 * 1024;
/// Most output of a verify script shown as the hint.
const HINT_OUTPUT: usize = 4 * 1024;

/// Runs a script given on standard input as a file, with standard input
/// closed, from root's home: the script may read input of its own or hold
/// any size, and `~` means what it means in the terminal.
const RUNNER: &str = "export HOME=/root; cd /root 2>/dev/null; \
    f=$(mktemp /tmp/.tutorial-script.XXXXXX) || exit 125; cat >\"$f\"; \
    bash \"$f\" </dev/null; s=$?; rm -f \"$f\"; exit $s";

pub fn the_tutorial(session: &Session) -> Result<Arc<Tutorial>, ApiError> {
    session.tutorial.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "this session was not started from a scenario: it has no tutorial",
        )
    })
}

/// The instance scripts run on: the scenario's first.
async fn first_host(
    session: &Session,
    tutorial: &Tutorial,
) -> Result<Arc<InstanceEntry>, ApiError> {
    let name = &tutorial.scenario.hostnames[0];
    session.instance(name).await.map_err(|_| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the tutorial's scripts run on {name}, and this session no longer has it; \
                 start the tutorial again"
            ),
        )
    })
}

/// Create a session for the scenario `id`: its instances, its files
/// copied in, its first page opened, its steps watched. If any of it
/// fails the session is ended and the error returned.
pub async fn start(
    sessions: &Arc<Sessions>,
    id: &str,
    client: Option<IpAddr>,
    draw: Draw,
    ids: Option<SessionIds>,
) -> Result<Arc<Session>, ApiError> {
    let scenario = sessions
        .policy()
        .scenarios
        .scenario(id)
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no scenario named {id:?}")))?;
    if draw == Draw::Free && sessions.capacity().free() < scenario.hostnames.len() {
        return Err(sessions.full_error());
    }
    let tutorial = Arc::new(Tutorial::new(Arc::new(scenario), None));
    let session = sessions
        .open_session(client, Some(tutorial.clone()), draw, ids)
        .await?;
    let prepared = async {
        for hostname in &tutorial.scenario.hostnames {
            let profile = tutorial.scenario.profile;
            sessions
                .add_instance_drawing(&session, Some(hostname), profile, draw)
                .await?;
        }
        begin(sessions, &session).await
    };
    if let Err(e) = prepared.await {
        let _ = sessions.end(&session.id).await;
        return Err(e);
    }
    watch(sessions.clone(), session.clone());
    Ok(session)
}

/// Watch the steps of every tutorial session (after a restart took them back).
pub fn watch_all(sessions: &Arc<Sessions>) {
    for session in sessions.all() {
        if session.tutorial.is_some() {
            watch(sessions.clone(), session);
        }
    }
}

/// Copy the scenario's assets into the session's instances, then open the
/// first page (its scripts start). Called once the instances exist.
pub async fn begin(sessions: &Sessions, session: &Arc<Session>) -> Result<(), ApiError> {
    let tutorial = the_tutorial(session)?;
    for host in &tutorial.scenario.hostnames {
        let assets: Vec<_> = (tutorial.scenario.assets.iter())
            .filter(|a| &a.hostname == host)
            .collect();
        if assets.is_empty() {
            continue;
        }
        let entry = session.instance(host).await?;
        copy_assets(&entry, &assets).await?;
    }
    sessions.save_tutorial(session, &tutorial)?;
    enter(session, &tutorial, 0).await;
    Ok(())
}

async fn copy_assets(
    entry: &InstanceEntry,
    assets: &[&crate::session::scenarios::Asset],
) -> Result<(), ApiError> {
    let failed = |what: String| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("copying the scenario's files into {}: {what}", entry.name),
        )
    };
    let mut dirs: Vec<String> = (assets.iter())
        .filter_map(|a| a.target.rsplit_once('/').map(|(dir, _)| dir.to_string()))
        .filter(|d| !d.is_empty())
        .collect();
    dirs.sort();
    dirs.dedup();
    // A command that must succeed; its error output says why not.
    let run = |argv: Vec<String>| async {
        let out = (entry.instance)
            .exec(argv, Vec::new(), Duration::from_secs(30), 4096)
            .await?;
        match out.exit_code {
            0 => Ok(()),
            _ => Err(failed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            )),
        }
    };
    if !dirs.is_empty() {
        let mut argv = vec!["mkdir".to_string(), "-p".to_string(), "--".to_string()];
        argv.extend(dirs);
        run(argv).await?;
    }
    for asset in assets {
        let contents = tokio::fs::read(&asset.source)
            .await
            .map_err(|e| failed(format!("{}: {e}", asset.source.display())))?;
        let mut file = entry.instance.open_file(&asset.target, true, None).await?;
        file.file
            .write_all(&contents)
            .await
            .map_err(|e| failed(format!("{}: {e}", asset.target)))?;
        file.file
            .flush()
            .await
            .map_err(|e| failed(format!("{}: {e}", asset.target)))?;
        if let Some(mode) = &asset.chmod {
            let argv = vec![
                "chmod".into(),
                mode.clone(),
                "--".into(),
                asset.target.clone(),
            ];
            run(argv).await?;
        }
    }
    Ok(())
}

/// A page opens for the first time: its background script starts out of
/// sight, its foreground script is typed into the first instance's first
/// terminal.
async fn enter(session: &Arc<Session>, tutorial: &Arc<Tutorial>, page: u32) {
    let Some((_, content)) = pages(&tutorial.scenario).get(page as usize).copied() else {
        return;
    };
    let entry = match first_host(session, tutorial).await {
        Ok(entry) => entry,
        Err(e) => {
            tracing::warn!(session = %session.id, "tutorial page {page}: {}", e.message);
            return;
        }
    };
    if let Some(script) = content.background.clone() {
        let id = tutorial.record(ScriptRun {
            page,
            kind: ScriptKind::Background,
            host: entry.name.clone(),
            exit_code: None,
            output: String::new(),
            timed_out: false,
        });
        let (tutorial, entry, sid) = (tutorial.clone(), entry.clone(), session.id.clone());
        tokio::spawn(async move {
            let result = run_script(&entry, &script, BACKGROUND_TIMEOUT).await;
            if let Ok(out) = &result {
                if out.exit_code != 0 {
                    tracing::warn!(session = %sid, page, code = out.exit_code, "tutorial background script failed");
                }
            }
            tutorial.ended(id, |run| match result {
                Ok(out) => {
                    run.exit_code = Some(out.exit_code);
                    run.timed_out = out.timed_out;
                    run.output = output_text(&out.stdout, &out.stderr, SCRIPT_OUTPUT);
                }
                Err(e) => {
                    run.exit_code = Some(-1);
                    run.output = format!("the script could not run: {e}");
                }
            });
        });
    }
    if let Some(script) = &content.foreground {
        let kind = match pages(&tutorial.scenario)[page as usize].0 {
            PageKind::Intro => "intro".to_string(),
            PageKind::Step => format!("page{page}"),
            PageKind::Finish => "finish".to_string(),
        };
        let path = format!("/tmp/tutorial-{kind}-foreground.sh");
        let typed = async {
            entry.instance.write_file(&path, script).await?;
            let (terminal, started) = entry.terminal(0, 80, 24).await?;
            if started {
                // Typed after the prompt, so the shell does not echo it twice.
                terminal.first_output(Duration::from_secs(5)).await;
            }
            terminal
                .type_input(format!("bash {path}\r").as_bytes())
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        };
        tutorial.record(ScriptRun {
            page,
            kind: ScriptKind::Foreground,
            host: entry.name.clone(),
            exit_code: None,
            output: String::new(),
            timed_out: false,
        });
        if let Err(e) = typed.await {
            tracing::warn!(session = %session.id, page, "tutorial foreground script: {}", e.message);
        }
    }
}

async fn run_script(
    entry: &InstanceEntry,
    script: &str,
    timeout: Duration,
) -> Result<sandbox::ExecOutput, sandbox::Error> {
    let argv = vec!["sh".into(), "-c".into(), RUNNER.into()];
    (entry.instance)
        .exec(argv, script.as_bytes().to_vec(), timeout, SCRIPT_OUTPUT)
        .await
}

/// Standard output then standard error, trimmed, at most `max` bytes (the end kept).
fn output_text(stdout: &[u8], stderr: &[u8], max: usize) -> String {
    let mut text = String::from_utf8_lossy(stdout).trim_end().to_string();
    let err = String::from_utf8_lossy(stderr);
    let err = err.trim_end();
    if !err.is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(err);
    }
    if text.len() > max {
        let mut cut = text.len() - max;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("...{}", &text[cut..]);
    }
    text
}

/// Check the page shown: run its verify script (a page without one passes
/// at once). A pass unlocks and shows the next page. `automatic` checks
/// (the watcher's) skip when a check is running, and are not kept when they
/// fail. `None`: skipped.
pub async fn check(
    sessions: &Sessions,
    session: &Arc<Session>,
    automatic: bool,
) -> Result<Option<CheckResult>, ApiError> {
    let tutorial = the_tutorial(session)?;
    let _turn = if automatic {
        match tutorial.checking.try_lock() {
            Ok(turn) => turn,
            Err(_) => return Ok(None),
        }
    } else {
        tutorial.checking.lock().await
    };
    let state = tutorial.state();
    let page = state.page;
    let all = pages(&tutorial.scenario);
    let Some((kind, content)) = all.get(page as usize).copied() else {
        return Ok(None);
    };
    // By itself only on the step to do: a step done and opened again is
    // read, not moved on from.
    let to_do = page == state.reached && !state.finished;
    if automatic && (content.verify.is_none() || kind != PageKind::Step || !to_do) {
        return Ok(None);
    }
    let (passed, output, timed_out) = match &content.verify {
        None => (true, String::new(), false),
        Some(script) => {
            let entry = first_host(session, &tutorial).await?;
            let out = run_script(&entry, script, VERIFY_TIMEOUT).await?;
            let mut output = output_text(&out.stdout, &out.stderr, HINT_OUTPUT);
            if out.timed_out {
                if !output.is_empty() {
                    output.push('\n');
                }
                output.push_str(&format!(
                    "The check did not finish within {} seconds and was stopped: it waits for \
                     something that does not happen. Tell the tutorial's author.",
                    VERIFY_TIMEOUT.as_secs()
                ));
            }
            (out.exit_code == 0 && !out.timed_out, output, out.timed_out)
        }
    };
    if automatic && !passed {
        return Ok(None);
    }
    let result = CheckResult {
        page,
        passed,
        output,
        timed_out,
        automatic,
        at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    };
    let opened = {
        let mut p = tutorial.progress.lock().unwrap();
        if p.page != page {
            // The learner opened another page meanwhile: this result is old.
            return Ok(Some(result));
        }
        let mut opened = None;
        if passed {
            if tutorial.last_step().is_none_or(|last| page >= last) && kind != PageKind::Intro {
                p.finished = true;
            }
            if (page as usize) + 1 < all.len() {
                p.page = page + 1;
                if p.page > p.reached {
                    p.reached = p.page;
                    opened = Some(p.page);
                }
            }
        }
        p.last_check = Some(result.clone());
        opened
    };
    sessions.save_tutorial(session, &tutorial)?;
    session.publish(SessionEvent::Tutorial {
        tutorial: Box::new(tutorial.state()),
    });
    if let Some(page) = opened {
        enter(session, &tutorial, page).await;
    }
    Ok(Some(result))
}

/// Show a page again: any page up to the furthest reached.
pub async fn open(
    sessions: &Sessions,
    session: &Arc<Session>,
    page: u32,
) -> Result<TutorialState, ApiError> {
    let tutorial = the_tutorial(session)?;
    {
        let mut p = tutorial.progress.lock().unwrap();
        if page > p.reached {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "page {page} is not unlocked yet: the furthest this session has reached is \
                     page {}",
                    p.reached
                ),
            ));
        }
        if p.page != page {
            p.page = page;
            p.last_check = None;
        }
    }
    sessions.save_tutorial(session, &tutorial)?;
    let state = tutorial.state();
    session.publish(SessionEvent::Tutorial {
        tutorial: Box::new(state.clone()),
    });
    Ok(state)
}

/// Check the step shown every few seconds while a page shows the session
/// (a terminal or its event stream is open), until the session ends: a
/// class of sessions nobody looks at costs nothing.
pub fn watch(sessions: Arc<Sessions>, session: Arc<Session>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(AUTO_CHECK_EVERY).await;
            if session.has_ended() {
                return;
            }
            if !session.is_watched() {
                continue;
            }
            if let Err(e) = check(&sessions, &session, true).await {
                tracing::debug!(session = %session.id, "automatic check: {}", e.message);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_keeps_the_end_of_long_output() {
        assert_eq!(output_text(b"out\n", b"err\n", 100), "out\nerr");
        assert_eq!(output_text(b"", b"err", 100), "err");
        let long = "é".repeat(100);
        let text = output_text(long.as_bytes(), b"", 11);
        assert!(text.starts_with("...") && text.ends_with("é"), "{text}");
        assert!(text.len() <= 14, "{text}");
    }
}
