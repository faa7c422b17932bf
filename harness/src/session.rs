//! One run's shared life, the same for `run`, `grade`, the cargo-test harness and `clean`: the runtime,
//! the engine connection and its watch, the run id, signals turned into a cancellation, the sweep of dead
//! runs before and of this run after, and the exit code. Drivers own what differs (how scenarios are
//! scheduled and reported); none of them repeats this.

use tokio::sync::watch;

use crate::engine::labels::RunId;
use crate::engine::sweep::{SweepMode, SweepScope};
use crate::engine::{ConnectError, Engine};
use crate::exit_code;
use crate::run::cancel::{Cancellation, Cancelled};

/// Why a session could not open; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Engine(#[from] ConnectError),
}

impl SessionError {
    pub fn exit_code(&self) -> u8 {
        exit_code::NO_ENGINE
    }
}

/// Whether the session starts by removing what dead runs left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadRuns {
    /// Every run does, so that a killed run's leftovers never pile up.
    SweepFirst,
    /// `seatrial clean` decides itself what to sweep.
    Leave,
}

pub struct Session {
    pub runtime: tokio::runtime::Runtime,
    pub engine: Engine,
    pub run_id: RunId,
    pub cancellation: Cancellation,
    /// Set once a signal's sweep has removed what this run made.
    swept_after_signal: watch::Receiver<Option<Cancelled>>,
}

impl Session {
    /// Starts the runtime, catches SIGINT and SIGTERM (from then on, a signal cancels the run and removes
    /// what it made instead of killing the process), connects to the engine and sweeps dead runs.
    pub fn open(dead_runs: DeadRuns) -> Result<Session, SessionError> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(SessionError::Runtime)?;
        let signals = runtime.block_on(async { Signals::catch() });
        let engine = runtime.block_on(Engine::connect())?;
        let run_id = RunId::new();
        let cancellation = Cancellation::default();
        let (swept, swept_after_signal) = watch::channel(None);
        if let Some(signals) = signals {
            let (engine, run, cancellation) = (engine.clone(), run_id.clone(), cancellation.clone());
            runtime.spawn(async move {
                let why = signals.next().await;
                cancellation.cancel(why);
                eprintln!("\n{}: removing what this run made...", why.signal);
                match engine.sweep_until_empty(&SweepScope::Run(run.id.clone())).await {
                    Ok(report) => report.errors.iter().for_each(|e| eprintln!("warning: {e}")),
                    Err(e) => eprintln!("warning: {e}"),
                }
                let _ = swept.send(Some(why));
            });
        }
        if dead_runs == DeadRuns::SweepFirst {
            match runtime.block_on(engine.sweep(&SweepScope::Dead, SweepMode::Remove)) {
                Ok(report) if report.total() > 0 => {
                    eprintln!("note: removed {} resource(s) left by earlier, killed runs", report.total());
                }
                Ok(_) => {}
                Err(e) => eprintln!("warning: could not sweep what earlier runs left: {e}"),
            }
        }
        Ok(Session { runtime, engine, run_id, cancellation, swept_after_signal })
    }

    /// Returns, from a task of its own, once a signal has cancelled the run and everything it made is removed.
    pub fn signal_sweep(&self) -> SignalSweep {
        SignalSweep(self.swept_after_signal.clone())
    }

    /// The end of a run: removes what it made (built images, anything a scenario could not remove), unless
    /// the engine is gone, in which case the next run's sweep will.
    pub fn sweep_run(&self, engine_lost: Option<&str>, after_lost: &str) {
        match engine_lost {
            Some(reason) => eprintln!("error: {reason}\n  {after_lost}"),
            None => {
                if let Err(e) = self
                    .runtime
                    .block_on(self.engine.sweep(&SweepScope::Run(self.run_id.id.clone()), SweepMode::Remove))
                {
                    eprintln!("warning: cleanup at the end of the run: {e}");
                }
            }
        }
    }
}

/// Waits for a signal's sweep from a task of its own.
#[derive(Clone)]
pub struct SignalSweep(watch::Receiver<Option<Cancelled>>);

impl SignalSweep {
    pub async fn done(mut self) -> Cancelled {
        // Copied out at once: the borrow `wait_for` gives must not be held across an await.
        let why = self.0.wait_for(Option::is_some).await.ok().and_then(|why| *why);
        match why {
            Some(why) => why,
            // The session's task ended without a signal: only at shutdown.
            None => std::future::pending().await,
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made (on a runtime).
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn catch() -> Option<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Signals {
            interrupt: signal(SignalKind::interrupt()).ok()?,
            terminate: signal(SignalKind::terminate()).ok()?,
        })
    }

    async fn next(mut self) -> Cancelled {
        tokio::select! {
            _ = self.interrupt.recv() => Cancelled { signal: "SIGINT", exit_code: exit_code::INTERRUPTED },
            _ = self.terminate.recv() => Cancelled { signal: "SIGTERM", exit_code: exit_code::TERMINATED },
        }
    }
}
