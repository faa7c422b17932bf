//! Locks that outlive a panic: a task that panicked while holding one (a bug, reported as the scenario's
//! error) must not take every later report and cleanup down with it.

use std::sync::{Mutex, MutexGuard};

/// The guard of `mutex`, also when a panicking holder poisoned it.
pub fn unpoisoned<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
