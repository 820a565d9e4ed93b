//! Small instruments the tests share: the memory of a process. (Automerge chunks
//! framed by hand are `gridsync_core::sync::change::frame_chunk`.)

/// A process's memory from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident now (VmRSS).
    pub rss_kib: u64,
    /// The peak resident set so far (VmHWM).
    pub hwm_kib: u64,
}

/// The memory of process `pid` (Linux).
pub fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("a memory figure")
    };
    Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}
