//! "Documents changed" notifications: an app's list or detail screen subscribes and
//! is told which documents a committed write touched — a local edit, a pulled page,
//! a purge. Dropping the [`Subscription`] ends it.
//!
//! Listeners run on the thread that committed the write (the caller of a local edit,
//! or the sync worker), after the commit and outside every lock of the engine, so a
//! listener may call back into the engine. It must return quickly: hop to the UI
//! thread and re-read there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::ids::DocId;

/// A listener for changed documents.
pub type Listener = Arc<dyn Fn(&[DocId]) + Send + Sync>;

/// One subscription's listener, with the switch `cancel` turns off.
struct Entry {
    id: u64,
    live: Arc<AtomicBool>,
    listener: Listener,
}

#[derive(Default)]
struct Registry {
    next: u64,
    listeners: Vec<Entry>,
}

/// The listeners of one engine.
#[derive(Default)]
pub(crate) struct Watchers {
    registry: Arc<Mutex<Registry>>,
}

impl Watchers {
    pub(crate) fn subscribe(&self, listener: Listener) -> Subscription {
        let mut registry = lock(&self.registry);
        registry.next += 1;
        let id = registry.next;
        let live = Arc::new(AtomicBool::new(true));
        registry.listeners.push(Entry {
            id,
            live: Arc::clone(&live),
            listener,
        });
        Subscription {
            id,
            live,
            registry: Arc::downgrade(&self.registry),
        }
    }

    /// Tell every live listener about `ids` (nothing when empty). The registry lock
    /// is not held while listeners run. A listener that panics (an app's bug, or a
    /// foreign exception through the bindings) is not allowed to make the write it
    /// is told about look failed: the write has committed.
    pub(crate) fn notify(&self, ids: &[DocId]) {
        if ids.is_empty() {
            return;
        }
        let listeners: Vec<(Arc<AtomicBool>, Listener)> = lock(&self.registry)
            .listeners
            .iter()
            .map(|e| (Arc::clone(&e.live), Arc::clone(&e.listener)))
            .collect();
        for (live, listener) in listeners {
            if live.load(Ordering::Acquire) {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(ids)));
            }
        }
    }
}

/// A live subscription; dropping it (or calling [`Subscription::cancel`]) stops the
/// notifications. A call already running finishes; no call starts after it.
pub struct Subscription {
    id: u64,
    live: Arc<AtomicBool>,
    registry: Weak<Mutex<Registry>>,
}

impl Subscription {
    /// Stop the notifications now.
    pub fn cancel(&self) {
        self.live.store(false, Ordering::Release);
        if let Some(registry) = self.registry.upgrade() {
            lock(&registry).listeners.retain(|e| e.id != self.id);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(|e| e.into_inner())
}
