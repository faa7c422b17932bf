//! A command run in a container with its standard input and output attached as a stream: what carries a
//! TCP connection from inside a container's network namespace (`nc HOST PORT`), so that seatrial can
//! speak to a port that only the scenario's network reaches.

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;

use super::{Engine, EngineError};

/// A running command's output (stdout and stderr frames, in order) and its standard input.
pub struct AttachedExec {
    pub exec_id: String,
    pub output: Pin<Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    pub input: Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

impl Engine {
    /// Starts `cmd` in a running container with stdin, stdout and stderr attached (`POST
    /// /containers/{id}/exec`, then `POST /exec/{id}/start` without detaching), no TTY: the bytes pass
    /// through as they are.
    pub async fn exec_attached(&self, id: &str, cmd: &[String]) -> Result<AttachedExec, EngineError> {
        let config = ExecConfig {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let exec = self.docker.create_exec(id, config).await.map_err(|e| EngineError::new("create exec in", id, e))?;
        let options = StartExecOptions { detach: false, tty: false, output_capacity: None };
        match self.docker.start_exec(&exec.id, Some(options)).await {
            Ok(StartExecResults::Attached { output, input }) => Ok(AttachedExec { exec_id: exec.id, output, input }),
            Ok(StartExecResults::Detached) => Err(EngineError {
                operation: "start exec in",
                resource: id.to_owned(),
                message: "the engine started the command detached, with no stream to attach to".to_owned(),
                status: None,
                unanswered: false,
            }),
            Err(e) => Err(EngineError::new("start exec in", id, e)),
        }
    }

    /// The exit code of a command started with [`Engine::exec_attached`]; `None` while it runs.
    pub async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, EngineError> {
        let inspect =
            self.docker.inspect_exec(exec_id).await.map_err(|e| EngineError::new("inspect exec", exec_id, e))?;
        Ok(if inspect.running == Some(true) { None } else { inspect.exit_code })
    }

    /// The container's address on its network (the first network it is on), as the others reach it.
    pub async fn container_address(&self, id: &str) -> Result<Option<String>, EngineError> {
        let inspect =
            self.docker.inspect_container(id, None).await.map_err(|e| EngineError::new("inspect container", id, e))?;
        let networks = inspect.network_settings.and_then(|n| n.networks).unwrap_or_default();
        Ok(networks.into_values().filter_map(|n| n.ip_address).find(|ip| !ip.is_empty()))
    }
}
