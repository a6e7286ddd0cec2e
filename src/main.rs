fn main() -> std::process::ExitCode {
    one_malloc_arena();
    parc::cli::main()
}

/// glibc gives a thread that allocates while another holds the main arena
/// an arena of its own, up to 8 per core, and memory freed in an arena is
/// kept by it for its next allocations: the controller's tokio workers and
/// blocking threads (imaging's readers and writers; until e17ed81, one per
/// host reading `ssh -G`) spread a run's heap over several arenas that each
/// keep their high-water mark. One arena, asked for before any thread
/// starts, held the 20 MiB file to 500 hosts, 64 at once, at 62 MiB rather
/// than 67-70 (bench/README.md, measured before e17ed81); the threads still
/// allocate without locking from their own caches.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}
