//! How the executor treats failures and resources: given to it, never switched inside it. Testing a
//! project stops a scenario at its first failure; grading untrusted submissions goes on (later checks
//! still earn their points) and isolates every submission.

/// What a failed check (or a container that could not be brought up) does to the rest of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The scenario ends there: what follows would fail for the same reason.
    Stop,
    /// The remaining steps still run; steps on a container that was never made are blocked, with why.
    GoOn,
}

/// The network a scenario with a single container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoneContainerNetwork {
    /// The engine's default bridge, as `docker run` does: saves a network create and remove.
    EngineDefault,
    /// A network of its own, so that untrusted containers cannot reach each other.
    OwnNetwork,
}

/// What is left on the engine after a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Nothing,
    /// A failed scenario's containers, volumes and network stay, for debugging (`--keep`).
    FailedScenarios,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub on_failure: OnFailure,
    pub lone_container_network: LoneContainerNetwork,
    pub keep: Keep,
    /// The code under test is a submission's: a compose stack may not reach the host (privileged, host
    /// namespaces, bind mounts outside its folder).
    pub untrusted: bool,
}

impl Policy {
    /// `seatrial run` and the cargo-test harness.
    pub fn testing(keep: Keep) -> Policy {
        Policy {
            on_failure: OnFailure::Stop,
            lone_container_network: LoneContainerNetwork::EngineDefault,
            keep,
            untrusted: false,
        }
    }

    /// `seatrial grade`.
    pub fn grading() -> Policy {
        Policy {
            on_failure: OnFailure::GoOn,
            lone_container_network: LoneContainerNetwork::OwnNetwork,
            keep: Keep::Nothing,
            untrusted: true,
        }
    }
}
