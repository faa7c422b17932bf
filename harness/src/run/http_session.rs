//! What a scenario's steps keep for the steps after them: the values they saved (`save:`, used as
//! `${name}`), and a cookie session per container, as a browser keeps one per site. The session belongs
//! to the container, not to its host port: it survives `restart` and `recreate`, which change the port,
//! and it is the same whether a request goes through the published port or comes `from` another
//! container.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::cookie::CookieStore as _;

use super::relay::RelayPrograms;

/// What the steps of one scenario keep for the steps after them.
#[derive(Clone, Default)]
pub struct ScenarioMemory {
    pub saved: SavedValues,
    pub cookies: CookieSession,
    /// Which program carries a connection from each container (found once).
    pub relays: RelayPrograms,
}

/// The values saved so far, by name, with their JSON type (`$.id` saves a number as a number).
#[derive(Clone, Default)]
pub struct SavedValues(Arc<Mutex<HashMap<String, serde_json::Value>>>);

impl SavedValues {
    pub fn get(&self, name: &str) -> Option<serde_json::Value> {
        crate::lock::unpoisoned(&self.0).get(name).cloned()
    }

    pub fn insert(&self, name: &str, value: serde_json::Value) {
        crate::lock::unpoisoned(&self.0).insert(name.to_owned(), value);
    }
}

/// The address cookies are kept under. Each container has a jar of its own, so the address only has to
/// be one a browser would treat alike: the loopback host a published port is reached on. Cookies ignore
/// ports (RFC 6265), which is what lets a session outlive a change of host port.
const COOKIE_ORIGIN: &str = "http://127.0.0.1";

/// A cookie jar per container of the scenario (reqwest's `Jar`, RFC 6265: paths, expiry, deletion).
#[derive(Clone, Default)]
pub struct CookieSession(Arc<Mutex<HashMap<String, Arc<reqwest::cookie::Jar>>>>);

/// Where a request goes, as a cookie jar sees it: its path (and query).
fn cookie_url(path: &str) -> Option<reqwest::Url> {
    reqwest::Url::parse(&format!("{COOKIE_ORIGIN}{path}")).ok()
}

impl CookieSession {
    fn jar(&self, container: &str) -> Arc<reqwest::cookie::Jar> {
        crate::lock::unpoisoned(&self.0).entry(container.to_owned()).or_default().clone()
    }

    /// The `Cookie` header a browser would send to `container` for `path`, if it holds any cookie for it.
    pub fn header_for(&self, container: &str, path: &str) -> Option<reqwest::header::HeaderValue> {
        self.jar(container).cookies(&cookie_url(path)?)
    }

    /// Keeps the cookies an answer from `container` to a request for `path` sets (or deletes).
    pub fn keep<'a>(
        &self,
        container: &str,
        path: &str,
        set_cookie: impl Iterator<Item = &'a reqwest::header::HeaderValue>,
    ) {
        if let Some(url) = cookie_url(path) {
            let mut headers = set_cookie;
            self.jar(container).set_cookies(&mut headers, &url);
        }
    }

    /// The value of the cookie `name` the session would send to `container` at `path`.
    pub fn value(&self, container: &str, path: &str, name: &str) -> Option<String> {
        let header = self.header_for(container, path)?;
        let header = header.to_str().ok()?;
        header.split("; ").filter_map(|pair| pair.split_once('=')).find(|(n, _)| *n == name).map(|(_, v)| v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn cookies_are_kept_per_container_and_follow_paths_and_deletions() {
        let session = CookieSession::default();
        let set = [
            HeaderValue::from_static("csrftoken=abc; Path=/; SameSite=Lax"),
            HeaderValue::from_static("admin=1; Path=/admin"),
        ];
        session.keep("web", "/form", set.iter());
        assert_eq!(session.value("web", "/form", "csrftoken").as_deref(), Some("abc"));
        assert_eq!(
            session.header_for("web", "/").map(|h| h.to_str().unwrap().to_owned()).as_deref(),
            Some("csrftoken=abc")
        );
        assert!(session.header_for("web", "/admin/x").is_some_and(|h| h.to_str().unwrap().contains("admin=1")));
        assert_eq!(session.header_for("api", "/"), None, "another container has a session of its own");
        let deleted = [HeaderValue::from_static("csrftoken=; Max-Age=0; Path=/")];
        session.keep("web", "/logout", deleted.iter());
        assert_eq!(session.value("web", "/", "csrftoken"), None);
    }
}
