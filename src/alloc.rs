//! Memory allocator settings for the command-line program.
//!
//! The pipeline allocates and frees buffers of one to hundreds of MB many
//! times over (per-slice work buffers, masks, label and distance volumes,
//! mesh arrays). glibc serves every block above its mmap threshold (128 KiB
//! at start, raised on the fly up to 32 MiB) with a fresh mapping and
//! returns it to the kernel on free, and trims its heaps' free tops above
//! 128 KiB: the next block of that size is faulted in and cleared again, page
//! by page. On the 2-core virtual machines this project measures on, that
//! costs 0.42 s per GiB, against 0.04 s for writing memory already mapped.
//!
//! [`retain_freed_memory`] keeps blocks up to 32 MiB (glibc's largest mmap
//! threshold) in its heaps and stops the trimming, so freed memory is reused
//! instead of being faulted in again. Measured on the paper's grid
//! (`spinemesh reconstruct`, alternating runs, medians): default preset
//! page faults 207 k → 180 k, 2.12 → 2.05 s (10 pairs), peak memory
//! 661 → 693 MB; paper preset 79 k → 60 k faults, 0.51 → 0.47 s, 405 →
//! 421 MB.
//!
//! Tried and not kept: a global allocator that kept freed blocks above
//! 1 MiB (later 32 MiB) for the next request of the same size. It faulted
//! more, not less: a reused block asked for zeroed has to be cleared in full,
//! where a fresh one is only touched where it is written (a zero mask of the
//! CT's grid holding one spine), and kept blocks stop glibc from raising its
//! mmap threshold.
//!
//! Only the binary (and the benchmarks that measure what it does) call it:
//! the library does not change the allocator of programs that link it.

/// Sets glibc's mmap threshold to 32 MiB and its trim threshold to 1 GiB (see
/// the module docs). Call it first thing in `main`; a no-op on other C
/// libraries and systems.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes two of glibc's allocation thresholds; it
    // is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
