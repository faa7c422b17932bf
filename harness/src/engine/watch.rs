//! Noticing that the engine went away. A scenario that is sleeping, or waiting on a stream the engine
//! will never close, would otherwise only find out when its time limit runs out; the watch pings the
//! engine and tells every waiter, within a few seconds, that it stopped answering and why.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::Engine;

/// How often the engine is pinged.
pub const PING_EVERY: Duration = Duration::from_millis(500);
/// How long one ping may take: a busy engine answers `/_ping` in milliseconds.
pub const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How long pings must keep failing before the engine is declared lost: one failed ping can be a
/// passing hiccup, several seconds of them cannot.
pub const LOST_AFTER: Duration = Duration::from_secs(2);

/// A running watch over one engine. Cloning shares it; the pinging task ends with the last clone.
#[derive(Clone)]
pub struct EngineWatch {
    lost: watch::Receiver<Option<String>>,
}

impl EngineWatch {
    /// Starts pinging `engine` on `runtime`.
    pub fn start(engine: &Engine, runtime: &tokio::runtime::Handle) -> EngineWatch {
        let (sender, lost) = watch::channel(None);
        let engine = engine.clone();
        runtime.spawn(async move {
            let mut failing_since: Option<Instant> = None;
            loop {
                tokio::time::sleep(PING_EVERY).await;
                if sender.is_closed() {
                    return;
                }
                match engine.ping(PING_TIMEOUT).await {
                    Ok(()) => failing_since = None,
                    Err(why) => {
                        let since = *failing_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= LOST_AFTER {
                            let message = format!("the container engine at {} stopped answering: {why}", engine.host);
                            let _ = sender.send(Some(message));
                            return;
                        }
                    }
                }
            }
        });
        EngineWatch { lost }
    }

    /// Why the engine is lost, if it is.
    pub fn lost_reason(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Waits until the engine is lost and says why; never returns while it answers.
    pub async fn lost(&self) -> String {
        let mut lost = self.lost.clone();
        let reason = lost.wait_for(Option::is_some).await.ok().and_then(|reason| reason.clone());
        match reason {
            Some(reason) => reason,
            // The pinging task ended without a verdict: only at shutdown, so wait forever.
            None => std::future::pending().await,
        }
    }
}
