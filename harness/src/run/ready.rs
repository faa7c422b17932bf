//! Waiting for a container to be ready, noticing within one poll interval when it is, and failing at
//! once (with exit code and log tail) when the container exits while seatrial waits.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::scope::Scope;
use super::{Halt, RunContext};
use crate::diagnose;
use crate::scenario::plan::{Ready, ReadyCheck};

/// How often readiness is probed: the delay between the service answering and seatrial noticing.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

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
    Err(Halt::Check {
        expected,
        actual: format!("container `{name}` is {} (exit code {})", state.status, state.exit_code),
        diagnosis: vec![diagnose::exited(name, &state, &log)],
        evidence: None,
    })
}

/// Waits until `ready` holds for container `name`.
pub async fn wait_ready(ctx: &RunContext, scope: &Scope, name: &str, ready: &Ready) -> Result<(), Halt> {
    let deadline = Instant::now() + ready.timeout;
    let expected = format!("`{name}` ready within {:?}: {}", ready.timeout, describe(&ready.check));
    loop {
        exited_halt(ctx, scope, name, expected.clone()).await?;
        let last_problem = match probe(ctx, scope, name, &ready.check).await {
            Ok(()) => return Ok(()),
            Err(problem) => problem,
        };
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
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What the container listens on, said as the reason a published port does not answer.
pub async fn port_diagnosis(ctx: &RunContext, scope: &Scope, name: &str, port: u16) -> Option<String> {
    let live = scope.container(name)?;
    let state = ctx.engine.inspect_container(&live.id).await.ok()?;
    let listeners = diagnose::listen::listeners(&ctx.engine, &live.id, state.pid).await?;
    diagnose::listen::explain_port(name, port, &listeners)
}

async fn probe(ctx: &RunContext, scope: &Scope, name: &str, check: &ReadyCheck) -> Result<(), String> {
    let live = scope.container(name).ok_or_else(|| format!("container `{name}` is gone"))?;
    let host_port = |port: &u16| {
        live.host_ports.get(port).copied().ok_or_else(|| format!("port {port} is not published (yet)"))
    };
    match check {
        ReadyCheck::Http { port, path, status } => {
            let url = format!("http://127.0.0.1:{}{path}", host_port(port)?);
            let answer = ctx.http.get(&url).timeout(Duration::from_secs(2)).send().await.map_err(|e| describe_error(&e))?;
            let code = answer.status().as_u16();
            let good = status.map_or((200..400).contains(&code), |s| s == code);
            if good { Ok(()) } else { Err(format!("GET {path} answered {code}")) }
        }
        ReadyCheck::Log(text) => {
            let log = ctx.engine.logs(&live.id, None).await.map_err(|e| e.to_string())?;
            if log.contains(text.as_str()) { Ok(()) } else { Err(format!("the log does not contain {text:?} yet")) }
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

/// reqwest's error with its causes, which say what really happened (`connection refused`).
pub fn describe_error(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() { "no answer before the timeout".to_owned() } else { err.to_string() };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
