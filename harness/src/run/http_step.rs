//! An `http` step against the live containers: the request built as the file says (JSON, raw, form or
//! multipart body; the session's cookies for the container), sent through the published port or `from`
//! another container inside the network, redirects followed when asked, the answer read within bounds
//! and timed, checked, and the values it saves kept for later steps.

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tokio::io::AsyncReadExt as _;

use super::guard::{exited_halt, port_diagnosis_reached};
use super::http_answer::{BODY_LIMIT, NoAnswer, ReadBody, SHOWN_BODY_LIMIT, read_body};
use super::relay::{self, RelayError, RelayProgram};
use super::scope::{LiveContainer, Scope};
use super::{Halt, RunContext};
use crate::check::http::{BodyNeed, HttpAnswer};
use crate::check::{self, Mismatch};
use crate::diagnose;
use crate::scenario::plan::{Body, CaptureSource, Cookies, FileContent, HttpStep, PartValue, Redirects};

/// Redirects followed at most, as browsers and curl bound them, so that a loop ends.
const MAX_REDIRECTS: usize = 10;
/// The most of a file a multipart body sends (planning refuses larger files; a file may have grown since).
const MAX_UPLOAD_BYTES: u64 = 16 << 20;

/// One request of the step: the first, or one after a redirect.
struct Hop<'a> {
    method: reqwest::Method,
    path: String,
    body: Option<&'a Body>,
}

/// How the request reaches the container.
enum Route {
    /// Through the port published on 127.0.0.1.
    Host { host_port: u16 },
    /// From another container of the scenario, by name on the scenario's network.
    From { client: String, client_id: String, program: RelayProgram },
}

pub async fn http_step(ctx: &RunContext, scope: &Scope, http: &HttpStep) -> Result<(), Halt> {
    let live = scope
        .container(&http.container)
        .ok_or_else(|| Halt::check(format!("container `{}` exists", http.container), "it does not"))?;
    let shown = match &http.from {
        Some(from) => format!("{} {}:{}{} from `{from}`", http.method, http.container, http.port, http.path),
        None => format!("{} {}:{}{}", http.method, http.container, http.port, http.path),
    };
    let route = route(ctx, scope, http, &live, &shown).await?;
    let method = reqwest::Method::from_bytes(http.method.as_bytes())
        .map_err(|_| Halt::check("a valid HTTP method", http.method.clone()))?;
    let path = http.path.to_string();
    if !path.starts_with('/') {
        return Err(Halt::check("a path that starts with `/`", format!("`{path}`, from `{}`", http.path)));
    }
    let mut hop = Hop { method, path, body: http.body.as_ref() };
    // A second early: the engine's `since` counts whole seconds.
    let asked_at = crate::engine::container::unix_seconds().saturating_sub(1);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + http.timeout;
    let mut redirects = 0;
    let response = loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let request = build_request(ctx, scope, http, &route, &hop, remaining).await?;
        let response = match send(ctx, &route, request, remaining).await.map_err(|n| n.within(http.timeout)) {
            Ok(response) => response,
            Err(no_answer) => {
                let expected = format!("an HTTP answer to {shown}");
                exited_halt(ctx, scope, &http.container, expected.clone()).await?;
                let how = match &http.from {
                    Some(from) => format!("from `{from}`"),
                    None => "through a published port".to_owned(),
                };
                let diagnosis = port_diagnosis_reached(ctx, scope, &http.container, http.port, &how).await;
                let diagnosis = diagnosis.into_iter().collect();
                return Err(Halt::Check { expected, actual: no_answer.to_string(), diagnosis, evidence: None });
            }
        };
        if http.cookies == Cookies::Session {
            scope.memory.cookies.keep(&http.container, &hop.path, response.headers().get_all(SET_COOKIE).iter());
        }
        let status = response.status();
        let location = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
        let (Redirects::Follow, true, Some(location)) = (http.redirects, status.is_redirection(), location) else {
            break response;
        };
        redirects += 1;
        if redirects > MAX_REDIRECTS {
            return Err(Halt::check(
                format!("an answer to {shown} within {MAX_REDIRECTS} redirects"),
                format!("redirect number {redirects}, to {location}: a loop?"),
            ));
        }
        hop.path = same_container_path(&location, &hop.path, http, &route).ok_or_else(|| {
            Halt::check(
                format!("redirects of {shown} to paths of `{}`", http.container),
                format!("a redirect to {location}, which seatrial does not follow (another host)"),
            )
        })?;
        // As browsers do: 303, and 301/302 after a POST, become a GET without a body; 307/308 repeat it.
        let code = status.as_u16();
        if code == 303 || (matches!(code, 301 | 302) && hop.method == reqwest::Method::POST) {
            hop.method = reqwest::Method::GET;
            hop.body = None;
        }
    };
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    // Whatever the server sends, seatrial holds a bounded part of it, and none when the status, the
    // headers and the values to save decide; the check says when that part could not.
    let saves_from_body = http
        .save
        .iter()
        .any(|c| matches!(c.source, CaptureSource::Json { .. } | CaptureSource::Regex(_) | CaptureSource::Body));
    let limit = match check::http::body_need(&http.expect, status) {
        _ if saves_from_body => Some(BODY_LIMIT),
        BodyNeed::Nothing => None,
        BodyNeed::Shown => Some(SHOWN_BODY_LIMIT),
        BodyNeed::Checked => Some(BODY_LIMIT),
    };
    let read = match limit {
        Some(limit) => read_body(response, limit, http.timeout, deadline)
            .await
            .map_err(|broken| Halt::check("a complete body", broken.to_string()))?,
        None => ReadBody { text: String::new(), cut: None },
    };
    let answer = HttpAnswer { status, headers, body: read.text, cut: read.cut, took: started.elapsed() };
    let mut mismatches = check::http::check_http(&http.expect, &answer);
    if mismatches.is_empty() {
        mismatches = save_values(scope, http, &hop.path, &answer);
    }
    if mismatches.is_empty() {
        return Ok(());
    }
    let mut diagnosis = Vec::new();
    if let Some(cut) = &answer.cut {
        diagnosis.push(cut.to_string());
    }
    diagnosis.extend(diagnose::csrf::refusal(status, &answer.body, &csrf_sent(scope, http, &hop.path, hop.body)));
    if status >= 500 || status == 400 {
        // Read once: the exception, the volume check and the framework's own words all come from it.
        let since = ctx.engine.logs_since(&live.id, asked_at, Some(200)).await.unwrap_or_default();
        // A server error is usually an exception the server logged while answering: name it.
        if status >= 500
            && let Some(raised) = diagnose::traceback_last_line(&since)
        {
            diagnosis.push(format!("answering it, the server in `{}` raised `{raised}`", http.container));
            let (engine, config) = (&ctx.engine, &live.config);
            diagnosis.extend(diagnose::volume_not_writable(engine, &live.id, &http.container, config, raised).await);
        } else if status >= 500 {
            // A proxy passes the error on: the exception is in the log of the server behind it.
            diagnosis.extend(raised_behind(ctx, scope, &http.container, asked_at).await);
        }
        // Only a server error may be explained by what the framework said at start (unapplied migrations).
        let whole = match status {
            500.. => ctx.engine.logs(&live.id, None).await.unwrap_or_default(),
            _ => String::new(),
        };
        diagnosis.extend(diagnose::django::explain(&http.container, status, &answer.body, &since, &whole));
    }
    super::steps::mismatches_to_halt(mismatches, diagnosis)
}

/// The exception another container of the scenario logged since the request, for a server error that the
/// container asked (a proxy: nginx in front of the app) passed on.
async fn raised_behind(ctx: &RunContext, scope: &Scope, asked: &str, since: i32) -> Option<String> {
    let mut others = scope.containers();
    others.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, live) in others.into_iter().filter(|(name, _)| name != asked) {
        let log = ctx.engine.logs_since(&live.id, since, Some(200)).await.unwrap_or_default();
        if let Some(raised) = diagnose::traceback_last_line(&log) {
            return Some(format!(
                "`{asked}` passed on an error from behind it: meanwhile, the server in `{name}` raised `{raised}`"
            ));
        }
    }
    None
}

/// Takes the values the step saves from the answer; what is missing is a mismatch.
fn save_values(scope: &Scope, http: &HttpStep, path: &str, answer: &HttpAnswer) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    let session_cookie = |name: &str| match http.cookies {
        Cookies::Session => scope.memory.cookies.value(&http.container, path, name),
        Cookies::Without => None,
    };
    for capture in &http.save {
        match check::capture::from_answer(capture, answer, &session_cookie) {
            Ok(value) => scope.memory.saved.insert(&capture.name, value),
            Err(mismatch) => mismatches.push(mismatch),
        }
    }
    mismatches
}

/// Where the request goes: the published port now (it changes with every restart), or the relay in the
/// client container.
async fn route(
    ctx: &RunContext,
    scope: &Scope,
    http: &HttpStep,
    live: &LiveContainer,
    shown: &str,
) -> Result<Route, Halt> {
    let Some(client) = &http.from else {
        // Read again now: a restart by the engine's own restart policy publishes the port anew, on
        // another host port, and the one read after the last step could be someone else's by now.
        let host_ports = match scope.refresh(&http.container).await {
            Ok(state) => state.host_ports,
            Err(_) => live.host_ports.clone(),
        };
        let Some(host_port) = host_ports.get(&http.port).copied() else {
            // The engine publishes no port of a container that is not running: say why it is not.
            exited_halt(ctx, scope, &http.container, format!("an HTTP answer to {shown}")).await?;
            return Err(Halt::check(
                format!("port {} of `{}` published", http.port, http.container),
                "no host port: is the container running?",
            ));
        };
        return Ok(Route::Host { host_port });
    };
    let expected = format!("`{client}` running, to send {shown} from it");
    exited_halt(ctx, scope, client, expected).await?;
    let client_id = scope
        .container(client)
        .map(|c| c.id)
        .ok_or_else(|| Halt::check(format!("container `{client}` exists"), "it does not"))?;
    match scope.memory.relays.find(&ctx.engine, &client_id, client).await {
        Ok(program) => Ok(Route::From { client: client.clone(), client_id, program }),
        Err(RelayError::Engine(err)) => Err(Halt::Engine(err)),
        Err(other) => Err(Halt::check(format!("a way to send {shown} from inside the network"), other.to_string())),
    }
}

async fn send(
    ctx: &RunContext,
    route: &Route,
    request: reqwest::Request,
    timeout: Duration,
) -> Result<reqwest::Response, NoAnswer> {
    match route {
        Route::Host { .. } => ctx.http.execute(request).await.map_err(|err| NoAnswer::of(&err, timeout)),
        Route::From { client_id, program, client } => {
            match relay::send(&ctx.engine, client_id, *program, request, timeout).await {
                Ok(response) => Ok(response),
                Err(RelayError::NoAnswer(no_answer)) => Err(no_answer),
                Err(other) => Err(NoAnswer::Other(format!("the relay in `{client}` could not run: {other}"))),
            }
        }
    }
}

/// The path a redirect leads to when it stays with the container: a path, or a URL of the address the
/// request was sent to. `None` for another host.
fn same_container_path(location: &str, current: &str, http: &HttpStep, route: &Route) -> Option<String> {
    match route {
        Route::Host { host_port } => redirect_path(location, current, &format!("127.0.0.1:{host_port}"), true),
        Route::From { .. } => redirect_path(location, current, &format!("{}:{}", http.container, http.port), false),
    }
}

/// Where `location` leads from `current` on `authority` (`127.0.0.1:49153`), as a path and query, when
/// it stays on that authority (or on `localhost` at its port, when `localhost_too`).
fn redirect_path(location: &str, current: &str, authority: &str, localhost_too: bool) -> Option<String> {
    let base = reqwest::Url::parse(&format!("http://{authority}{current}")).ok()?;
    let target = base.join(location).ok()?;
    let same_port = target.port_or_known_default() == base.port_or_known_default();
    let same_host = target.host_str() == base.host_str() || (localhost_too && target.host_str() == Some("localhost"));
    if !(same_host && same_port && target.scheme() == "http") {
        return None;
    }
    let mut path = target.path().to_owned();
    if let Some(query) = target.query() {
        path.push('?');
        path.push_str(query);
    }
    Some(path)
}

async fn build_request(
    ctx: &RunContext,
    scope: &Scope,
    http: &HttpStep,
    route: &Route,
    hop: &Hop<'_>,
    timeout: Duration,
) -> Result<reqwest::Request, Halt> {
    let path = &hop.path;
    let url = match route {
        Route::Host { host_port } => format!("http://127.0.0.1:{host_port}{path}"),
        Route::From { .. } => format!("http://{}:{}{path}", http.container, http.port),
    };
    let mut request = ctx.http.request(hop.method.clone(), &url).timeout(timeout);
    for (name, value) in &http.headers {
        request = request.header(name, value.as_str());
    }
    // A `Cookie` header written in the step is sent as written, instead of the session's.
    let cookie_written = http.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case(COOKIE.as_str()));
    if http.cookies == Cookies::Session
        && !cookie_written
        && let Some(cookies) = scope.memory.cookies.header_for(&http.container, path)
    {
        request = request.header(COOKIE, cookies);
    }
    request = match hop.body {
        None => request,
        Some(Body::Json(json)) => request.json(&json.value),
        Some(Body::Raw(raw)) => request.body(raw.to_string()),
        Some(Body::Form(fields)) => {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            request.form(&fields)
        }
        Some(Body::Multipart(parts)) => {
            let mut form = reqwest::multipart::Form::new();
            for part in parts {
                form = match &part.value {
                    PartValue::Text(text) => form.text(part.name.clone(), text.to_string()),
                    PartValue::File { content, filename, content_type } => {
                        let bytes = match content {
                            FileContent::Inline(text) => text.as_bytes().to_vec(),
                            FileContent::Path(path) => read_upload(path).await?,
                        };
                        let mime = content_type.clone().unwrap_or_else(|| {
                            mime_guess::from_path(filename).first_or_octet_stream().essence_str().to_owned()
                        });
                        let file = reqwest::multipart::Part::bytes(bytes)
                            .file_name(filename.clone())
                            .mime_str(&mime)
                            .map_err(|e| Halt::check("a valid content type", format!("`{mime}`: {e}")))?;
                        form.part(part.name.clone(), file)
                    }
                };
            }
            request.multipart(form)
        }
    };
    request.build().map_err(|e| Halt::check(format!("a request to {url}"), e.to_string()))
}

/// A file sent in a multipart body, read when the step runs (a file written by an earlier step, through a
/// bind mount, is sent as it is then).
async fn read_upload(path: &std::path::Path) -> Result<Vec<u8>, Halt> {
    let shown = path.display().to_string();
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Halt::check(format!("the file {shown} to upload"), e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_UPLOAD_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| Halt::check(format!("the file {shown} to upload"), e.to_string()))?;
    if bytes.len() as u64 > MAX_UPLOAD_BYTES {
        return Err(Halt::check(
            format!("the file {shown} to upload, at most {} MiB", MAX_UPLOAD_BYTES >> 20),
            "it is larger",
        ));
    }
    Ok(bytes)
}

/// What the last request carried that a CSRF check looks at: its cookies and a token.
fn csrf_sent(scope: &Scope, http: &HttpStep, path: &str, body: Option<&Body>) -> diagnose::csrf::Sent {
    let written = http.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(COOKIE.as_str()));
    let header = match (written, http.cookies) {
        (Some((_, value)), _) => Some(value.to_string()),
        (None, Cookies::Session) => {
            scope.memory.cookies.header_for(&http.container, path).and_then(|h| h.to_str().ok().map(str::to_owned))
        }
        (None, Cookies::Without) => None,
    };
    let cookies = header
        .iter()
        .flat_map(|h| h.split(';').filter_map(|pair| pair.split_once('=')).map(|(n, _)| n.trim().to_owned()))
        .collect();
    let field = |name: &str| diagnose::csrf::TOKEN_FIELDS.contains(&name);
    let token_field = match body {
        Some(Body::Form(fields)) => fields.iter().any(|(name, _)| field(name)),
        Some(Body::Multipart(parts)) => parts.iter().any(|part| field(&part.name)),
        _ => false,
    };
    let token_header = http
        .headers
        .iter()
        .any(|(name, _)| diagnose::csrf::TOKEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()));
    diagnose::csrf::Sent { cookies, token: token_field || token_header }
}

#[cfg(test)]
mod tests {
    use super::redirect_path;

    #[test]
    fn a_redirect_is_followed_on_the_same_container_only() {
        let here = "127.0.0.1:49153";
        assert_eq!(redirect_path("/notes/1", "/form", here, true).as_deref(), Some("/notes/1"));
        assert_eq!(redirect_path("done?x=1", "/a/form", here, true).as_deref(), Some("/a/done?x=1"));
        assert_eq!(redirect_path("http://127.0.0.1:49153/b", "/a", here, true).as_deref(), Some("/b"));
        assert_eq!(redirect_path("http://localhost:49153/b", "/a", here, true).as_deref(), Some("/b"));
        assert_eq!(redirect_path("http://localhost:49153/b", "/a", "web:8000", false), None);
        assert_eq!(redirect_path("http://web:8000/b", "/a", "web:8000", false).as_deref(), Some("/b"));
        assert_eq!(redirect_path("https://127.0.0.1:49153/b", "/a", here, true), None);
        assert_eq!(redirect_path("http://example.com/", "/a", here, true), None);
        assert_eq!(redirect_path("http://127.0.0.1:8000/", "/a", here, true), None, "another port");
    }
}
