//! Waiting for a container to be ready, noticing within one poll interval when it is, and failing at
//! once (with exit code and log tail) when the container exits while seatrial waits.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::http_answer::NoAnswer;
use super::scope::Scope;
use super::{Halt, RunContext};
use crate::diagnose;
use crate::scenario::plan::{Ready, ReadyCheck};

/// How often readiness is probed: the delay between the service answering and seatrial noticing.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// The pause between probes once a wait has lasted 2 s.
const SLOW_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a server may answer every probe with the same 4xx before the wait gives up.
const REFUSED_AFTER: Duration = Duration::from_secs(6);

fn describe(check: &ReadyCheck) -> String {
    match check {
        ReadyCheck::Http { port, path, status: Some(s) } => format!("GET {path} on port {port} answers {s}"),
        ReadyCheck::Http { port, path, status: None } => format!("GET {path} on port {port} answers 2xx or 3xx"),
        ReadyCheck::Log(text) => format!("the log contains {text:?}"),
        ReadyCheck::Exec(cmd) => format!("`{}` exits 0", cmd.join(" ")),
        ReadyCheck::Tcp(port) => format!("port {port} accepts connections"),
    }
}

/// The container must keep running; a container that exited fails the wait at once.
pub async fn exited_halt(ctx: &RunContext, scope: &Scope, name: &str, expected: String) -> Result<(), Halt> {
    let state = scope.refresh(name).await?;
    if state.running {
        return Ok(());
    }
    let id = scope.container(name).map(|c| c.id).unwrap_or_default();
    let log = ctx.engine.logs(&id, Some(200)).await.unwrap_or_default();
    let actual = if state.status == "created" {
        format!("container `{name}` never started")
    } else {
        format!("container `{name}` is {} (exit code {})", state.status, state.exit_code)
    };
    let mut diagnosis = vec![diagnose::exited(name, &state, &log)];
    // A program that could not be run at all: say why, from the file in the container.
    let last_line = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let runtime_said = format!("{} {last_line}", state.error);
    diagnosis.extend(diagnose::program_not_started(&ctx.engine, &id, &runtime_said).await);
    if let Some(live) = scope.container(name) {
        let said = diagnose::traceback_last_line(&log).unwrap_or(last_line);
        diagnosis.extend(diagnose::volume_not_writable(&ctx.engine, &id, name, &live.config, said).await);
    }
    Err(Halt::Check { expected, actual, diagnosis, evidence: None })
}

/// A container the engine could not start (the runtime could not run its program) is the image's
/// mistake, a failed check, not a failure of the engine.
pub async fn start_failure(ctx: &RunContext, name: &str, id: &str, err: crate::engine::EngineError) -> Halt {
    let runtime_failed = err.message.contains("OCI runtime") || err.message.contains("exec:");
    if err.unanswered || !runtime_failed {
        return Halt::Engine(err);
    }
    let diagnosis = diagnose::program_not_started(&ctx.engine, id, &err.message).await.into_iter().collect();
    Halt::Check {
        expected: format!("`{name}` starts"),
        actual: format!("the engine could not start it: {}", err.message),
        diagnosis,
        evidence: None,
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
    // The same client error (4xx) to every probe: the server is up and refuses the request itself.
    let mut refusing: Option<(Instant, String)> = None;
    loop {
        exited_halt(ctx, scope, name, expected.clone()).await?;
        let last_problem = match probe(ctx, scope, name, &ready.check, log_baseline).await {
            Ok(()) => return Ok(()),
            Err(problem) => problem,
        };
        let client_error = last_problem.starts_with("GET ") && last_problem.contains(" answered 4");
        refusing = match refusing.take() {
            Some((since, seen)) if client_error && seen == last_problem => Some((since, seen)),
            _ if client_error => Some((Instant::now(), last_problem.clone())),
            _ => None,
        };
        if let Some((first, _)) = &refusing
            && first.elapsed() >= REFUSED_AFTER
        {
            let log = match scope.container(name) {
                Some(live) => ctx.engine.logs_since(&live.id, since, Some(200)).await.unwrap_or_default(),
                None => String::new(),
            };
            let diagnosis = diagnose::last_server_message(&log)
                .map(|line| format!("the server in `{name}` logged: {line}"))
                .into_iter()
                .collect();
            return Err(Halt::Check {
                expected,
                actual: format!("it answers, but refuses: {last_problem} to every probe for {REFUSED_AFTER:?}"),
                diagnosis,
                evidence: None,
            });
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

/// What the container listens on, said as the reason a published port does not answer.
pub async fn port_diagnosis(ctx: &RunContext, scope: &Scope, name: &str, port: u16) -> Option<String> {
    let live = scope.container(name)?;
    let state = ctx.engine.inspect_container(&live.id).await.ok()?;
    let listeners = diagnose::listen::listeners(&ctx.engine, &live.id, state.pid).await?;
    diagnose::listen::explain_port(name, port, &listeners)
}

async fn probe(
    ctx: &RunContext,
    scope: &Scope,
    name: &str,
    check: &ReadyCheck,
    log_baseline: usize,
) -> Result<(), String> {
    let live = scope.container(name).ok_or_else(|| format!("container `{name}` is gone"))?;
    let host_port =
        |port: &u16| live.host_ports.get(port).copied().ok_or_else(|| format!("port {port} is not published (yet)"));
    match check {
        ReadyCheck::Http { port, path, status } => {
            let url = format!("http://127.0.0.1:{}{path}", host_port(port)?);
            let timeout = Duration::from_secs(2);
            let answer =
                ctx.http.get(&url).timeout(timeout).send().await.map_err(|e| NoAnswer::of(&e, timeout).to_string())?;
            let code = answer.status().as_u16();
            let good = status.map_or((200..400).contains(&code), |s| s == code);
            if good { Ok(()) } else { Err(format!("GET {path} answered {code}")) }
        }
        ReadyCheck::Log(text) => {
            let log = ctx.engine.logs(&live.id, None).await.map_err(|e| e.to_string())?;
            if log.matches(text.as_str()).count() > log_baseline {
                Ok(())
            } else {
                Err(format!("the log does not contain {text:?} (again) yet"))
            }
        }
        ReadyCheck::Exec(cmd) => {
            let output = ctx.engine.exec(&live.id, cmd, None).await.map_err(|e| e.to_string())?;
            if output.exit_code == 0 {
                Ok(())
            } else {
                Err(format!("`{}` exited {}: {}", cmd.join(" "), output.exit_code, output.stderr.trim()))
            }
        }
        ReadyCheck::Tcp(port) => tcp_answers(host_port(port)?).await,
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
