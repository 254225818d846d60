//! GET /events (`docker events`): the instance's events as JSON lines —
//! the recent ones from `since` (up to `until`), then live ones until
//! `until` passes, the client goes away or the instance ends — keeping
//! those that match `filters`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use tokio::sync::broadcast;

use super::ctx::Ctx;
use super::events::{now_nano, Event};
use super::reply::{json_lines, DockerError, Reply};

/// GET /events
pub fn events(ctx: &Ctx, query: &HashMap<String, String>) -> Reply {
    let since = time_param(query, "since")?;
    let until = time_param(query, "until")?;
    let filter = Filter::parse(query.get("filters").map(String::as_str).unwrap_or(""))?;
    let (recent, live) = ctx.engine.events.subscribe(&ctx.instance);
    // Docker replays only when asked for a start.
    let past: Vec<Arc<Event>> = match since {
        Some(since) => recent
            .into_iter()
            .filter(|e| e.time_nano >= since && until.is_none_or(|u| e.time_nano <= u))
            .filter(|e| filter.matches(e))
            .collect(),
        None => Vec::new(),
    };
    let state = Stream {
        past: past.into_iter(),
        live: (until.is_none_or(|u| u > now_nano())).then_some(live),
        until,
        filter,
        ctx: ctx.clone(),
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((event.to_json(), state))
    });
    Ok(json_lines(events))
}

struct Stream {
    past: std::vec::IntoIter<Arc<Event>>,
    /// None once the live part is over (or when there is none).
    live: Option<broadcast::Receiver<Arc<Event>>>,
    until: Option<u64>,
    filter: Filter,
    ctx: Ctx,
}

impl Stream {
    /// The next event to send; `None` ends the response.
    async fn next(&mut self) -> Option<Arc<Event>> {
        if let Some(event) = self.past.next() {
            return Some(event);
        }
        let live = self.live.as_mut()?;
        let until = self.until;
        let deadline = async move {
            match until {
                Some(until) => {
                    let left = until.saturating_sub(now_nano());
                    tokio::time::sleep(Duration::from_nanos(left)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) if self.filter.matches(&event) => return Some(event),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    // The instance was forgotten.
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = &mut deadline => return None,
                () = self.ctx.sandbox.exited() => return None,
            }
        }
    }
}

/// `since`/`until`: Unix time as `seconds[.nanoseconds]`, as the client
/// sends it; in nanoseconds.
fn time_param(query: &HashMap<String, String>, key: &str) -> Result<Option<u64>, DockerError> {
    let Some(text) = query.get(key).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    parse_time(text).map(Some).ok_or_else(|| {
        DockerError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid value for {key}: {text}"),
        )
    })
}

fn parse_time(text: &str) -> Option<u64> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let secs: u64 = secs.parse().ok()?;
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u64 = format!("{fraction:0<9}").parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// `filters`: key to accepted values. Matching follows Docker's: values of
/// one key are alternatives, keys must all match.
#[derive(Debug, Default)]
struct Filter {
    keys: HashMap<String, Vec<String>>,
}

impl Filter {
    /// `{"event":{"die":true}}` (what the client sends) or `{"event":["die"]}`.
    fn parse(text: &str) -> Result<Filter, DockerError> {
        if text.is_empty() {
            return Ok(Filter::default());
        }
        let bad =
            |e: String| DockerError::new(StatusCode::BAD_REQUEST, format!("invalid filter: {e}"));
        let map: HashMap<String, Value> =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut keys = HashMap::new();
        for (key, value) in map {
            let values: Vec<String> = match value {
                Value::Object(o) => o.keys().cloned().collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => return Err(bad(format!("{key}: not a list"))),
            };
            const KNOWN: [&str; 11] = [
                "type",
                "event",
                "container",
                "image",
                "label",
                "scope",
                "network",
                "volume",
                "plugin",
                "daemon",
                "node",
            ];
            if !KNOWN.contains(&key.as_str()) {
                return Err(bad(format!("invalid filter '{key}'")));
            }
            keys.insert(key, values);
        }
        Ok(Filter { keys })
    }

    fn matches(&self, event: &Event) -> bool {
        self.keys.iter().all(|(key, values)| {
            let exact = |source: &str| values.iter().any(|v| v == source);
            // Docker's "fuzzy" match: equal or a prefix.
            let fuzzy = |source: &str| values.iter().any(|v| source.starts_with(v.as_str()));
            let attribute = |name: &str| event.attributes.get(name).map_or("", String::as_str);
            match key.as_str() {
                "type" => exact(event.kind),
                "scope" => exact("local"),
                // `exec_create` stands for every `exec_create: <command>`.
                "event" => values.iter().any(|v| {
                    event.action == *v
                        || (["exec_create", "exec_start"].contains(&v.as_str())
                            && event.action.starts_with(v.as_str()))
                }),
                "container" => {
                    event.kind == "container" && (fuzzy(&event.id) || fuzzy(attribute("name")))
                }
                "image" => {
                    let name = attribute(if event.kind == "image" {
                        "name"
                    } else {
                        "image"
                    });
                    let id = if event.kind == "image" {
                        event.id.as_str()
                    } else {
                        ""
                    };
                    [id, name, strip_tag(id), strip_tag(name)]
                        .iter()
                        .any(|s| !s.is_empty() && exact(s))
                }
                "label" => values.iter().any(|v| match v.split_once('=') {
                    Some((k, value)) => event.attributes.get(k).is_some_and(|x| x == value),
                    None => event.attributes.contains_key(v),
                }),
                // Networks, volumes, plugins and the daemon send no events here.
                _ => false,
            }
        })
    }
}

/// `busybox:latest` -> `busybox` (a registry's port is no tag).
fn strip_tag(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn event(kind: &'static str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            time_nano: 1,
            kind,
            action: action.into(),
            id: id.into(),
            from: None,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn times_are_seconds_with_optional_nanoseconds() {
        assert_eq!(parse_time("12"), Some(12_000_000_000));
        assert_eq!(parse_time("12.5"), Some(12_500_000_000));
        assert_eq!(parse_time("12.000000001"), Some(12_000_000_001));
        assert_eq!(parse_time("12.0000000001"), None);
        assert_eq!(parse_time("x"), None);
        assert_eq!(parse_time("-1"), None);
    }

    #[test]
    fn filters_match_as_dockers_do() {
        let start = event(
            "container",
            "start",
            "abcdef",
            &[
                ("name", "web"),
                ("image", "busybox:latest"),
                ("tier", "front"),
            ],
        );
        let exec = event(
            "container",
            "exec_create: sh -c ls",
            "abcdef",
            &[("name", "web")],
        );
        let pull = event("image", "pull", "busybox:latest", &[("name", "busybox")]);
        let f = |text: &str| Filter::parse(text).expect("a valid filter");

        assert!(f("").matches(&start));
        assert!(f(r#"{"type":{"container":true}}"#).matches(&start));
        assert!(!f(r#"{"type":["container"]}"#).matches(&pull));
        assert!(f(r#"{"event":["start","die"]}"#).matches(&start));
        assert!(!f(r#"{"event":["die"]}"#).matches(&start));
        assert!(f(r#"{"event":["exec_create"]}"#).matches(&exec));
        assert!(f(r#"{"container":["web"]}"#).matches(&start));
        assert!(f(r#"{"container":["abc"]}"#).matches(&start));
        assert!(!f(r#"{"container":["db"]}"#).matches(&start));
        assert!(!f(r#"{"container":["busybox"]}"#).matches(&pull));
        assert!(f(r#"{"image":["busybox"]}"#).matches(&start));
        assert!(f(r#"{"image":["busybox"]}"#).matches(&pull));
        assert!(f(r#"{"label":["tier=front"]}"#).matches(&start));
        assert!(f(r#"{"label":["tier"]}"#).matches(&start));
        assert!(!f(r#"{"label":["tier=back"]}"#).matches(&start));
        assert!(!f(r#"{"network":["bridge"]}"#).matches(&start));
        assert!(
            f(r#"{"type":["container"],"event":["start"],"container":["web"]}"#).matches(&start)
        );
        assert!(Filter::parse(r#"{"nosuch":["x"]}"#).is_err());
        assert!(Filter::parse("not json").is_err());
        assert_eq!(strip_tag("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(strip_tag("localhost:5000/app:1"), "localhost:5000/app");
    }
}
