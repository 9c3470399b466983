//! Memory the allocator keeps. A dashboard of a thousand workers allocates
//! in waves (each restart wave: new connections, snapshots, events) on many
//! threads; glibc gives busy threads arenas of their own and keeps what was
//! freed in each, so the process grew by megabytes a minute while the heap
//! in use stayed flat. Fewer arenas and a trim now and then give it back.
//! Not often: a trim holds each arena's lock while it hands back every free
//! page (about a thousand `madvise` calls at a thousand workers), and every
//! thread that allocates meanwhile waits. Every 10 s, that put lines of a
//! thousand workers' events up to ~120 ms late against ~65 ms without it.

use std::time::Duration;

/// How often freed memory is handed back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// Arenas glibc may make (its default is eight per core).
const ARENAS: i32 = 2;

/// For a long-running dashboard: at most [`ARENAS`] malloc arenas, and a
/// thread that trims them every [`TRIM_EVERY`]. Call once, early.
pub fn keep_little() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a tunable of the allocator.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
        let _ = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| loop {
                std::thread::sleep(TRIM_EVERY);
                // SAFETY: malloc_trim only releases free pages of the heap.
                unsafe {
                    libc::malloc_trim(0);
                }
            });
    }
}
