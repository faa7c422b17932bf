//! Reading an HTTP answer within bounds whatever the server sends: at most a few MiB of its body, for
//! no longer than the step's timeout; and why there was no answer, in words that do not depend on timing.

use std::error::Error as _;
use std::time::Duration;

use crate::check::http::{BodyCut, BodyLength, byte_size};

/// The most of a body read when an expectation looks into it: a page or a JSON document fits many
/// times over, and several scenarios at once stay far from the memory an endless body would take.
pub const BODY_LIMIT: usize = 4 << 20;
/// The most of a body read when only its status or headers are expected: enough to show in a failure,
/// and for an ordinary answer to end, so that the server sees a clean close rather than a reset.
pub const SHOWN_BODY_LIMIT: usize = 64 << 10;

/// What hyper, under reqwest, accepts of an answer's head: its read buffer (`DEFAULT_MAX_BUFFER_SIZE`)
/// and its header count (`DEFAULT_MAX_HEADERS`); a larger head is refused, never held.
const HEAD_LIMIT_KIB: usize = (8192 + 4096 * 100) >> 10;
const HEADER_LINES_LIMIT: usize = 100;

/// Why a request got no usable HTTP answer. The transport's own words depend on the race ("reset by
/// peer" or "closed before message completed" for the same server): these do not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoAnswer {
    /// Refused, or accepted and closed: which of the two depends on the engine's port forwarding, not on
    /// the server (Docker's userland proxy accepts every connection and closes it when nothing answers in
    /// the container; Podman's and an iptables-only Docker's forwarding refuse it), so one text says both.
    #[error("the connection was refused or closed without an HTTP answer")]
    Closed,
    #[error("the server accepted the connection but sent no HTTP answer within {0:?}")]
    Silent(Duration),
    #[error("no connection within {0:?}")]
    NoConnection(Duration),
    #[error(
        "the answer's headers are larger than the client accepts (at most {HEADER_LINES_LIMIT} header lines and \
         {HEAD_LIMIT_KIB} KiB)"
    )]
    HeadTooLarge,
    #[error("the server answered, but not in HTTP: {0}")]
    NotHttp(String),
    #[error("the answer could not be read: {0}")]
    Unreadable(String),
    #[error("{0}")]
    Other(String),
}

/// The hyper error behind a reqwest error, if one is: it knows what went wrong in the HTTP exchange.
fn hyper_cause(err: &reqwest::Error) -> Option<&hyper::Error> {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return Some(hyper);
        }
        source = cause.source();
    }
    None
}

/// The error and all its causes, as one line.
fn chain(err: &reqwest::Error) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

impl NoAnswer {
    /// Why `err` left a request that had `timeout` to complete without an answer.
    pub fn of(err: &reqwest::Error, timeout: Duration) -> NoAnswer {
        let hyper = hyper_cause(err);
        // Checked before the timeout: a server that sends headers without end is refused at the limit.
        if hyper.is_some_and(hyper::Error::is_parse_too_large) {
            return NoAnswer::HeadTooLarge;
        }
        if err.is_timeout() {
            return if err.is_connect() { NoAnswer::NoConnection(timeout) } else { NoAnswer::Silent(timeout) };
        }
        if let Some(hyper) = hyper.filter(|h| h.is_parse() || h.is_parse_status()) {
            // hyper's message without its causes: "invalid HTTP version parsed".
            let said = hyper.to_string();
            return NoAnswer::NotHttp(said.split(": ").next().unwrap_or(&said).to_owned());
        }
        let chain = chain(err);
        let lower = chain.to_ascii_lowercase();
        if lower.contains("refused")
            || lower.contains("reset")
            || lower.contains("closed")
            || lower.contains("connection error")
        {
            NoAnswer::Closed
        } else if err.is_decode() || err.is_body() {
            NoAnswer::Unreadable(chain)
        } else {
            NoAnswer::Other(chain)
        }
    }
}

impl NoAnswer {
    /// The same, said of the step's whole `timeout` (a request after a redirect had only what was left).
    pub fn within(self, timeout: Duration) -> NoAnswer {
        match self {
            NoAnswer::Silent(_) => NoAnswer::Silent(timeout),
            NoAnswer::NoConnection(_) => NoAnswer::NoConnection(timeout),
            other => other,
        }
    }

    /// Why a request relayed through a program in a container got no answer: `err` is what hyper said of
    /// the exchange (`None`: nothing came within `timeout`), `said` what the relay program printed on its
    /// standard error ("nc: can't connect to remote host (172.18.0.2): Connection refused").
    pub fn of_relay(err: Option<&hyper::Error>, said: &str, timeout: Duration) -> NoAnswer {
        let last_line = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_owned();
        let lower = last_line.to_ascii_lowercase();
        match err {
            None if last_line.is_empty() => NoAnswer::Silent(timeout),
            None => NoAnswer::Other(format!("no answer within {timeout:?}; the relay said: {last_line}")),
            Some(_) if lower.contains("refused") => NoAnswer::Closed,
            // Podman's exec attach, when the relay program ends before it was read: the relayed
            // connection ended without an answer, as with Docker's attach.
            Some(_) if lower.contains("/attach") && lower.contains("reset by peer") => NoAnswer::Closed,
            Some(_) if !last_line.is_empty() => NoAnswer::Other(format!("the relay said: {last_line}")),
            Some(err) if err.is_parse_too_large() => NoAnswer::HeadTooLarge,
            Some(err) if err.is_parse() || err.is_parse_status() => {
                let said = err.to_string();
                NoAnswer::NotHttp(said.split(": ").next().unwrap_or(&said).to_owned())
            }
            Some(err) if err.is_incomplete_message() || err.is_closed() => NoAnswer::Closed,
            Some(err) => NoAnswer::Other(err.to_string()),
        }
    }
}

/// Whether the connection ended before the body did: hyper says so with an I/O error of kind
/// `UnexpectedEof` under its body error, or as an incomplete message; a reset says the same.
fn closed_early(err: &reqwest::Error) -> bool {
    if hyper_cause(err).is_some_and(|h| h.is_incomplete_message() || h.is_closed()) {
        return true;
    }
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
            return matches!(io.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe);
        }
        source = cause.source();
    }
    false
}

/// A body as far as it was read.
#[derive(Debug)]
pub struct ReadBody {
    /// The body as text (invalid UTF-8 replaced); when cut, without a character split by the cut.
    pub text: String,
    pub cut: Option<BodyCut>,
}

/// A body that broke off: the answer itself is wrong, whatever part of it was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenBody {
    #[error("the connection was closed after {} of the body, before its end ({length})", byte_size(*read))]
    Closed { read: u64, length: BodyLength },
    #[error("the body could not be read after {}: {reason}", byte_size(*read))]
    Unreadable { read: u64, reason: String },
}

/// How the answer says its body ends, from its head.
fn body_length(response: &reqwest::Response) -> BodyLength {
    if let Some(length) = response.content_length() {
        return BodyLength::Declared(length);
    }
    let chunked = response
        .headers()
        .get_all(reqwest::header::TRANSFER_ENCODING)
        .iter()
        .any(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase().contains("chunked"));
    if chunked { BodyLength::Chunked } else { BodyLength::UntilClose }
}

/// Reads `response`'s body chunk by chunk, keeping at most `limit` bytes: past that, or once the
/// request's `timeout` has passed (at `deadline`: reqwest applies it to the body of its own requests, and
/// a relayed answer has it here), it stops and says so. The connection is then dropped, which is all an
/// endless body costs.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
    deadline: tokio::time::Instant,
) -> Result<ReadBody, BrokenBody> {
    let length = body_length(&response);
    let mut bytes: Vec<u8> = Vec::new();
    let cut = loop {
        let Ok(chunk) = tokio::time::timeout_at(deadline, response.chunk()).await else {
            break Some(BodyCut::StillArriving { after: timeout, read: bytes.len() as u64, length });
        };
        match chunk {
            Ok(None) => break None,
            Ok(Some(chunk)) => {
                let room = limit - bytes.len();
                if chunk.len() > room {
                    bytes.extend_from_slice(&chunk[..room]);
                    break Some(BodyCut::OverLimit { limit: limit as u64, length });
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(err) if err.is_timeout() => {
                break Some(BodyCut::StillArriving { after: timeout, read: bytes.len() as u64, length });
            }
            Err(err) => {
                let read = bytes.len() as u64;
                return Err(if closed_early(&err) {
                    BrokenBody::Closed { read, length }
                } else {
                    BrokenBody::Unreadable { read, reason: chain(&err) }
                });
            }
        }
    };
    if cut.is_some() {
        let whole = without_split_char(&bytes).len();
        bytes.truncate(whole);
    }
    let text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok(ReadBody { text, cut })
}

/// `bytes` without a UTF-8 character that a cut split at its end: shown as U+FFFD, it would read as if
/// the server had sent invalid text.
fn without_split_char(bytes: &[u8]) -> &[u8] {
    let tail = bytes.len().saturating_sub(3);
    for at in (tail..bytes.len()).rev() {
        let byte = bytes[at];
        let is_continuation = byte & 0xC0 == 0x80;
        if is_continuation {
            continue;
        }
        let wanted = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if bytes.len() - at < wanted { &bytes[..at] } else { bytes };
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server on a free loopback port that reads one request's head, then does what `answer` does
    /// with the connection; the URL to ask it.
    async fn server<F, Fut>(answer: F) -> String
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                tokio::spawn(answer(stream));
            }
        });
        format!("http://127.0.0.1:{port}/")
    }

    const TIMEOUT: Duration = Duration::from_millis(500);

    /// Later than reqwest's own timeout, which these requests have: the body's cut comes from it.
    fn deadline() -> tokio::time::Instant {
        tokio::time::Instant::now() + 2 * TIMEOUT
    }

    async fn get(url: &str) -> Result<reqwest::Response, reqwest::Error> {
        reqwest::Client::builder().no_proxy().build().expect("client").get(url).timeout(TIMEOUT).send().await
    }

    #[tokio::test]
    async fn an_endless_body_is_read_up_to_the_limit() {
        let url = server(|mut stream| async move {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
            let chunk = format!("1000\r\n{}\r\n", "x".repeat(0x1000));
            while stream.write_all(chunk.as_bytes()).await.is_ok() {}
        })
        .await;
        let body = read_body(get(&url).await.expect("an answer"), 10_000, TIMEOUT, deadline()).await.expect("a body");
        assert_eq!(body.cut, Some(BodyCut::OverLimit { limit: 10_000, length: BodyLength::Chunked }));
        assert_eq!(body.text.len(), 10_000);
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_whole() {
        let url = server(|mut stream| async move {
            let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\n\r\n{}", "y".repeat(5000)).as_bytes()).await;
        })
        .await;
        let body = read_body(get(&url).await.expect("an answer"), 5000, TIMEOUT, deadline()).await.expect("a body");
        assert_eq!((body.cut, body.text.len()), (None, 5000));
    }

    #[tokio::test]
    async fn a_body_still_arriving_at_the_timeout_is_cut_there() {
        let url = server(|mut stream| async move {
            let _ = stream.write_all("HTTP/1.1 200 OK\r\nContent-Length: 3000000000\r\n\r\nstarted é".as_bytes()).await;
            // Half of a two-byte character, then nothing: the cut must not show it as invalid text.
            let _ = stream.write_all(&"é".as_bytes()[..1]).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let body =
            read_body(get(&url).await.expect("an answer"), BODY_LIMIT, TIMEOUT, deadline()).await.expect("a body");
        let length = BodyLength::Declared(3_000_000_000);
        assert_eq!(body.cut, Some(BodyCut::StillArriving { after: TIMEOUT, read: 11, length }));
        assert_eq!(body.text, "started é");
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_is_broken_not_cut() {
        let url = server(|mut stream| async move {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this").await;
        })
        .await;
        let broken =
            read_body(get(&url).await.expect("an answer"), BODY_LIMIT, TIMEOUT, deadline()).await.expect_err("broken");
        assert_eq!(
            broken.to_string(),
            "the connection was closed after 9 bytes of the body, before its end (Content-Length 100)"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_and_one_whose_head_never_ends_are_named() {
        let silent = server(|stream| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        })
        .await;
        let err = get(&silent).await.expect_err("no answer");
        assert_eq!(
            NoAnswer::of(&err, TIMEOUT).to_string(),
            "the server accepted the connection but sent no HTTP answer within 500ms"
        );
        let endless_head = server(|mut stream| async move {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n").await;
            let line = format!("x-filler: {}\r\n", "z".repeat(1000));
            while stream.write_all(line.as_bytes()).await.is_ok() {}
        })
        .await;
        let err = get(&endless_head).await.expect_err("no usable answer");
        assert_eq!(NoAnswer::of(&err, TIMEOUT), NoAnswer::HeadTooLarge);
        let not_http = server(|mut stream| async move {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let err = get(&not_http).await.expect_err("not HTTP");
        assert_eq!(
            NoAnswer::of(&err, TIMEOUT).to_string(),
            "the server answered, but not in HTTP: invalid HTTP version parsed"
        );
    }

    #[test]
    fn a_character_split_by_the_cut_is_left_out() {
        let text = "né€𝄞".as_bytes();
        assert_eq!(without_split_char(text), text);
        assert_eq!(without_split_char(&text[..text.len() - 1]), "né€".as_bytes());
        assert_eq!(without_split_char(&text[..text.len() - 3]), "né€".as_bytes());
        assert_eq!(without_split_char(&text[..2]), b"n");
        assert_eq!(without_split_char(b"plain"), b"plain");
        assert_eq!(without_split_char(b""), b"");
    }
}
