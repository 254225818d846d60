//! Which node an API request goes to, from its path below `/api/`.

use axum::http::Method;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/sessions`: place a new session.
    Create,
    /// Anything of a session, by its id.
    Session(String),
    /// A session's read-only view, by its viewer id.
    View(String),
    /// Classes, class joins, help keys and the admin API: each lives on
    /// one node, and no gateway knows which yet.
    NotInCluster,
    /// Nothing of a session (templates, scenarios, unknown paths): any live
    /// node answers it alike.
    AnyNode,
}

/// `rest` is the path after `/api/`.
pub fn route(method: &Method, rest: &str) -> Route {
    let mut parts = rest.split('/');
    let first = parts.next().unwrap_or("");
    let second = parts.next().filter(|s| !s.is_empty());
    match (first, second) {
        ("sessions", None) if method == Method::POST => Route::Create,
        ("sessions", Some(sid)) => Route::Session(sid.to_string()),
        ("view", Some(vid)) => Route::View(vid.to_string()),
        ("classes" | "join" | "help" | "admin", _) => Route::NotInCluster,
        _ => Route::AnyNode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_to_their_sessions_node() {
        let (get, post) = (Method::GET, Method::POST);
        assert_eq!(route(&post, "sessions"), Route::Create);
        assert_eq!(route(&get, "sessions"), Route::AnyNode);
        assert_eq!(route(&get, "sessions/abc"), Route::Session("abc".into()));
        assert_eq!(
            route(&get, "sessions/abc/instances/node1/terminal"),
            Route::Session("abc".into())
        );
        assert_eq!(route(&get, "view/v1/events"), Route::View("v1".into()));
        assert_eq!(route(&get, "view"), Route::AnyNode);
        assert_eq!(route(&get, "templates"), Route::AnyNode);
        assert_eq!(route(&get, "scenarios/a/b"), Route::AnyNode);
        assert_eq!(route(&post, "classes"), Route::NotInCluster);
        assert_eq!(route(&post, "join/ABC"), Route::NotInCluster);
        assert_eq!(
            route(&get, "help/k/instances/n/terminal"),
            Route::NotInCluster
        );
    }
}
