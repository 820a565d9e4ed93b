//! Crossing the C boundary: every call runs inside `catch_unwind`, pointers from C
//! are checked before use, and what goes back to C is allocated here and freed by
//! this library's own free functions.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::status::{set_last_error, Failure, GridsyncStatus};

/// Run one C call: its failure (or panic) becomes a status and the thread's last
/// error message; a success clears the message.
pub(crate) fn call(f: impl FnOnce() -> Result<(), Failure>) -> GridsyncStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_last_error(None);
            GridsyncStatus::Ok
        }
        Ok(Err(failure)) => {
            set_last_error(Some(failure.message));
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".to_owned());
            set_last_error(Some(format!("internal error (panic): {what}")));
            GridsyncStatus::Other
        }
    }
}

/// Run a call that cannot report (a free function): a panic is swallowed rather than
/// unwound into C.
pub(crate) fn call_quietly(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// A NUL-terminated UTF-8 string argument that must not be NULL.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that lives through the call.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded to the caller's contract.
    unsafe { opt_str_arg(ptr, name) }?.ok_or_else(|| Failure::null(name))
}

/// A string argument that may be NULL (absent).
///
/// # Safety
/// As [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    name: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map(Some).map_err(|e| {
        Failure::new(
            GridsyncStatus::InvalidUtf8,
            format!("`{name}` is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// A byte buffer argument: `ptr` must not be NULL (even for an empty buffer).
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes that live through the call.
pub(crate) unsafe fn bytes_arg<'a>(
    ptr: *const u8,
    len: usize,
    name: &str,
) -> Result<&'a [u8], Failure> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: not NULL, `len` readable bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An object argument (a handle) that must not be NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle this library returned.
pub(crate) unsafe fn handle_arg<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: a live handle by the caller's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(name))
}

/// Where a result goes: a non-NULL pointer into the caller's memory, written without
/// reading what was there (it may be uninitialised).
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// A required out-parameter.
    pub(crate) fn new(ptr: *mut T, name: &str) -> Result<Self, Failure> {
        NonNull::new(ptr)
            .map(Out)
            .ok_or_else(|| Failure::null(name))
    }

    /// An out-parameter the caller may leave NULL (not wanted).
    pub(crate) fn optional(ptr: *mut T) -> Option<Self> {
        NonNull::new(ptr).map(Out)
    }

    /// Write the result.
    ///
    /// # Safety
    /// The pointer given to `new` is valid for writes of a `T` through the call.
    pub(crate) unsafe fn set(&self, value: T) {
        // SAFETY: by the caller's contract; `write` drops nothing that was there.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// A string for C: its pointer, freed by `gridsync_string_free`.
pub(crate) fn c_string(s: String) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| Failure::other("a result holds a NUL byte"))
}

/// Give `s` to C through `out`.
///
/// # Safety
/// As [`Out::set`].
pub(crate) unsafe fn set_string(out: &Out<*mut c_char>, s: CString) {
    // SAFETY: forwarded.
    unsafe { out.set(s.into_raw()) }
}

/// The runtime the async calls of the facade (`enroll`, `sync`) are blocked on. The
/// facade runs their work on tokio's blocking pool, so one worker thread suffices.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, Failure> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("gridsync-c")
        .enable_all()
        .build()
        .map_err(|e| Failure::other(format!("cannot start the runtime: {e}")))?;
    // Two threads may race to build it; the loser's runtime is dropped here.
    Ok(RUNTIME.get_or_init(|| rt))
}
