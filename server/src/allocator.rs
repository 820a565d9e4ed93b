//! How the relay uses glibc's malloc: fewer arenas, and freed memory given back.
//! The two-hour soak (docs/reliability.md §7) found the relay's resident set
//! climbing while the memory it had in use stayed level: freed memory the
//! allocator kept. Elsewhere (musl, macOS) these do nothing.

/// At most one arena per core (an operator's `MALLOC_ARENA_MAX` wins). glibc
/// gives a thread that allocates an arena of its own, up to eight per core, and
/// each arena fragments on its own; the relay's blocking threads come and go with
/// the load (tokio keeps an idle one 10 s), so over hours they spread the same
/// work over ever more arenas: the two-hour soak's resident set rose for an hour
/// with 17 of them. More arenas spare threads that outnumber the cores some
/// waiting for an arena's lock (`bench relay`: within the noise on a quiet
/// machine, docs/performance.md). Called before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt sets an allocator tunable and touches no memory of ours; no
    // other thread allocates yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

/// Every minute, for as long as the relay runs: hand the whole free pages
/// inside every arena back to the system (`malloc_trim`). glibc returns memory on
/// its own only from the top of an arena, so a page freed below one still in use
/// stays resident: with the arenas capped the soak's resident set still rose
/// 50 KiB a minute while the memory in use did not. One trim walks the arenas'
/// free chunks under their locks: 63–937 µs under `bench relay`'s load
/// (`GRIDSYNC_LOG=gridsync=debug` logs each one's time), and a page given back
/// costs a fault when it is used again.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub async fn return_freed_memory() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let trim = tokio::task::spawn_blocking(|| {
            let started = std::time::Instant::now();
            // SAFETY: malloc_trim releases only pages of chunks that are free,
            // under the allocator's own locks; it touches no memory of ours.
            let released = unsafe { libc::malloc_trim(0) } == 1;
            (released, started.elapsed())
        });
        match trim.await {
            Ok((released, took)) => {
                tracing::debug!(released, micros = took.as_micros() as u64, "malloc_trim");
            }
            Err(e) => tracing::error!(error = %e, "malloc_trim panicked"),
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub async fn return_freed_memory() {}
