//! The stack as compose resolved it (`config`), rewritten into the copy that `up` is given: isolated (a
//! project name of the scenario's own, host ports compose picks on 127.0.0.1, no fixed container or
//! resource names), labelled for the sweep, its builds replaced by seatrial's images, and, when grading,
//! refused where it would reach the host. Keys seatrial does not know stay as they are: a typed model
//! that dropped keys would change the stack under test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};

/// A service's `build:`, for seatrial's builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBuild {
    pub service: String,
    pub context: PathBuf,
    /// Relative to the context, with `/` separators.
    pub dockerfile: String,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
}

/// What the executor needs to know of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFacts {
    pub name: String,
    /// Container ports it publishes.
    pub ports: Vec<u16>,
    pub depends_on: Vec<String>,
    /// The profiles that enable it; empty: always on.
    pub profiles: Vec<String>,
    /// Its healthcheck's command, as written (`CMD pg_isready -U app`); `None`: it has none.
    pub healthcheck: Option<String>,
    pub stop_grace_period: Option<Duration>,
    pub stop_signal: Option<String>,
    /// Bind mounts and named volumes, as container paths, for the diagnosis of files lost on recreate.
    pub mount_targets: Vec<String>,
}

/// What the rewrite needs besides the model.
pub struct RewriteInput<'a> {
    pub labels: &'a HashMap<String, String>,
    /// The image seatrial built for each service with `build:`.
    pub built: &'a HashMap<String, String>,
    /// Grading: what would reach the host is refused, bind mounts stay below these folders.
    pub untrusted: Option<&'a [PathBuf]>,
    pub project: &'a str,
    /// Each service's image's `VOLUME`s, to declare as anonymous volumes of the service: compose v1 hands
    /// an image's anonymous volumes to a re-created container only when the image lists them in its
    /// legacy `ContainerConfig`, which BuildKit and `docker import` leave empty. Empty: none declared.
    pub image_volumes: &'a HashMap<String, Vec<String>>,
}

/// The rewritten model, what was changed that the user should know, and the services as facts.
#[derive(Debug)]
pub struct Rewritten {
    pub model: Value,
    pub notes: Vec<String>,
    pub services: Vec<ServiceFacts>,
}

/// A healthcheck is run at most this far apart in the copy, so that a service is seen healthy soon after
/// it is; its retries grow to keep the time before it is declared unhealthy.
pub const HEALTHCHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The services that compose would build, as seatrial's builder takes them.
pub fn builds(model: &Value) -> Result<Vec<ServiceBuild>, String> {
    let mut builds = Vec::new();
    for (name, service) in services(model) {
        let Some(build) = service.get("build") else { continue };
        let (context, dockerfile, args, target) = match build {
            Value::String(context) => (context.clone(), None, Vec::new(), None),
            Value::Object(b) => {
                if b.contains_key("dockerfile_inline") {
                    return Err(format!(
                        "service `{name}` builds from `dockerfile_inline`, which seatrial's builder does not take: \
                         put the Dockerfile in a file"
                    ));
                }
                let context = b.get("context").and_then(Value::as_str).unwrap_or(".").to_owned();
                let dockerfile = b.get("dockerfile").and_then(Value::as_str).map(str::to_owned);
                let args = match b.get("args") {
                    Some(Value::Object(args)) => {
                        args.iter().filter_map(|(k, v)| scalar(v).map(|v| (k.clone(), v))).collect()
                    }
                    Some(Value::Array(args)) => args
                        .iter()
                        .filter_map(Value::as_str)
                        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                        .collect(),
                    _ => Vec::new(),
                };
                (context, dockerfile, args, b.get("target").and_then(Value::as_str).map(str::to_owned))
            }
            _ => continue,
        };
        if context.contains("://") || context.starts_with("git@") {
            return Err(format!("service `{name}` builds from `{context}`: seatrial builds from a local folder only"));
        }
        let context = PathBuf::from(context);
        let dockerfile = dockerfile.unwrap_or_else(|| "Dockerfile".to_owned());
        // compose takes a Dockerfile path relative to the context, or absolute inside it.
        let dockerfile = match Path::new(&dockerfile).strip_prefix(&context) {
            Ok(inside) if Path::new(&dockerfile).is_absolute() => inside.display().to_string(),
            _ => dockerfile,
        };
        builds.push(ServiceBuild {
            service: name.clone(),
            context,
            dockerfile: dockerfile.replace('\\', "/"),
            args,
            target,
        });
    }
    Ok(builds)
}

/// Rewrites the model as said in the module's header; `Err` names what grading refuses.
pub fn rewrite(mut model: Value, input: &RewriteInput<'_>) -> Result<Rewritten, String> {
    let mut notes = Vec::new();
    let mut facts = Vec::new();
    let Some(root) = model.as_object_mut() else { return Err("the compose model is not a mapping".to_owned()) };
    // `-p` names the project; v1 refuses a `name` key of its own.
    root.remove("name");
    let labels: Map<String, Value> = input.labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let Some(Value::Object(services)) = root.get_mut("services") else {
        return Err("the compose file defines no `services`".to_owned());
    };
    let mut refused = Vec::new();
    for (name, service) in services.iter_mut() {
        let Some(service) = service.as_object_mut() else { continue };
        if let Some(roots) = input.untrusted {
            refused.extend(refusals(name, service, roots));
        }
        if let Some(fixed) = service.remove("container_name") {
            notes.push(format!(
                "service `{name}`: `container_name: {}` is dropped, so that runs side by side cannot clash; steps \
                 name the service",
                scalar(&fixed).unwrap_or_default()
            ));
        }
        let ports = rewrite_ports(name, service, &mut notes);
        merge_labels(service, &labels);
        if let Some(tag) = input.built.get(name) {
            service.remove("build");
            service.insert("image".to_owned(), Value::String(tag.clone()));
        }
        if let Some(targets) = input.image_volumes.get(name) {
            declare_image_volumes(service, targets);
        }
        let healthcheck = quicken_healthcheck(service);
        facts.push(ServiceFacts {
            name: name.clone(),
            ports,
            depends_on: match service.get("depends_on") {
                Some(Value::Object(d)) => d.keys().cloned().collect(),
                Some(Value::Array(d)) => d.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            },
            profiles: match service.get("profiles") {
                Some(Value::Array(p)) => p.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            },
            healthcheck,
            stop_grace_period: service
                .get("stop_grace_period")
                .and_then(scalar)
                .and_then(|t| crate::scenario::duration::parse_duration(&t).ok()),
            stop_signal: service.get("stop_signal").and_then(scalar),
            mount_targets: mount_targets(service),
        });
    }
    if !refused.is_empty() {
        return Err(refused.join("; "));
    }
    // Resources with a fixed `name:` would be shared by every run of the file: each gets the project's.
    let project = input.project;
    for kind in ["networks", "volumes"] {
        let section = root.entry(kind).or_insert_with(|| Value::Object(Map::new()));
        if section.is_null() {
            *section = Value::Object(Map::new());
        }
        let Some(section) = section.as_object_mut() else { continue };
        if kind == "networks" && !section.contains_key("default") {
            section.insert("default".to_owned(), json!({}));
        }
        for (key, resource) in section.iter_mut() {
            if resource.is_null() {
                *resource = json!({});
            }
            let Some(resource) = resource.as_object_mut() else { continue };
            if is_external(resource) {
                continue;
            }
            let own = format!("{project}_{key}");
            if let Some(fixed) = resource.get("name").and_then(Value::as_str).map(str::to_owned)
                && fixed != own
            {
                notes.push(format!(
                    "{} `{key}`: its fixed name `{fixed}` is replaced by one of the run's own, so that runs side by \
                     side cannot share it",
                    &kind[..kind.len() - 1]
                ));
                resource.insert("name".to_owned(), Value::String(own));
            }
            merge_labels(resource, &labels);
        }
    }
    facts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Rewritten { model, notes, services: facts })
}

/// The services of the model, in its order.
pub fn services(model: &Value) -> Vec<(&String, &Value)> {
    match model.get("services") {
        Some(Value::Object(s)) => s.iter().collect(),
        _ => Vec::new(),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_external(resource: &Map<String, Value>) -> bool {
    match resource.get("external") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(_)) => true,
        _ => false,
    }
}

fn merge_labels(target: &mut Map<String, Value>, ours: &Map<String, Value>) {
    let mut merged = match target.remove("labels") {
        Some(Value::Object(map)) => map,
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_owned(), Value::String(v.to_owned())),
                None => (l.to_owned(), Value::String(String::new())),
            })
            .collect(),
        _ => Map::new(),
    };
    merged.extend(ours.clone());
    target.insert("labels".to_owned(), Value::Object(merged));
}

/// Every published port becomes `127.0.0.1::<container port>`: compose picks a free host port, so that a
/// `"8000:8000"` runs twice side by side, and nothing is reachable from outside the machine. Returns the
/// container ports.
fn rewrite_ports(name: &str, service: &mut Map<String, Value>, notes: &mut Vec<String>) -> Vec<u16> {
    let Some(Value::Array(ports)) = service.get("ports") else { return Vec::new() };
    let mut container_ports = Vec::new();
    let mut rewritten = Vec::new();
    let mut fixed = Vec::new();
    for port in ports {
        let (target, protocol, published) = match port {
            Value::Object(p) => (
                p.get("target").and_then(scalar).unwrap_or_default(),
                p.get("protocol").and_then(Value::as_str).unwrap_or("tcp").to_owned(),
                p.get("published").and_then(scalar),
            ),
            Value::String(_) | Value::Number(_) => {
                let text = scalar(port).unwrap_or_default();
                let (spec, protocol) = match text.split_once('/') {
                    Some((spec, protocol)) => (spec.to_owned(), protocol.to_owned()),
                    None => (text.clone(), "tcp".to_owned()),
                };
                let mut parts: Vec<&str> = spec.rsplitn(2, ':').collect();
                let target = parts.remove(0).to_owned();
                let published = parts.first().map(|p| p.rsplit(':').next().unwrap_or("").to_owned());
                (target, protocol, published.filter(|p| !p.is_empty()))
            }
            _ => continue,
        };
        if let Some(published) = published {
            fixed.push(published);
        }
        // A range (`8000-8002`) is published as a range.
        for one in expand_range(&target) {
            if !container_ports.contains(&one) {
                container_ports.push(one);
            }
        }
        let suffix = if protocol == "tcp" { String::new() } else { format!("/{protocol}") };
        rewritten.push(Value::String(format!("127.0.0.1::{target}{suffix}")));
    }
    if !fixed.is_empty() {
        notes.push(format!(
            "service `{name}`: its host ports ({}) are published on free ports of 127.0.0.1 instead; steps name the \
             container port",
            fixed.join(", ")
        ));
    }
    service.insert("ports".to_owned(), Value::Array(rewritten));
    container_ports
}

fn expand_range(target: &str) -> Vec<u16> {
    match target.split_once('-') {
        Some((from, to)) => match (from.parse::<u16>(), to.parse::<u16>()) {
            (Ok(from), Ok(to)) if from <= to && to - from < 1000 => (from..=to).collect(),
            _ => Vec::new(),
        },
        None => target.parse().into_iter().collect(),
    }
}

/// Checks that run every `interval` are run at most [`HEALTHCHECK_INTERVAL`] apart, with as many more
/// retries, so that `depends_on: service_healthy` goes on as soon as the service is healthy while an
/// unhealthy one is still declared so after the same time. Returns whether the service has a check.
fn quicken_healthcheck(service: &mut Map<String, Value>) -> Option<String> {
    let Some(Value::Object(check)) = service.get_mut("healthcheck") else { return None };
    if check.get("disable").and_then(Value::as_bool) == Some(true)
        || check.get("test").and_then(Value::as_array).and_then(|t| t.first()).and_then(Value::as_str) == Some("NONE")
    {
        return None;
    }
    let test = match check.get("test") {
        Some(Value::Array(words)) => words.iter().filter_map(scalar).collect::<Vec<_>>().join(" "),
        Some(other) => scalar(other).unwrap_or_default(),
        None => "(the image's own)".to_owned(),
    };
    let interval = check
        .get("interval")
        .and_then(scalar)
        .and_then(|t| crate::scenario::duration::parse_duration(&t).ok())
        .unwrap_or(Duration::from_secs(30));
    if interval > HEALTHCHECK_INTERVAL {
        let retries = check.get("retries").and_then(Value::as_u64).unwrap_or(3);
        let factor = interval.as_millis().div_ceil(HEALTHCHECK_INTERVAL.as_millis()) as u64;
        check.insert("interval".to_owned(), Value::String(format!("{}ms", HEALTHCHECK_INTERVAL.as_millis())));
        check.insert("retries".to_owned(), Value::from(retries.saturating_mul(factor)));
        // Compose v2 and Docker 25+ probe this often while the service starts.
        check.remove("start_interval");
    }
    Some(test)
}

/// Adds each of `targets` that no volume of the service covers as an anonymous volume (`- /data`).
fn declare_image_volumes(service: &mut Map<String, Value>, targets: &[String]) {
    let covered = mount_targets(service);
    let clean = |p: &str| p.trim_end_matches('/').to_owned();
    let missing: Vec<Value> = targets
        .iter()
        .filter(|t| !covered.iter().any(|c| clean(c) == clean(t)))
        .map(|t| Value::String(t.clone()))
        .collect();
    if missing.is_empty() {
        return;
    }
    match service.entry("volumes").or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(volumes) => volumes.extend(missing),
        other => *other = Value::Array(missing),
    }
}

fn mount_targets(service: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(volumes)) = service.get("volumes") else { return Vec::new() };
    volumes
        .iter()
        .filter_map(|v| match v {
            Value::Object(m) => m.get("target").and_then(Value::as_str).map(str::to_owned),
            Value::String(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                match parts.as_slice() {
                    [target] => Some((*target).to_owned()),
                    [_, target] | [_, target, _] => Some((*target).to_owned()),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

/// What grading refuses in a submission's service: what reaches the host or other submissions.
fn refusals(name: &str, service: &Map<String, Value>, roots: &[PathBuf]) -> Vec<String> {
    let mut refused = Vec::new();
    let mut refuse = |what: String| refused.push(format!("service `{name}` {what}"));
    if service.get("privileged").and_then(Value::as_bool) == Some(true) {
        refuse("asks to run `privileged`".to_owned());
    }
    for key in ["network_mode", "pid", "ipc", "userns_mode", "uts", "cgroup"] {
        if let Some(mode) = service.get(key).and_then(Value::as_str)
            && (mode == "host" || (key != "network_mode" && mode.starts_with("container:")))
        {
            refuse(format!("asks for `{key}: {mode}`"));
        }
    }
    if let Some(Value::Array(caps)) = service.get("cap_add")
        && !caps.is_empty()
    {
        let caps: Vec<String> = caps.iter().filter_map(scalar).collect();
        refuse(format!("adds capabilities ({})", caps.join(", ")));
    }
    if let Some(Value::Array(devices)) = service.get("devices")
        && !devices.is_empty()
    {
        refuse("asks for host devices".to_owned());
    }
    if let Some(Value::Array(options)) = service.get("security_opt")
        && options.iter().filter_map(Value::as_str).any(|o| o.contains("unconfined"))
    {
        refuse("turns off its security profile (`security_opt: ...unconfined`)".to_owned());
    }
    if let Some(Value::Array(volumes)) = service.get("volumes") {
        for volume in volumes {
            let source = match volume {
                Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("bind") => {
                    m.get("source").and_then(Value::as_str).map(str::to_owned)
                }
                Value::String(s) => s.split(':').next().filter(|s| s.starts_with('/')).map(str::to_owned),
                _ => None,
            };
            let Some(source) = source else { continue };
            // The folder as it really is: no symlink inside the submission may lead out of it.
            let real = Path::new(&source).canonicalize();
            let inside = real.as_ref().is_ok_and(|real| crate::scenario::paths::is_below_any(real, roots));
            if !inside {
                refuse(format!("mounts `{source}`, outside the submission's folder"));
            }
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_VOLUMES: std::sync::LazyLock<HashMap<String, Vec<String>>> = std::sync::LazyLock::new(HashMap::new);

    fn input<'a>(labels: &'a HashMap<String, String>, built: &'a HashMap<String, String>) -> RewriteInput<'a> {
        RewriteInput { labels, built, untrusted: None, project: "seatrial-1-x", image_volumes: &NO_VOLUMES }
    }

    #[test]
    fn ports_names_and_labels_are_made_the_runs_own() {
        let model = json!({
            "name": "mine",
            "services": {
                "web": {
                    "build": { "context": "/src/app", "dockerfile": "Dockerfile.prod", "args": { "A": "1" } },
                    "container_name": "notes-web",
                    "ports": ["8000:8000", { "target": 9000, "published": "9000", "protocol": "udp" }, "7000-7001"],
                    "labels": ["keep=yes"],
                    "depends_on": { "db": { "condition": "service_healthy" } }
                },
                "db": {
                    "image": "postgres:15",
                    "healthcheck": { "test": ["CMD", "pg_isready"], "interval": "5s", "retries": 5 },
                    "volumes": ["pgdata:/var/lib/postgresql/data"],
                    "stop_grace_period": "3s"
                }
            },
            "volumes": { "pgdata": { "name": "pgdata-fixed" }, "shared": { "external": true } }
        });
        let labels = HashMap::from([("org.seatrial.run".to_owned(), "1".to_owned())]);
        let built = HashMap::from([("web".to_owned(), "seatrial/web:1".to_owned())]);
        assert_eq!(builds(&model).unwrap()[0].dockerfile, "Dockerfile.prod");
        let out = rewrite(model, &input(&labels, &built)).unwrap();
        let web = &out.model["services"]["web"];
        assert_eq!(web["ports"], json!(["127.0.0.1::8000", "127.0.0.1::9000/udp", "127.0.0.1::7000-7001"]));
        assert!(web.get("container_name").is_none() && web.get("build").is_none());
        assert_eq!(web["image"], "seatrial/web:1");
        assert_eq!(web["labels"]["keep"], "yes");
        assert_eq!(web["labels"]["org.seatrial.run"], "1");
        assert_eq!(out.model["volumes"]["pgdata"]["name"], "seatrial-1-x_pgdata");
        assert!(out.model["volumes"]["shared"].get("labels").is_none(), "external resources are not ours");
        assert_eq!(out.model["networks"]["default"]["labels"]["org.seatrial.run"], "1");
        let db = &out.model["services"]["db"]["healthcheck"];
        assert_eq!((db["interval"].as_str(), db["retries"].as_u64()), (Some("500ms"), Some(50)));
        let facts: Vec<(&str, &[u16])> = out.services.iter().map(|s| (s.name.as_str(), s.ports.as_slice())).collect();
        assert_eq!(facts, [("db", &[][..]), ("web", &[8000, 9000, 7000, 7001][..])]);
        assert_eq!(out.services[1].depends_on, ["db"]);
        assert_eq!(out.services[0].stop_grace_period, Some(Duration::from_secs(3)));
        assert_eq!(out.notes.len(), 3, "{:?}", out.notes);
    }

    #[test]
    fn grading_refuses_what_reaches_the_host() {
        let model = json!({ "services": { "web": {
            "image": "x", "privileged": true, "network_mode": "host", "cap_add": ["SYS_ADMIN"],
            "volumes": [{ "type": "bind", "source": "/etc", "target": "/host-etc" }, "/var/run/docker.sock:/s"]
        } } });
        let labels = HashMap::new();
        let built = HashMap::new();
        let roots = [std::env::temp_dir()];
        let input = RewriteInput { untrusted: Some(&roots), ..input(&labels, &built) };
        let refused = rewrite(model, &input).unwrap_err();
        for what in ["privileged", "network_mode: host", "SYS_ADMIN", "`/etc`", "docker.sock"] {
            assert!(refused.contains(what), "{what} in {refused}");
        }
    }
}
