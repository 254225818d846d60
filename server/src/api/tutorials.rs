//! Tutorials: the scenarios of `--scenarios` (listed, and each with its
//! pages), and a session's progress through its own (check the step shown,
//! open a page again, the scripts' output for the author).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use playground_protocol::{
    CatalogEntry, CheckResult, OpenPage, ScenarioInfo, ScenarioSummary, ScriptRun, TutorialState,
};

use crate::api::state::AppState;
use crate::error::ApiError;
use crate::session::scenarios::{Catalog, Item, ItemKind, Layout, Scenario};
use crate::session::sessions::Policy;
use crate::session::{progress, tutorial};

fn summary(scenario: &Scenario, policy: &Policy) -> ScenarioSummary {
    ScenarioSummary {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        description: scenario.description.clone(),
        hosts: scenario.hostnames.clone(),
        profile: scenario
            .profile
            .unwrap_or(policy.profile)
            .name()
            .to_string(),
        steps: scenario.steps.len() as u32,
    }
}

/// Entries of the catalog's top level or of a course, with the titles and
/// descriptions a `structure.json` gave.
fn entries(items: &[Item], catalog: &Catalog, policy: &Policy) -> Vec<CatalogEntry> {
    items
        .iter()
        .filter_map(|item| match item.kind {
            ItemKind::Scenario => {
                let mut s = summary(catalog.scenario(&item.id)?, policy);
                s.title = item.title.clone().unwrap_or(s.title);
                s.description = item.description.clone().unwrap_or(s.description);
                Some(CatalogEntry::Scenario(s))
            }
            ItemKind::Course => {
                let course = catalog.course(&item.id)?;
                Some(CatalogEntry::Course {
                    id: course.id.clone(),
                    title: item.title.clone().unwrap_or(course.title.clone()),
                    description: (item.description.clone()).unwrap_or(course.description.clone()),
                    entries: entries(&course.items, catalog, policy),
                })
            }
        })
        .collect()
}

pub async fn list(State(sessions): State<AppState>) -> Json<Vec<CatalogEntry>> {
    let policy = sessions.policy();
    let catalog = &policy.scenarios;
    Json(entries(&catalog.top, catalog, policy))
}

pub async fn get(
    State(sessions): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ScenarioInfo>, ApiError> {
    let policy = sessions.policy();
    let scenario = policy
        .scenarios
        .scenario(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no scenario named {id:?}")))?;
    Ok(Json(ScenarioInfo {
        summary: summary(scenario, policy),
        layout: match &scenario.layout {
            Layout::Terminal => "terminal".into(),
            Layout::Ide => "ide".into(),
            Layout::Other(other) => other.clone(),
        },
        pages: progress::page_infos(scenario),
    }))
}

pub async fn check(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<Json<CheckResult>, ApiError> {
    let session = sessions.get(&sid)?;
    let result = tutorial::check(&sessions, &session, false).await?;
    result.map(Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "the page shown has nothing to check".to_string(),
        )
    })
}

pub async fn open_page(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
    body: Result<Json<OpenPage>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TutorialState>, ApiError> {
    let Json(OpenPage { page }) = body?;
    let session = sessions.get(&sid)?;
    Ok(Json(tutorial::open(&sessions, &session, page).await?))
}

pub async fn scripts(
    State(sessions): State<AppState>,
    Path(sid): Path<String>,
) -> Result<Json<Vec<ScriptRun>>, ApiError> {
    let session = sessions.get(&sid)?;
    Ok(Json(tutorial::the_tutorial(&session)?.scripts()))
}
