//! Which engine answered and what it offers, decided once at connect from what the engine says, before
//! anything is built or run: the product and version (`/version` and its components, `/_ping`'s
//! headers), the API version negotiated, the builder seatrial uses and why, the storage driver, and
//! whether container limits hold there (`/info`: rootless, cgroup version, the limits it reports).

use serde_json::Value;

use super::raw::RawClient;

/// The program behind the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Product {
    Docker,
    /// Podman's Docker-compatible API (`podman system service`).
    Podman,
    /// Something else that speaks the Engine API, by the name it gives.
    Other(String),
}

impl std::fmt::Display for Product {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Product::Docker => f.write_str("Docker"),
            Product::Podman => f.write_str("Podman"),
            Product::Other(name) => f.write_str(name),
        }
    }
}

/// The builder seatrial sends builds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// BuildKit through the Engine API, with a session per build (as `docker buildx` does).
    BuildKit,
    /// The engine's classic `/build` (Docker's legacy builder, Podman's buildah).
    Legacy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderChoice {
    pub builder: Builder,
    /// What the choice rests on, for `seatrial doctor`.
    pub why: String,
}

/// Whether the memory and pids limits seatrial puts on every container hold on this engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limits {
    Enforced,
    /// The engine accepts the limits and ignores them: a fork bomb or a memory hog is not stopped.
    NotEnforced {
        why: String,
    },
}

/// What the engine said about itself.
#[derive(Debug, Clone)]
pub struct Identity {
    pub product: Product,
    /// The engine's own version (`26.1.5`, `4.3.1`).
    pub version: String,
    /// The API version this client and the engine agreed on.
    pub api_version: String,
    /// The newest API version the engine speaks.
    pub engine_api_version: String,
    pub builder: BuilderChoice,
    pub storage_driver: String,
    /// Where the engine keeps images (`DockerRootDir`), as the engine's host sees it.
    pub root_dir: String,
    pub rootless: bool,
    /// `1` or `2`, when the engine says.
    pub cgroup_version: String,
    pub limits: Limits,
}

/// What the engine answered to `/_ping`, `/version` and `/info`, as JSON (read leniently: one value
/// bollard's enums do not know must not hide the rest).
#[derive(Debug, Default)]
pub struct EngineAnswers {
    /// `/_ping`'s `Builder-Version` header, when it sent a non-empty one.
    pub ping_builder_version: Option<String>,
    /// `/_ping`'s `Libpod-Api-Version` header: Podman, and the version its own API takes.
    pub ping_libpod: Option<String>,
    pub version: Value,
    pub info: Value,
    /// Podman's own `/libpod/info`, `Null` elsewhere: its compatible `/info` says nothing of rootless
    /// (measured: rootless Podman 4.3 on cgroup v1 lists no `name=rootless` and reports memory and pids
    /// limits as supported), its own says `host.security.rootless`.
    pub libpod_info: Value,
}

impl Identity {
    /// Reads who the engine is from its answers; `asked` is `SEATRIAL_BUILDER` (`legacy` or `buildkit`).
    pub fn from_answers(answers: &EngineAnswers, api_version: &str, asked: Option<&str>) -> Identity {
        let text = |value: &Value, key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        let components: Vec<String> = answers
            .version
            .get("Components")
            .and_then(Value::as_array)
            .map(|all| all.iter().map(|c| text(c, "Name")).collect())
            .unwrap_or_default();
        let product = if answers.ping_libpod.is_some() || components.iter().any(|c| c.starts_with("Podman")) {
            Product::Podman
        } else if components.is_empty() || components.iter().any(|c| c == "Engine") {
            // Engines before API 1.35 list no components; Docker's own is `Engine`.
            Product::Docker
        } else {
            let platform = answers.version.pointer("/Platform/Name").and_then(Value::as_str).unwrap_or_default();
            Product::Other(if platform.is_empty() { components[0].clone() } else { platform.to_owned() })
        };
        let version = text(&answers.version, "Version");
        let engine_api_version = text(&answers.version, "ApiVersion");
        let security = answers.info.get("SecurityOptions").and_then(Value::as_array);
        let rootless = security
            .is_some_and(|all| all.iter().any(|o| o.as_str().is_some_and(|o| o.contains("name=rootless"))))
            || answers.libpod_info.pointer("/host/security/rootless").and_then(Value::as_bool) == Some(true);
        let mut cgroup_version = text(&answers.info, "CgroupVersion");
        if let Some(libpod) = answers.libpod_info.pointer("/host/cgroupVersion").and_then(Value::as_str) {
            // Podman's own words: `v1`, `v2`.
            cgroup_version = libpod.trim_start_matches('v').to_owned();
        }
        let reported = |key: &str| answers.info.get(key).and_then(Value::as_bool);
        let limits = limits_verdict(rootless, &cgroup_version, reported("MemoryLimit"), reported("PidsLimit"));
        let builder = choose_builder(asked, answers.ping_builder_version.as_deref(), &product, &version, api_version);
        Identity {
            product,
            version,
            api_version: api_version.to_owned(),
            engine_api_version,
            builder,
            storage_driver: text(&answers.info, "Driver"),
            root_dir: text(&answers.info, "DockerRootDir"),
            rootless,
            cgroup_version,
            limits,
        }
    }

    /// `Docker 26.1.5` or `Podman 4.3.1 (rootless)`.
    pub fn describe(&self) -> String {
        let rootless = if self.rootless { " (rootless)" } else { "" };
        format!("{} {}{rootless}", self.product, self.version)
    }
}

/// The builder, from what the engine says it offers. `/_ping`'s `Builder-Version: 2` is Docker 23+ saying
/// BuildKit is its default; Docker 18.09 to 22 send no header (or `1`) and still run BuildKit builds
/// through the API (API 1.39+). Podman answers a BuildKit request with buildah in the legacy format, so
/// asking it for BuildKit only builds twice.
pub fn choose_builder(
    asked: Option<&str>,
    ping_builder_version: Option<&str>,
    product: &Product,
    version: &str,
    api_version: &str,
) -> BuilderChoice {
    let choice = |builder, why: String| BuilderChoice { builder, why };
    match asked {
        Some("legacy") => return choice(Builder::Legacy, "SEATRIAL_BUILDER=legacy".to_owned()),
        Some("buildkit") => return choice(Builder::BuildKit, "SEATRIAL_BUILDER=buildkit".to_owned()),
        _ => {}
    }
    if *product == Product::Podman {
        return choice(Builder::Legacy, format!("Podman {version} builds with buildah; its API has no BuildKit"));
    }
    if ping_builder_version == Some("2") {
        return choice(Builder::BuildKit, "the engine's /_ping says Builder-Version 2".to_owned());
    }
    let api = parse_api_version(api_version);
    if *product == Product::Docker && api >= Some((1, 39)) {
        return choice(Builder::BuildKit, format!("Docker {version} runs BuildKit builds through API {api_version}"));
    }
    choice(Builder::Legacy, format!("{product} {version} (API {api_version}) offers no BuildKit through its API"))
}

/// `1.41` as `(1, 41)`.
pub fn parse_api_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Whether the limits hold: a rootless engine on a cgroup v1 host has no cgroup of its own to put them in
/// (it accepts them and ignores them), and an engine may say outright that it lacks the memory or pids
/// controller.
pub fn limits_verdict(
    rootless: bool,
    cgroup_version: &str,
    memory_limit: Option<bool>,
    pids_limit: Option<bool>,
) -> Limits {
    if rootless && cgroup_version == "1" {
        return Limits::NotEnforced {
            why: "a rootless engine on a cgroup v1 host cannot apply memory or pids limits (it needs cgroup v2 with \
                  delegation)"
                .to_owned(),
        };
    }
    let missing: Vec<&str> = [("memory", memory_limit), ("pids", pids_limit)]
        .into_iter()
        .filter(|(_, reported)| *reported == Some(false))
        .map(|(name, _)| name)
        .collect();
    if missing.is_empty() {
        Limits::Enforced
    } else {
        Limits::NotEnforced { why: format!("the engine reports no {} limit support", missing.join(" and ")) }
    }
}

/// Asks the engine who it is: `/_ping`'s headers through the raw client where it reaches the engine,
/// `/version` and `/info` as JSON (raw, else bollard's typed answers turned back into JSON).
pub async fn ask(docker: &bollard::Docker, raw: Option<&RawClient>) -> Result<EngineAnswers, String> {
    let mut answers = EngineAnswers::default();
    if let Some(raw) = raw {
        if let Ok(ping) = raw.get("/_ping").await {
            answers.ping_builder_version = ping.header("Builder-Version");
            answers.ping_libpod = ping.header("Libpod-Api-Version");
        }
        if let Some(libpod) = &answers.ping_libpod
            && let Ok((_, info)) = raw.get_json(&format!("/v{libpod}/libpod/info")).await
        {
            answers.libpod_info = info;
        }
        let version = format!("/v{}", docker.client_version());
        if let (Ok((_, v)), Ok((_, i))) =
            (raw.get_json(&format!("{version}/version")).await, raw.get_json(&format!("{version}/info")).await)
        {
            answers.version = v;
            answers.info = i;
            return Ok(answers);
        }
    }
    let version = docker.version().await.map_err(|e| super::with_causes(&e))?;
    answers.version = serde_json::to_value(version).map_err(|e| e.to_string())?;
    // An info that bollard cannot read (a value its enums lack) leaves the facts it holds unknown.
    answers.info = match docker.info().await {
        Ok(info) => serde_json::to_value(info).unwrap_or_default(),
        Err(_) => Value::Null,
    };
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answers(components: &[&str], ping: Option<&str>, libpod: bool, info: Value) -> EngineAnswers {
        let components: Vec<Value> = components.iter().map(|c| json!({ "Name": c, "Version": "x" })).collect();
        EngineAnswers {
            ping_builder_version: ping.map(str::to_owned),
            ping_libpod: libpod.then(|| "4.3.1".to_owned()),
            version: json!({ "Version": "v", "ApiVersion": "1.45", "Components": components, "Platform": { "Name": "p" } }),
            info,
            libpod_info: Value::Null,
        }
    }

    #[test]
    fn the_builder_follows_what_each_engine_offers() {
        let docker_20 =
            Identity::from_answers(&answers(&["Engine", "containerd"], None, false, json!({})), "1.41", None);
        assert_eq!((docker_20.product.clone(), docker_20.builder.builder), (Product::Docker, Builder::BuildKit));
        let docker_26 = Identity::from_answers(&answers(&["Engine"], Some("2"), false, json!({})), "1.45", None);
        assert_eq!(docker_26.builder.why, "the engine's /_ping says Builder-Version 2");
        let podman =
            Identity::from_answers(&answers(&["Podman Engine", "Conmon"], None, true, json!({})), "1.41", None);
        assert_eq!((podman.product.clone(), podman.builder.builder), (Product::Podman, Builder::Legacy));
        let old = Identity::from_answers(&answers(&["Engine"], None, false, json!({})), "1.38", None);
        assert_eq!(old.builder.builder, Builder::Legacy);
        let forced = Identity::from_answers(&answers(&["Engine"], Some("2"), false, json!({})), "1.45", Some("legacy"));
        assert_eq!(forced.builder.builder, Builder::Legacy);
    }

    #[test]
    fn limits_are_not_enforced_rootless_on_cgroup_v1() {
        let rootless_v1 = json!({ "SecurityOptions": ["name=seccomp,profile=default", "name=rootless"],
                                  "CgroupVersion": "1", "MemoryLimit": true, "PidsLimit": true });
        let identity = Identity::from_answers(&answers(&["Podman Engine"], None, true, rootless_v1), "1.41", None);
        assert!(identity.rootless);
        assert!(matches!(identity.limits, Limits::NotEnforced { .. }), "{:?}", identity.limits);
        // What rootless Podman 4.3 on this cgroup v1 host answered: nothing in its compatible /info.
        let compatible = json!({ "SecurityOptions": ["name=seccomp,profile=default"], "CgroupVersion": "1",
                                 "MemoryLimit": true, "PidsLimit": true });
        let mut podman = answers(&["Podman Engine"], None, true, compatible);
        podman.libpod_info = json!({ "host": { "security": { "rootless": true }, "cgroupVersion": "v1" } });
        let identity = Identity::from_answers(&podman, "1.41", None);
        assert!(identity.rootless && identity.cgroup_version == "1", "{identity:?}");
        assert!(matches!(identity.limits, Limits::NotEnforced { .. }), "{:?}", identity.limits);
        assert_eq!(limits_verdict(true, "2", Some(true), Some(true)), Limits::Enforced);
        assert_eq!(limits_verdict(false, "1", Some(true), Some(true)), Limits::Enforced);
        assert_eq!(
            limits_verdict(false, "1", Some(true), Some(false)),
            Limits::NotEnforced { why: "the engine reports no pids limit support".to_owned() }
        );
    }
}
