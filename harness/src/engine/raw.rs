//! Engine API calls whose answers bollard 0.21's types cannot hold: `/_ping`'s headers (which builder the
//! engine offers, whether it is Podman) and container states its enums do not know (Podman's transient
//! `stopped`, which makes bollard's whole inspect fail). In: a path of the Engine API; out: the answer's
//! status, headers and JSON, read leniently. Reached over the same unix socket or TCP address as bollard;
//! other transports (TLS, ssh) get `None`, and their callers fall back to bollard's typed calls.

use std::time::Duration;

/// How long one raw request may take: these are small reads that an engine answers in milliseconds.
const RAW_TIMEOUT: Duration = Duration::from_secs(10);

/// A plain HTTP client for the engine at `DOCKER_HOST`.
#[derive(Clone)]
pub struct RawClient {
    client: reqwest::Client,
    /// `http://engine` for a unix socket (the host name is not used), `http://host:port` for TCP.
    base: String,
}

/// One answer of the engine.
pub struct RawAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
}

impl RawAnswer {
    /// A header's value as text, `None` when it is absent or empty (Podman sends `Builder-Version:` empty).
    pub fn header(&self, name: &str) -> Option<String> {
        let value = self.headers.get(name)?.to_str().ok()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    }
}

impl RawClient {
    /// A client for `host` as DOCKER_HOST writes it (`unix:///run/docker.sock`, `/run/docker.sock`,
    /// `tcp://10.0.0.2:2375`); `None` for TLS (DOCKER_TLS_VERIFY) and ssh, which this client does not speak.
    pub fn for_host(host: &str) -> Option<RawClient> {
        let builder = reqwest::Client::builder().timeout(RAW_TIMEOUT).no_proxy();
        if let Some(path) = host.strip_prefix("unix://").or_else(|| host.starts_with('/').then_some(host)) {
            let client = builder.unix_socket(std::path::PathBuf::from(path)).build().ok()?;
            return Some(RawClient { client, base: "http://engine".to_owned() });
        }
        let tls = std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        let address = host.strip_prefix("tcp://").filter(|_| !tls)?;
        let client = builder.build().ok()?;
        Some(RawClient { client, base: format!("http://{}", address.trim_end_matches('/')) })
    }

    /// `GET path` (`/_ping`, `/v1.41/containers/{id}/json`).
    pub async fn get(&self, path: &str) -> Result<RawAnswer, String> {
        let answer =
            self.client.get(format!("{}{path}", self.base)).send().await.map_err(|e| super::with_causes(&e))?;
        let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
        let body = answer.bytes().await.map_err(|e| super::with_causes(&e))?;
        Ok(RawAnswer { status, headers, body })
    }

    /// `GET path` as JSON, `Err` with the engine's message for any status but 200.
    pub async fn get_json(&self, path: &str) -> Result<(u16, serde_json::Value), (Option<u16>, String)> {
        let answer = self.get(path).await.map_err(|e| (None, e))?;
        let json: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|e| (Some(answer.status), format!("the engine's answer is not JSON: {e}")))?;
        if answer.status != 200 {
            let message = json.get("message").and_then(|m| m.as_str()).unwrap_or("no message").to_owned();
            return Err((Some(answer.status), message));
        }
        Ok((answer.status, json))
    }
}

/// A container state word as bollard 0.21 knows them. Podman names more states than Docker: `stopped`
/// (the process has exited, Podman has not yet cleaned up after it: an exited container for every purpose
/// of ours), `configured` and `initialized` (made, never started). An unknown word becomes the empty state.
pub fn known_state(word: &str) -> &'static str {
    match word {
        "created" | "configured" | "initialized" => "created",
        "running" => "running",
        "paused" => "paused",
        "restarting" => "restarting",
        "removing" => "removing",
        "exited" | "stopped" => "exited",
        "dead" => "dead",
        "stopping" => "stopping",
        _ => "",
    }
}

/// Rewrites the state word at `pointer` (`/State/Status` of an inspect, `/State` of a list entry) into one
/// that bollard's enum knows.
pub fn make_state_known(value: &mut serde_json::Value, pointer: &str) {
    if let Some(state) = value.pointer_mut(pointer)
        && let Some(word) = state.as_str()
    {
        *state = serde_json::Value::String(known_state(word).to_owned());
    }
}

/// Whether bollard could not read an answer because a value is one its types do not know.
pub fn is_unknown_value(err: &bollard::errors::Error) -> bool {
    match err {
        bollard::errors::Error::JsonDataError { message, .. } => message.contains("unknown variant"),
        bollard::errors::Error::JsonSerdeError { err } => err.to_string().contains("unknown variant"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_states_read_as_docker_states() {
        let mut inspect = serde_json::json!({ "Id": "x", "State": { "Status": "stopped", "ExitCode": 3 } });
        make_state_known(&mut inspect, "/State/Status");
        assert_eq!(inspect["State"]["Status"], "exited");
        let parsed: bollard::models::ContainerInspectResponse =
            serde_json::from_value(inspect).expect("bollard reads it");
        let state = parsed.state.expect("state");
        assert_eq!(state.status, Some(bollard::models::ContainerStateStatusEnum::EXITED));
        assert_eq!(state.exit_code, Some(3));
        let mut listed = serde_json::json!({ "Id": "x", "State": "configured" });
        make_state_known(&mut listed, "/State");
        assert_eq!(listed["State"], "created");
        assert_eq!(known_state("something new"), "");
    }

    #[test]
    fn speaks_unix_sockets_and_plain_tcp_only() {
        assert!(RawClient::for_host("unix:///var/run/docker.sock").is_some());
        assert!(RawClient::for_host("/run/podman/podman.sock").is_some());
        assert!(RawClient::for_host("ssh://me@host").is_none());
        let tcp = RawClient::for_host("tcp://127.0.0.1:2375").expect("plain TCP");
        assert_eq!(tcp.base, "http://127.0.0.1:2375");
    }
}
