//! Small instruments the tests share: the memory of a process, and Automerge chunks
//! framed by hand (with a correct checksum) to build hostile inputs.

use sha2::{Digest, Sha256};

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

/// An Automerge chunk of type `typ` around `data`: magic, the checksum Automerge
/// would write (the first four bytes of SHA-256 over type, LEB128 length and data),
/// type, length, data.
pub fn automerge_chunk(typ: u8, data: &[u8]) -> Vec<u8> {
    let mut body = vec![typ];
    let mut n = data.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        body.push(if n == 0 { b } else { b | 0x80 });
        if n == 0 {
            break;
        }
    }
    body.extend_from_slice(data);
    let hash = Sha256::digest(&body);
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend_from_slice(&hash[..4]);
    out.extend(body);
    out
}
