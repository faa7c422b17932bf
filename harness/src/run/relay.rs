//! Requests from inside the scenario's network: seatrial speaks HTTP itself (the same request, cookies,
//! redirects, bounded body and messages as through a published port), and only the TCP bytes travel
//! through a program run in a container of the scenario (`nc HOST PORT`, else a few lines of `python3`),
//! with its standard input and output as the connection.
//!
//! Why a relay in the client container rather than `wget`/`curl` there, or a helper container: the
//! request really leaves the client container (its network namespace, its name resolution, what the
//! network lets it reach), which is what `from:` promises; busybox `wget` cannot send most methods or
//! show a 4xx answer's body, and many images have neither `wget` nor `curl`; a helper container would
//! need an image of its own (no registry here to pull one from) and costs a create, a start and a removal
//! (about a second on this engine) where an exec costs tens of milliseconds.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::container::LogOutput;
use bytes::Bytes;
use futures_util::Stream;

use super::http_answer::NoAnswer;
use crate::engine::exec_stream::AttachedExec;
use crate::engine::{Engine, EngineError};

/// The program that carries the connection inside a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayProgram {
    /// `nc HOST PORT` (busybox, netcat-openbsd, ncat).
    Nc,
    /// `python3 -c <RELAY_PY> HOST PORT`, for images with Python and no `nc` (`python:3.11-slim`).
    Python,
}

/// A TCP relay between standard input/output and `HOST PORT`, in Python: for images without `nc`.
const RELAY_PY: &str = "import os,socket,sys,threading
s=socket.create_connection((sys.argv[1],int(sys.argv[2])))
def up():
    while True:
        d=os.read(0,65536)
        if not d:
            break
        s.sendall(d)
threading.Thread(target=up,daemon=True).start()
while True:
    d=s.recv(65536)
    if not d:
        break
    os.write(1,d)
";

impl RelayProgram {
    fn command(self, host: &str, port: u16) -> Vec<String> {
        match self {
            RelayProgram::Nc => vec!["nc".into(), host.into(), port.to_string()],
            RelayProgram::Python => vec!["python3".into(), "-c".into(), RELAY_PY.into(), host.into(), port.to_string()],
        }
    }
}

/// The programs tried, in order, with a command that tells whether the container has it.
const CANDIDATES: [(RelayProgram, &[&str]); 2] =
    [(RelayProgram::Nc, &["nc", "-h"]), (RelayProgram::Python, &["python3", "-c", "import socket"])];

/// Which relay program the container has, found once per container (its id) and remembered.
#[derive(Clone, Default)]
pub struct RelayPrograms(Arc<Mutex<std::collections::HashMap<String, RelayProgram>>>);

/// What a relay could not do.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(
        "`{container}` has neither `nc` nor `python3` to carry a connection from inside the network (a busybox, \
         alpine or python image has one)"
    )]
    NoProgram { container: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    NoAnswer(NoAnswer),
}

impl RelayPrograms {
    pub async fn find(&self, engine: &Engine, id: &str, container: &str) -> Result<RelayProgram, RelayError> {
        if let Some(found) = crate::lock::unpoisoned(&self.0).get(id) {
            return Ok(*found);
        }
        for (program, probe) in CANDIDATES {
            let probe: Vec<String> = probe.iter().map(|s| (*s).to_owned()).collect();
            let output = match engine.exec(id, &probe, None).await {
                Ok(output) => output,
                // Some engines (Podman) refuse to start an exec of a missing program instead of reporting
                // its exit code.
                Err(err) if missing_program(&err.message) => continue,
                Err(err) => return Err(err.into()),
            };
            // 126 and 127: the runtime found no such program (or could not run it); anything else ran it.
            if !matches!(output.exit_code, 126 | 127) && !missing_program(&output.stdout) {
                crate::lock::unpoisoned(&self.0).insert(id.to_owned(), program);
                return Ok(program);
            }
        }
        Err(RelayError::NoProgram { container: container.to_owned() })
    }
}

/// Whether the runtime said that a program does not exist in the container.
fn missing_program(said: &str) -> bool {
    let said = said.to_ascii_lowercase();
    said.contains("executable file not found") || said.contains("no such file or directory")
}

/// The most of a relay program's standard error kept, to say why a connection failed.
const STDERR_LIMIT: usize = 4096;

/// The exec's stdout as the connection's incoming bytes, its stdin as the outgoing ones. Its stderr (the
/// relay's own complaints: "can't connect to remote host") is kept aside.
struct RelayIo {
    output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    input: Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    pending: Bytes,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl hyper::rt::Read for RelayIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = buf.remaining().min(this.pending.len());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match this.output.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(LogOutput::StdErr { message }))) => {
                    let mut stderr = crate::lock::unpoisoned(&this.stderr);
                    let room = STDERR_LIMIT.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&message[..message.len().min(room)]);
                }
                Poll::Ready(Some(Ok(other))) => this.pending = other.into_bytes(),
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(io::Error::other(err))),
                // The relay ended: the connection is closed.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl hyper::rt::Write for RelayIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().input.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().input.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().input.as_mut().poll_shutdown(cx)
    }
}

/// Sends `request` (its URL names the host and port as the client container reaches them) through a
/// relay run in container `from_id`, and returns the answer, whose body is read as any other. The
/// connection lives at most `timeout` (and a margin to read the body), whatever the server does.
pub async fn send(
    engine: &Engine,
    from_id: &str,
    program: RelayProgram,
    request: reqwest::Request,
    timeout: Duration,
) -> Result<reqwest::Response, RelayError> {
    let url = request.url().clone();
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let AttachedExec { exec_id, output, input } = engine.exec_attached(from_id, &program.command(&host, port)).await?;
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let io = RelayIo { output, input, pending: Bytes::new(), stderr: stderr.clone() };
    let mut http: hyper::Request<reqwest::Body> =
        request.try_into().map_err(|e: reqwest::Error| RelayError::NoAnswer(NoAnswer::Other(e.to_string())))?;
    // Over a connection of its own, a request names its path only; `Host` says whom it is for, as a
    // client in the network would write it. `Connection: close` makes the server end the connection,
    // and so the relay, once it has answered.
    let mut origin_form = url.path().to_owned();
    if let Some(query) = url.query() {
        origin_form.push('?');
        origin_form.push_str(query);
    }
    *http.uri_mut() = origin_form
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| RelayError::NoAnswer(NoAnswer::Other(e.to_string())))?;
    let host_header = if port == 80 { host.clone() } else { format!("{host}:{port}") };
    if let Ok(value) = host_header.parse() {
        http.headers_mut().insert(hyper::header::HOST, value);
    }
    http.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, reqwest::Body>(io).await?;
        // The connection is driven on its own task while the body is read; it ends with the relay, or
        // after the step's time and a margin, so that a server that never closes costs nothing more.
        tokio::spawn(tokio::time::timeout(timeout + Duration::from_secs(5), connection));
        sender.send_request(http).await
    };
    let answered = tokio::time::timeout(timeout, exchange).await;
    let failure = |err: Option<hyper::Error>| {
        let said = String::from_utf8_lossy(&crate::lock::unpoisoned(&stderr)).trim().to_owned();
        NoAnswer::of_relay(err.as_ref(), &said, timeout)
    };
    match answered {
        Ok(Ok(response)) => Ok(reqwest::Response::from(response.map(reqwest::Body::wrap))),
        Ok(Err(err)) => {
            // The relay's complaint arrives with its end: give it a moment to be read.
            let _ = wait_for_exit(engine, &exec_id).await;
            Err(RelayError::NoAnswer(failure(Some(err))))
        }
        Err(_) => Err(RelayError::NoAnswer(failure(None))),
    }
}

/// Waits briefly for a relay that failed to exit, so that its standard error has all it said.
async fn wait_for_exit(engine: &Engine, exec_id: &str) -> Result<Option<i64>, EngineError> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let code = engine.exec_exit_code(exec_id).await?;
        if code.is_some() || tokio::time::Instant::now() >= deadline {
            return Ok(code);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
