//! Waiting for a container to be ready, noticing within one poll interval when it is, and failing at
//! once (with exit code and log tail) when the container exits while seatrial waits.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::guard::{exited_halt, port_diagnosis};
use super::http_answer::NoAnswer;
use super::scope::Scope;
use super::{Halt, RunContext};
use crate::diagnose;
use crate::scenario::plan::{Ready, ReadyCheck};

/// How often readiness is probed: the delay between the service answering and seatrial noticing.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// The pause between probes once a wait has lasted 2 s.
const SLOW_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a server may answer every probe with the same 4xx, or with the same answer that is no HTTP
/// the client can read, before the wait gives up.
const REFUSED_AFTER: Duration = Duration::from_secs(6);
/// How long a server may accept every probe's connection and answer none before the wait gives up,
/// when no connection waits on the port to be accepted (which a server still starting leaves). Longer:
/// a threaded server may accept at once and answer only after a slow first import (Django's URLconf).
const SILENT_AFTER: Duration = Duration::from_secs(20);
/// How long one HTTP probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn describe(check: &ReadyCheck) -> String {
    match check {
        ReadyCheck::Http { port, path, status: Some(s) } => format!("GET {path} on port {port} answers {s}"),
        ReadyCheck::Http { port, path, status: None } => format!("GET {path} on port {port} answers 2xx or 3xx"),
        ReadyCheck::Log(text) => format!("the log contains {text:?}"),
        ReadyCheck::Exec(cmd) => format!("`{}` exits 0", cmd.join(" ")),
        ReadyCheck::Tcp(port) => format!("port {port} accepts connections"),
    }
}

/// How often a log readiness text already appears: after a restart the old output is still in the log,
/// so readiness means the text appearing once more.
pub async fn log_baseline(ctx: &RunContext, scope: &Scope, name: &str, ready: Option<&Ready>) -> usize {
    let (Some(Ready { check: ReadyCheck::Log(text), .. }), Some(live)) = (ready, scope.container(name)) else {
        return 0;
    };
    ctx.engine.logs(&live.id, None).await.map_or(0, |log| log.matches(text.as_str()).count())
}

/// Waits until `ready` holds for container `name`; a log text must appear more than `log_baseline` times.
pub async fn wait_ready(
    ctx: &RunContext,
    scope: &Scope,
    name: &str,
    ready: &Ready,
    log_baseline: usize,
) -> Result<(), Halt> {
    let deadline = Instant::now() + ready.timeout;
    let expected = format!("`{name}` ready within {:?}: {}", ready.timeout, describe(&ready.check));
    let mut hopeless = HopelessWatch::default();
    let started = Instant::now();
    let since = crate::engine::container::unix_seconds().saturating_sub(1);
    // The same answer to every probe that waiting does not change (a 4xx, an unreadable answer, none):
    // since when, and which.
    let mut steady: Option<(Instant, String)> = None;
    loop {
        exited_halt(ctx, scope, name, expected.clone()).await?;
        let unready = match probe(ctx, scope, name, &ready.check, log_baseline).await {
            Ok(()) => return Ok(()),
            Err(unready) => unready,
        };
        let last_problem = unready.said;
        let hopeless_after = unready.kind.hopeless_after();
        steady = match steady.take() {
            Some((since, seen)) if hopeless_after.is_some() && seen == last_problem => Some((since, seen)),
            _ if hopeless_after.is_some() => Some((Instant::now(), last_problem.clone())),
            _ => None,
        };
        if let (Some((first, _)), Some(after)) = (&steady, hopeless_after)
            && first.elapsed() >= after
        {
            match steady_failure(ctx, scope, name, &ready.check, unready.kind).await {
                Some(mut diagnosis) => {
                    let log = match scope.container(name) {
                        Some(live) => ctx.engine.logs_since(&live.id, since, Some(200)).await.unwrap_or_default(),
                        None => String::new(),
                    };
                    diagnosis.extend(
                        diagnose::last_server_message(&log)
                            .map(|line| format!("the server in `{name}` logged: {line}")),
                    );
                    let actual = match unready.kind {
                        Unreadiness::Refused => {
                            format!("it answers, but refuses: {last_problem} to every probe for {after:?}")
                        }
                        Unreadiness::Unreadable => {
                            format!("it answers, but unreadably: {last_problem}, to every probe for {after:?}")
                        }
                        Unreadiness::Unprobeable => format!("it cannot be probed: {last_problem}"),
                        Unreadiness::Silent | Unreadiness::NotYet => {
                            format!("it never answers: {last_problem}, to every probe for {after:?}")
                        }
                    };
                    return Err(Halt::Check { expected, actual, diagnosis, evidence: None });
                }
                // Still starting after all: count again from the next such answer.
                None => steady = None,
            }
        }
        if let ReadyCheck::Http { port, .. } | ReadyCheck::Tcp(port) = &ready.check
            && let Some(why) = hopeless.observe(ctx, scope, name, *port).await
        {
            return Err(Halt::Check {
                expected,
                actual: format!("it can never be ready: {last_problem}"),
                diagnosis: vec![why],
                evidence: None,
            });
        }
        if Instant::now() >= deadline {
            let mut diagnosis = Vec::new();
            if let ReadyCheck::Http { port, .. } | ReadyCheck::Tcp(port) = &ready.check {
                diagnosis.extend(port_diagnosis(ctx, scope, name, *port).await);
            }
            return Err(Halt::Check {
                expected,
                actual: format!("not ready after {:?}: {last_problem}", ready.timeout),
                diagnosis,
                evidence: None,
            });
        }
        // Quick at first, when most servers come up; then gentler, not to fill the server's log.
        let pause = if started.elapsed() < Duration::from_secs(2) { POLL_INTERVAL } else { SLOW_POLL_INTERVAL };
        tokio::time::sleep(pause).await;
    }
}

/// Notices a server that will never answer on the port: it listens, but only on loopback or only on other
/// ports, and has kept the same sockets for `HOPELESS_AFTER`. Waiting out the timeout would change nothing.
#[derive(Default)]
struct HopelessWatch {
    started: Option<Instant>,
    last_look: Option<Instant>,
    same_since: Option<(Instant, Vec<diagnose::listen::Listener>)>,
}

/// How long a server listening on the port but only on loopback must stay so before readiness gives up.
const HOPELESS_AFTER: Duration = Duration::from_secs(2);
/// The same for a server that listens only on other ports: longer, as a slow starter may open another
/// port (an admin or metrics port, a helper process) well before the one it serves on.
const HOPELESS_ELSEWHERE_AFTER: Duration = Duration::from_secs(6);
/// How often the sockets are looked at while waiting.
const HOPELESS_LOOK_EVERY: Duration = Duration::from_millis(250);

impl HopelessWatch {
    async fn observe(&mut self, ctx: &RunContext, scope: &Scope, name: &str, port: u16) -> Option<String> {
        let now = Instant::now();
        let started = *self.started.get_or_insert(now);
        if now - started < HOPELESS_LOOK_EVERY || self.last_look.is_some_and(|t| now - t < HOPELESS_LOOK_EVERY) {
            return None;
        }
        self.last_look = Some(now);
        let live = scope.container(name)?;
        let state = ctx.engine.inspect_container(&live.id).await.ok()?;
        let mut listeners = diagnose::listen::listeners(&ctx.engine, &live.id, state.pid).await?;
        listeners.sort_by_key(|l| (l.port, l.address));
        let wrong = !listeners.is_empty()
            && listeners.iter().filter(|l| l.port == port).all(diagnose::listen::Listener::is_loopback);
        if !wrong {
            self.same_since = None;
            return None;
        }
        match &self.same_since {
            Some((since, seen)) if *seen == listeners => {
                let on_port = listeners.iter().any(|l| l.port == port);
                if now - *since >= if on_port { HOPELESS_AFTER } else { HOPELESS_ELSEWHERE_AFTER } {
                    diagnose::listen::explain_port(name, port, &listeners)
                } else {
                    None
                }
            }
            _ => {
                self.same_since = Some((now, listeners));
                None
            }
        }
    }
}

/// Whether every probe getting the same `kind` of answer for its time means the container will never
/// be ready: then what to say besides; `None` when it may still be starting.
async fn steady_failure(
    ctx: &RunContext,
    scope: &Scope,
    name: &str,
    check: &ReadyCheck,
    kind: Unreadiness,
) -> Option<Vec<String>> {
    let (Unreadiness::Silent, ReadyCheck::Http { port, .. }) = (kind, check) else {
        return Some(Vec::new());
    };
    // A server still starting (gunicorn's workers importing the app) has a listening socket whose
    // connections wait to be accepted; one that accepted every probe and answered none is stuck.
    let live = scope.container(name)?;
    let state = ctx.engine.inspect_container(&live.id).await.ok()?;
    match diagnose::listen::waiting_to_be_accepted(&ctx.engine, &live.id, state.pid, *port).await? {
        0 => Some(vec![format!(
            "the server in `{name}` accepts the connections on port {port} (none waits to be accepted), so it is \
             not starting up: it is stuck, or does not speak HTTP"
        )]),
        _ => None,
    }
}

/// What kind of answer left a probe unready: whether waiting longer can change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreadiness {
    /// Not (yet) ready: a later probe may well find it ready.
    NotYet,
    /// A client error (4xx): the server is up and refuses the request itself.
    Refused,
    /// An answer the client cannot read (a head larger than it accepts, another protocol): a server
    /// that sends one will not send a smaller one later.
    Unreadable,
    /// The connection was accepted and no answer came within the probe's time.
    Silent,
    /// No probe can be sent: a port that is not published, in a container with no program to carry a
    /// connection from inside (`nc`, `python3`).
    Unprobeable,
}

impl Unreadiness {
    /// How long every probe may get the same such answer before the wait gives up; `None`: till the timeout.
    fn hopeless_after(self) -> Option<Duration> {
        match self {
            Unreadiness::NotYet => None,
            Unreadiness::Refused | Unreadiness::Unreadable => Some(REFUSED_AFTER),
            Unreadiness::Silent => Some(SILENT_AFTER),
            Unreadiness::Unprobeable => Some(Duration::ZERO),
        }
    }
}

/// Why one probe did not find the container ready.
#[derive(Debug)]
struct Unready {
    said: String,
    kind: Unreadiness,
}

impl From<String> for Unready {
    fn from(said: String) -> Self {
        Unready { said, kind: Unreadiness::NotYet }
    }
}

async fn probe(
    ctx: &RunContext,
    scope: &Scope,
    name: &str,
    check: &ReadyCheck,
    log_baseline: usize,
) -> Result<(), Unready> {
    let live = scope.container(name).ok_or_else(|| format!("container `{name}` is gone"))?;
    let host_port =
        |port: &u16| live.host_ports.get(port).copied().ok_or_else(|| format!("port {port} is not published (yet)"));
    let unready = |no_answer: NoAnswer| {
        let kind = match no_answer {
            NoAnswer::HeadTooLarge | NoAnswer::NotHttp(_) => Unreadiness::Unreadable,
            NoAnswer::Silent(_) => Unreadiness::Silent,
            _ => Unreadiness::NotYet,
        };
        Unready { said: no_answer.to_string(), kind }
    };
    // A port the container does not publish is probed from inside the scenario's network.
    let published = |port: &u16| live.config.ports.contains(port);
    match check {
        ReadyCheck::Http { port, path, status } => {
            let answer = if published(port) {
                let url = format!("http://127.0.0.1:{}{path}", host_port(port)?);
                ctx.http
                    .get(&url)
                    .timeout(PROBE_TIMEOUT)
                    .send()
                    .await
                    .map_err(|err| unready(NoAnswer::of(&err, PROBE_TIMEOUT)))?
            } else {
                http_inside(ctx, scope, name, &live, *port, path).await.map_err(|e| e.map_no_answer(unready))?
            };
            // Only the status decides: the body is never read (dropping the answer closes its
            // connection), so that an endless body costs nothing.
            let code = answer.status().as_u16();
            let good = status.map_or((200..400).contains(&code), |s| s == code);
            if good {
                return Ok(());
            }
            let kind = if (400..500).contains(&code) { Unreadiness::Refused } else { Unreadiness::NotYet };
            Err(Unready { said: format!("GET {path} answered {code}"), kind })
        }
        ReadyCheck::Log(text) => {
            let log = ctx.engine.logs(&live.id, None).await.map_err(|e| e.to_string())?;
            if log.matches(text.as_str()).count() > log_baseline {
                Ok(())
            } else {
                Err(format!("the log does not contain {text:?} (again) yet").into())
            }
        }
        ReadyCheck::Exec(cmd) => {
            let output = ctx.engine.exec(&live.id, cmd, None).await.map_err(|e| e.to_string())?;
            if output.exit_code == 0 {
                Ok(())
            } else {
                Err(format!("`{}` exited {}: {}", cmd.join(" "), output.exit_code, output.stderr.trim()).into())
            }
        }
        ReadyCheck::Tcp(port) if published(port) => Ok(tcp_answers(host_port(port)?).await?),
        ReadyCheck::Tcp(port) => Ok(listens_inside(ctx, &live, *port).await?),
    }
}

/// Why a probe from inside the network found no answer: no answer, no way to ask ever, or not yet.
enum InsideUnready {
    NoAnswer(NoAnswer),
    Never(String),
    Said(String),
}

impl InsideUnready {
    fn map_no_answer(self, unready: impl Fn(NoAnswer) -> Unready) -> Unready {
        match self {
            InsideUnready::NoAnswer(no_answer) => unready(no_answer),
            InsideUnready::Never(said) => Unready { said, kind: Unreadiness::Unprobeable },
            InsideUnready::Said(said) => said.into(),
        }
    }
}

/// An HTTP probe of a port that is not published: sent from the container itself to its own address on
/// the network (its name on a scenario network, as its neighbours reach it; its address on the default
/// bridge), through the relay `from:` uses. A server that listens only on loopback does not answer it.
async fn http_inside(
    ctx: &RunContext,
    scope: &Scope,
    name: &str,
    live: &super::scope::LiveContainer,
    port: u16,
    path: &str,
) -> Result<reqwest::Response, InsideUnready> {
    let said = |e: &dyn std::fmt::Display| InsideUnready::Said(e.to_string());
    let program = match scope.memory.relays.find(&ctx.engine, &live.id, name).await {
        Ok(program) => program,
        Err(no_program @ super::relay::RelayError::NoProgram { .. }) => {
            let why = format!(
                "port {port} is not published (with `ports: [{port}]` seatrial probes it from the host), and {no_program}"
            );
            return Err(InsideUnready::Never(why));
        }
        Err(other) => return Err(said(&other)),
    };
    let host = if live.config.network == crate::engine::container::DEFAULT_NETWORK {
        ctx.engine
            .container_address(&live.id)
            .await
            .map_err(|e| said(&e))?
            .ok_or_else(|| InsideUnready::Said(format!("`{name}` has no address on its network (yet)")))?
    } else {
        live.config.alias.clone()
    };
    let request = ctx.http.get(format!("http://{host}:{port}{path}")).build().map_err(|e| said(&e))?;
    match super::relay::send(&ctx.engine, &live.id, program, request, PROBE_TIMEOUT).await {
        Ok(answer) => Ok(answer),
        Err(super::relay::RelayError::NoAnswer(no_answer)) => Err(InsideUnready::NoAnswer(no_answer)),
        Err(other) => Err(said(&other)),
    }
}

/// Whether something listens on `port` inside the container on an address its network reaches (not only
/// on loopback): a TCP port that is not published, read from the container's own socket table.
async fn listens_inside(ctx: &RunContext, live: &super::scope::LiveContainer, port: u16) -> Result<(), String> {
    let state = ctx.engine.inspect_container(&live.id).await.map_err(|e| e.to_string())?;
    let listeners = diagnose::listen::listeners(&ctx.engine, &live.id, state.pid)
        .await
        .ok_or_else(|| "its sockets could not be read".to_owned())?;
    if listeners.iter().any(|l| l.port == port && !l.is_loopback()) {
        Ok(())
    } else {
        Err(format!("nothing listens on port {port} for the network yet"))
    }
}

/// A published port always accepts a connection (the engine's proxy does); what tells whether the
/// server is there is whether the proxy then hangs up at once.
async fn tcp_answers(host_port: u16) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", host_port)).await.map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await {
        Err(_) | Ok(Ok(1..)) => Ok(()),
        Ok(Ok(_)) => Err("the connection was closed at once: nothing listens behind the published port".into()),
        Ok(Err(e)) => Err(e.to_string()),
    }
}
