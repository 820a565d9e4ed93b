//! "Documents changed" notifications: an app's list or detail screen subscribes and
//! is told which documents a committed write touched — a local edit, a pulled page,
//! a purge. Dropping the [`Subscription`] ends it.
//!
//! Listeners run on the thread that committed the write (the caller of a local edit,
//! or the sync worker), after the commit and outside every lock of the engine, so a
//! listener may call back into the engine. It must return quickly: hop to the UI
//! thread and re-read there.

use std::sync::{Arc, Mutex, Weak};

use crate::ids::DocId;

/// A listener for changed documents.
pub type Listener = Arc<dyn Fn(&[DocId]) + Send + Sync>;

#[derive(Default)]
struct Registry {
    next: u64,
    listeners: Vec<(u64, Listener)>,
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
        registry.listeners.push((id, listener));
        Subscription {
            id,
            registry: Arc::downgrade(&self.registry),
        }
    }

    /// Tell every listener about `ids` (nothing when empty). The registry lock is
    /// not held while listeners run.
    pub(crate) fn notify(&self, ids: &[DocId]) {
        if ids.is_empty() {
            return;
        }
        let listeners: Vec<Listener> = lock(&self.registry)
            .listeners
            .iter()
            .map(|(_, l)| Arc::clone(l))
            .collect();
        for listener in listeners {
            listener(ids);
        }
    }
}

/// A live subscription; dropping it (or calling [`Subscription::cancel`]) stops the
/// notifications. A listener already running finishes its call.
pub struct Subscription {
    id: u64,
    registry: Weak<Mutex<Registry>>,
}

impl Subscription {
    /// Stop the notifications now.
    pub fn cancel(&self) {
        if let Some(registry) = self.registry.upgrade() {
            lock(&registry).listeners.retain(|(id, _)| *id != self.id);
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
