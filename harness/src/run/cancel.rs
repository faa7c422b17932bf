//! A run's cancellation: set once (by a signal, through the session), seen by every task of the run.
//! From then on nothing new is created and builds in flight are dropped.

use std::sync::Arc;

use tokio::sync::watch;

/// Why the run was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled {
    /// The signal's name (`SIGINT`, `SIGTERM`).
    pub signal: &'static str,
    /// The exit code the run ends with.
    pub exit_code: u8,
}

/// A token shared by the session and every scenario of one run. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Cancellation {
    state: Arc<watch::Sender<Option<Cancelled>>>,
}

impl Default for Cancellation {
    fn default() -> Self {
        Cancellation { state: Arc::new(watch::channel(None).0) }
    }
}

impl Cancellation {
    /// Cancels the run; the first reason given is the one kept.
    pub fn cancel(&self, why: Cancelled) {
        self.state.send_if_modified(|state| {
            if state.is_some() {
                return false;
            }
            *state = Some(why);
            true
        });
    }

    /// Why the run was cancelled, if it was.
    pub fn reason(&self) -> Option<Cancelled> {
        *self.state.borrow()
    }

    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Returns once the run is cancelled, with why.
    pub async fn cancelled(&self) -> Cancelled {
        let mut receiver = self.state.subscribe();
        // Copied out at once: the borrow `wait_for` gives must not be held across an await.
        let why = receiver.wait_for(Option::is_some).await.ok().and_then(|state| *state);
        match why {
            Some(why) => why,
            // The sender lives as long as this token: never reached.
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_first_reason() {
        let token = Cancellation::default();
        let seen = token.clone();
        assert!(!seen.is_cancelled());
        let waiter = tokio::spawn(async move { seen.cancelled().await });
        token.cancel(Cancelled { signal: "SIGTERM", exit_code: 143 });
        token.cancel(Cancelled { signal: "SIGINT", exit_code: 130 });
        assert_eq!(waiter.await.unwrap().signal, "SIGTERM");
        assert_eq!(token.reason().map(|r| r.exit_code), Some(143));
    }
}
