//! gridsync-c: a C API over the `gridsync-ffi` facade — the same `GridEngine`,
//! `enroll` and records the Kotlin, Swift and Python bindings use, behind opaque
//! handles, status codes and explicit free functions. The header
//! `include/gridsync.h` is generated from these sources by cbindgen, and its
//! conventions (repeated at its top, from `cbindgen.toml`) hold for every function
//! here. See `README.md`.
#![warn(missing_docs)]

mod boundary;
mod json;
mod status;

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

use gridsync_ffi::{GridEngine, ServerSecurityRecord, SyncObserver, SyncProgress};

use boundary::{
    bytes_arg, c_string, call, call_quietly, handle_arg, opt_str_arg, runtime, set_string, str_arg,
    Out,
};
use status::last_error;
pub use status::GridsyncStatus;

/// An open engine: one device's encrypted database. Opaque; made by
/// `gridsync_engine_open`, freed by `gridsync_engine_free`. Calls on one engine may
/// come from several threads at once, except `gridsync_engine_free`, which must be
/// the last.
pub struct GridsyncEngine {
    engine: Arc<GridEngine>,
}

/// What one `gridsync_engine_sync` did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GridsyncSyncSummary {
    /// Changes the server stored.
    pub pushed: u64,
    /// Changes the server refused (the reasons are kept on the device).
    pub rejected: u64,
    /// Changes received.
    pub pulled: u64,
    /// Documents removed from this device (no longer visible to its user).
    pub purged: u64,
    /// Photos uploaded.
    pub photos_uploaded: u64,
}

/// Told how a sync is going, after every request: `phase` is `"push"`, `"pull"` or
/// `"photos"` (valid only during the call), `items` and `bytes` are counted so far
/// in this phase, `remaining` is what is left (push and photos). Called on one of
/// the library's worker threads, not the caller's: hand the figures to the UI
/// thread rather than touching UI from here.
pub type GridsyncProgressFn = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        phase: *const c_char,
        items: u64,
        bytes: u64,
        remaining: u64,
    ),
>;

/// The name of a status code as written in this header (e.g.
/// `"GRIDSYNC_STATUS_WRONG_KEY"`), or `"GRIDSYNC_STATUS_UNKNOWN"` for a number that
/// is none. A static string: do not free it.
#[no_mangle]
pub extern "C" fn gridsync_status_name(status: c_int) -> *const c_char {
    GridsyncStatus::from_code(status)
        .map(|s| s.name())
        .unwrap_or(c"GRIDSYNC_STATUS_UNKNOWN")
        .as_ptr()
}

/// Why the last call on this thread failed, or NULL if it succeeded. Free the
/// string with `gridsync_string_free`. The message says what went wrong in English;
/// show the user something based on the status code instead.
#[no_mangle]
pub extern "C" fn gridsync_last_error_message() -> *mut c_char {
    last_error().map_or(std::ptr::null_mut(), CString::into_raw)
}

/// Free a string this library returned. NULL is allowed (nothing happens).
///
/// # Safety
/// `s` is NULL or a string from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn gridsync_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: made by `CString::into_raw` in this library, by the contract.
        call_quietly(|| drop(unsafe { CString::from_raw(s) }));
    }
}

/// Free a byte buffer this library returned, with the length it came with. NULL is
/// allowed (nothing happens).
///
/// # Safety
/// `data` and `len` are exactly what this library returned, not freed before.
#[no_mangle]
pub unsafe extern "C" fn gridsync_bytes_free(data: *mut u8, len: usize) {
    if !data.is_null() {
        // SAFETY: made by `Box::<[u8]>::into_raw` in this library with this length.
        call_quietly(|| {
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)) })
        });
    }
}

/// A new random device id, for a device about to enroll (keep it with the database
/// and its key).
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_new_device_id(out_device_id: *mut *mut c_char) -> GridsyncStatus {
    call(|| {
        let out = Out::new(out_device_id, "out_device_id")?;
        let id = c_string(gridsync_ffi::new_device_id())?;
        // SAFETY: a valid out-pointer by the contract.
        unsafe { set_string(&out, id) };
        Ok(())
    })
}

/// Redeem a one-time enrollment code with the server at `server_url`, for the
/// device `device_id` (from `gridsync_new_device_id`). Gives the user id, the device
/// token and the directory JSON, three strings to free. Plain `http://` is refused
/// unless the server is on this machine or `allow_plain_http` is set; `ca_pem` (may
/// be NULL) names PEM certificates to trust for a town's own `https://` — give the
/// same to `gridsync_engine_set_server_security` afterwards.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gridsync_enroll(
    server_url: *const c_char,
    code: *const c_char,
    device_id: *const c_char,
    app_version: *const c_char,
    ca_pem: *const c_char,
    allow_plain_http: bool,
    out_user: *mut *mut c_char,
    out_token: *mut *mut c_char,
    out_directory_json: *mut *mut c_char,
) -> GridsyncStatus {
    call(|| {
        let outs = [
            Out::new(out_user, "out_user")?,
            Out::new(out_token, "out_token")?,
            Out::new(out_directory_json, "out_directory_json")?,
        ];
        for out in &outs {
            // SAFETY: valid out-pointers by the contract.
            unsafe { out.set(std::ptr::null_mut()) };
        }
        // SAFETY: the string arguments' contract.
        let (server_url, code, device_id, app_version, ca_pem) = unsafe {
            (
                str_arg(server_url, "server_url")?,
                str_arg(code, "code")?,
                str_arg(device_id, "device_id")?,
                str_arg(app_version, "app_version")?,
                opt_str_arg(ca_pem, "ca_pem")?,
            )
        };
        let security = (ca_pem.is_some() || allow_plain_http).then(|| ServerSecurityRecord {
            ca_pem: ca_pem.map(str::to_owned),
            allow_plain_http,
        });
        let enrollment = runtime()?.block_on(gridsync_ffi::enroll(
            server_url.to_owned(),
            code.to_owned(),
            device_id.to_owned(),
            app_version.to_owned(),
            security,
        ))?;
        let values = [
            c_string(enrollment.user)?,
            c_string(enrollment.token)?,
            c_string(enrollment.directory_json)?,
        ];
        for (out, value) in outs.iter().zip(values) {
            // SAFETY: valid out-pointers by the contract.
            unsafe { set_string(out, value) };
        }
        Ok(())
    })
}

/// Open (creating or migrating) the database at `path` for this user and device,
/// encrypted under `key`: the device's root key, exactly 32 bytes
/// (`GRIDSYNC_STATUS_INVALID_INPUT` otherwise), which the app keeps in the platform
/// keystore. A file encrypted under another key is `GRIDSYNC_STATUS_WRONG_KEY` and
/// is left untouched. On success `*out_engine` is the engine; free it with
/// `gridsync_engine_free`.
///
/// # Safety
/// Pointers follow the conventions at the top of the header; `key` points to
/// `key_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_open(
    path: *const c_char,
    user_id: *const c_char,
    device_id: *const c_char,
    key: *const u8,
    key_len: usize,
    out_engine: *mut *mut GridsyncEngine,
) -> GridsyncStatus {
    call(|| {
        let out = Out::new(out_engine, "out_engine")?;
        // SAFETY: a valid out-pointer by the contract.
        unsafe { out.set(std::ptr::null_mut()) };
        // SAFETY: the arguments' contract.
        let (path, user_id, device_id, key) = unsafe {
            (
                str_arg(path, "path")?,
                str_arg(user_id, "user_id")?,
                str_arg(device_id, "device_id")?,
                bytes_arg(key, key_len, "key")?,
            )
        };
        // The facade zeroes this copy of the key once it holds its own.
        let engine = GridEngine::open(
            path.to_owned(),
            user_id.to_owned(),
            device_id.to_owned(),
            key.to_vec(),
        )?;
        let handle = Box::into_raw(Box::new(GridsyncEngine { engine }));
        // SAFETY: as above.
        unsafe { out.set(handle) };
        Ok(())
    })
}

/// Free an engine (closing its database if `gridsync_engine_close` was not called).
/// NULL is allowed. The engine must not be used afterwards, nor by another thread
/// meanwhile.
///
/// # Safety
/// `engine` is NULL or an engine from `gridsync_engine_open`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_free(engine: *mut GridsyncEngine) {
    if !engine.is_null() {
        // SAFETY: made by `Box::into_raw` in `gridsync_engine_open`, by the contract.
        call_quietly(|| drop(unsafe { Box::from_raw(engine) }));
    }
}

/// Close the engine's database; every later call on it answers
/// `GRIDSYNC_STATUS_CLOSED`. The handle itself is still freed with
/// `gridsync_engine_free`.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_close(engine: *mut GridsyncEngine) -> GridsyncStatus {
    call(|| {
        // SAFETY: the contract.
        unsafe { handle_arg(engine, "engine") }?
            .engine
            .close_store();
        Ok(())
    })
}

/// Erase everything this engine keeps on the device — the database, its journals,
/// the photos — and close it (a worker leaves, a phone is handed over). The app then
/// deletes the key from its keystore. Later calls answer `GRIDSYNC_STATUS_CLOSED`.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_wipe(engine: *mut GridsyncEngine) -> GridsyncStatus {
    call(|| {
        // SAFETY: the contract.
        Ok(unsafe { handle_arg(engine, "engine") }?.engine.wipe()?)
    })
}

/// Load the directory (JSON), e.g. the one `gridsync_enroll` gave.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_load_directory(
    engine: *mut GridsyncEngine,
    json: *const c_char,
) -> GridsyncStatus {
    call(|| {
        // SAFETY: the contract.
        let (engine, json) = unsafe { (handle_arg(engine, "engine")?, str_arg(json, "json")?) };
        Ok(engine.engine.load_directory(json.to_owned())?)
    })
}

/// Remember the server and the device token from enrollment.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_set_server(
    engine: *mut GridsyncEngine,
    url: *const c_char,
    token: *const c_char,
) -> GridsyncStatus {
    call(|| {
        // SAFETY: the contract.
        let (engine, url, token) = unsafe {
            (
                handle_arg(engine, "engine")?,
                str_arg(url, "url")?,
                str_arg(token, "token")?,
            )
        };
        Ok(engine.engine.set_server(url.to_owned(), token.to_owned())?)
    })
}

/// How to reach the server safely: `ca_pem` (may be NULL: the public roots) names
/// PEM certificates to trust for `https://`; `allow_plain_http` allows plain
/// `http://` to a server that is not on this machine (off by default; a server on
/// loopback never needs it).
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_set_server_security(
    engine: *mut GridsyncEngine,
    ca_pem: *const c_char,
    allow_plain_http: bool,
) -> GridsyncStatus {
    call(|| {
        // SAFETY: the contract.
        let (engine, ca_pem) = unsafe {
            (
                handle_arg(engine, "engine")?,
                opt_str_arg(ca_pem, "ca_pem")?,
            )
        };
        Ok(engine.engine.set_server_security(ServerSecurityRecord {
            ca_pem: ca_pem.map(str::to_owned),
            allow_plain_http,
        })?)
    })
}

/// Run a photo from the camera (JPEG, PNG or WebP bytes) through the capture
/// pipeline and store it: `*out_hash` is the hash to list in a case's `photos`.
/// `file_name` (may be NULL) is the camera's name for it. `out_thumb` (the
/// thumbnail's hash), `out_width` and `out_height` may be NULL when not wanted.
///
/// # Safety
/// Pointers follow the conventions at the top of the header; `bytes` points to
/// `len` readable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn gridsync_engine_ingest_photo(
    engine: *mut GridsyncEngine,
    bytes: *const u8,
    len: usize,
    file_name: *const c_char,
    out_hash: *mut *mut c_char,
    out_thumb: *mut *mut c_char,
    out_width: *mut u32,
    out_height: *mut u32,
) -> GridsyncStatus {
    call(|| {
        let out_hash = Out::new(out_hash, "out_hash")?;
        let out_thumb = Out::optional(out_thumb);
        let out_width = Out::optional(out_width);
        let out_height = Out::optional(out_height);
        // SAFETY: valid out-pointers by the contract.
        unsafe {
            out_hash.set(std::ptr::null_mut());
            if let Some(o) = &out_thumb {
                o.set(std::ptr::null_mut());
            }
            if let Some(o) = &out_width {
                o.set(0);
            }
            if let Some(o) = &out_height {
                o.set(0);
            }
        }
        // SAFETY: the arguments' contract.
        let (engine, bytes, file_name) = unsafe {
            (
                handle_arg(engine, "engine")?,
                bytes_arg(bytes, len, "bytes")?,
                opt_str_arg(file_name, "file_name")?,
            )
        };
        let photo = engine
            .engine
            .ingest_photo(bytes.to_vec(), file_name.map(str::to_owned))?;
        let hash = c_string(photo.hash)?;
        let thumb = c_string(photo.thumb)?;
        // SAFETY: as above.
        unsafe {
            set_string(&out_hash, hash);
            if let Some(o) = &out_thumb {
                set_string(o, thumb);
            }
            if let Some(o) = &out_width {
                o.set(photo.width);
            }
            if let Some(o) = &out_height {
                o.set(photo.height);
            }
        }
        Ok(())
    })
}

/// The bytes of a photo stored on this device (its display image, JPEG), by hash:
/// `*out_data` holds `*out_len` bytes; free them with
/// `gridsync_bytes_free(data, len)`. `GRIDSYNC_STATUS_NOT_FOUND` if it is not on
/// this device (another user's photo is downloaded by the facade's `fetch_photo`,
/// not in the C API yet).
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_photo_bytes(
    engine: *mut GridsyncEngine,
    hash: *const c_char,
    out_data: *mut *mut u8,
    out_len: *mut usize,
) -> GridsyncStatus {
    call(|| {
        let out_data = Out::new(out_data, "out_data")?;
        let out_len = Out::new(out_len, "out_len")?;
        // SAFETY: valid out-pointers by the contract.
        unsafe {
            out_data.set(std::ptr::null_mut());
            out_len.set(0);
        }
        // SAFETY: the arguments' contract.
        let (engine, hash) = unsafe { (handle_arg(engine, "engine")?, str_arg(hash, "hash")?) };
        let bytes = engine
            .engine
            .photo_bytes(hash.to_owned())?
            .into_boxed_slice();
        let len = bytes.len();
        // SAFETY: as above.
        unsafe {
            out_data.set(Box::into_raw(bytes).cast::<u8>());
            out_len.set(len);
        }
        Ok(())
    })
}

/// Report a case described by `case_json`, an object with the facade's
/// `NewCaseRecord` fields: `title`, `category` (e.g. `"livelihood"`) and `severity`
/// (`"low"`, `"normal"`, `"high"` or `"urgent"`) are required; `description`,
/// `subcategory` (e.g. `"livelihood.water_leak"`), `grid` (a grid worker's own when
/// left out), `lat`, `lon`, `address`, `photos` (hashes from
/// `gridsync_engine_ingest_photo`) and `people` (objects with `name`, `role`,
/// `phone`) may be left out. An unknown field or a bad value is
/// `GRIDSYNC_STATUS_INVALID_INPUT`. `*out_case_id` is the new case's id.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_report_case(
    engine: *mut GridsyncEngine,
    case_json: *const c_char,
    out_case_id: *mut *mut c_char,
) -> GridsyncStatus {
    call(|| {
        let out = Out::new(out_case_id, "out_case_id")?;
        // SAFETY: a valid out-pointer by the contract.
        unsafe { out.set(std::ptr::null_mut()) };
        // SAFETY: the arguments' contract.
        let (engine, case_json) = unsafe {
            (
                handle_arg(engine, "engine")?,
                str_arg(case_json, "case_json")?,
            )
        };
        let case: json::NewCaseJson = json::parse(case_json, "case_json")?;
        let id = c_string(engine.engine.report_case(case.into())?)?;
        // SAFETY: as above.
        unsafe { set_string(&out, id) };
        Ok(())
    })
}

/// A case with its timeline, as a JSON object with the facade's `CaseRecord`
/// fields: `id`, `title`, `description`, `status` (`"reported"`, …), `status_zh`,
/// `grid`, `category`, `subcategory`, `severity`, `channel` (how it came in:
/// `"phone"`, `"resident"`, `"hotline"`, …), `reporter`, `created_ms`,
/// `location` (`lat`, `lon`, `address`, or null), `people`, `photos` (objects
/// with `hash`, `thumb`, `width`, `height`, `by`, `at_ms`), `notes` (`by`,
/// `at_ms`, `text`), `level`, `assigned_dept`, `deadline_ms`, `supervision`,
/// `self_handled`, `satisfaction` and `timeline` (objects with `actor`, `role`,
/// `action`, `label_zh`, `at_ms`, `outcome`, `outcome_reason`). Times are
/// milliseconds since the epoch. `GRIDSYNC_STATUS_NOT_FOUND` if this device does
/// not hold the case.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_get_case(
    engine: *mut GridsyncEngine,
    case_id: *const c_char,
    out_json: *mut *mut c_char,
) -> GridsyncStatus {
    call(|| {
        let out = Out::new(out_json, "out_json")?;
        // SAFETY: a valid out-pointer by the contract.
        unsafe { out.set(std::ptr::null_mut()) };
        // SAFETY: the arguments' contract.
        let (engine, case_id) =
            unsafe { (handle_arg(engine, "engine")?, str_arg(case_id, "case_id")?) };
        let case = engine.engine.get_case(case_id.to_owned())?;
        let text = c_string(json::write(&json::CaseJson::from(case))?)?;
        // SAFETY: as above.
        unsafe { set_string(&out, text) };
        Ok(())
    })
}

/// Cases from the index, newest first, as a JSON array of objects with the
/// facade's `CaseSummaryRecord` fields: `id`, `title`, `status`, `status_zh`,
/// `has_conflict`, `photo_count`, `grid`, `category`, `subcategory`, `severity`,
/// `channel`, `reporter`, `assigned_dept`, `deadline_ms`, `supervision`,
/// `created_ms`, `updated_ms`. `filter_json` (may be NULL: every case, first 100) is an object
/// whose fields all may be left out and each narrows the list: `statuses` (array),
/// `text` (search; Chinese works), `limit` (0: 100; at most 500), `offset`,
/// `region`, `category`, `severity`, `assigned_dept`, `reporter`, `overdue`,
/// `conflicts_only`, `reported_from_ms`, `reported_before_ms`, `about`, `channel`.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_list_cases(
    engine: *mut GridsyncEngine,
    filter_json: *const c_char,
    out_json: *mut *mut c_char,
) -> GridsyncStatus {
    call(|| {
        let out = Out::new(out_json, "out_json")?;
        // SAFETY: a valid out-pointer by the contract.
        unsafe { out.set(std::ptr::null_mut()) };
        // SAFETY: the arguments' contract.
        let (engine, filter_json) = unsafe {
            (
                handle_arg(engine, "engine")?,
                opt_str_arg(filter_json, "filter_json")?,
            )
        };
        let filter: json::CaseFilterJson = match filter_json {
            Some(text) => json::parse(text, "filter_json")?,
            None => json::CaseFilterJson::default(),
        };
        let rows: Vec<json::CaseSummaryJson> = engine
            .engine
            .list_cases(filter.into())?
            .into_iter()
            .map(Into::into)
            .collect();
        let text = c_string(json::write(&rows)?)?;
        // SAFETY: as above.
        unsafe { set_string(&out, text) };
        Ok(())
    })
}

/// Local changes not yet acknowledged by the server: what "waiting to sync" shows.
///
/// # Safety
/// Pointers follow the conventions at the top of the header.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_pending_changes(
    engine: *mut GridsyncEngine,
    out_count: *mut u64,
) -> GridsyncStatus {
    call(|| {
        let out = Out::new(out_count, "out_count")?;
        // SAFETY: a valid out-pointer by the contract.
        unsafe { out.set(0) };
        // SAFETY: the contract.
        let count = unsafe { handle_arg(engine, "engine") }?
            .engine
            .pending_changes()?;
        // SAFETY: as above.
        unsafe { out.set(count) };
        Ok(())
    })
}

/// The C callback behind the facade's `SyncObserver`.
struct ProgressCallback {
    callback: unsafe extern "C" fn(*mut c_void, *const c_char, u64, u64, u64),
    /// The caller's context pointer, passed back untouched (kept as an address: the
    /// caller answers for its thread safety, as documented).
    context: usize,
}

impl SyncObserver for ProgressCallback {
    fn on_progress(&self, progress: SyncProgress) {
        let phase = CString::new(progress.phase).unwrap_or_default();
        // SAFETY: the caller gave this function for this purpose, with this context.
        unsafe {
            (self.callback)(
                self.context as *mut c_void,
                phase.as_ptr(),
                progress.items,
                progress.bytes,
                progress.remaining,
            )
        }
    }
}

/// Push this device's changes, pull the others', upload photos; block until done.
/// `on_progress` (may be NULL) is told how it goes, with `context` passed back.
/// `*out_summary` says what was done. After the relay revoked the device the answer
/// is `GRIDSYNC_STATUS_WIPED`: the data is already erased.
///
/// # Safety
/// Pointers follow the conventions at the top of the header; `on_progress` is
/// safe to call from another thread with `context` until this returns.
#[no_mangle]
pub unsafe extern "C" fn gridsync_engine_sync(
    engine: *mut GridsyncEngine,
    on_progress: GridsyncProgressFn,
    context: *mut c_void,
    out_summary: *mut GridsyncSyncSummary,
) -> GridsyncStatus {
    call(|| {
        let out = Out::new(out_summary, "out_summary")?;
        // SAFETY: a valid out-pointer by the contract.
        unsafe { out.set(GridsyncSyncSummary::default()) };
        // SAFETY: the contract.
        let engine = unsafe { handle_arg(engine, "engine") }?;
        let observer = on_progress.map(|callback| {
            Arc::new(ProgressCallback {
                callback,
                context: context as usize,
            }) as Arc<dyn SyncObserver>
        });
        let summary = runtime()?.block_on(engine.engine.sync(observer))?;
        // SAFETY: as above.
        unsafe {
            out.set(GridsyncSyncSummary {
                pushed: summary.pushed,
                rejected: summary.rejected,
                pulled: summary.pulled,
                purged: summary.purged,
                photos_uploaded: summary.photos_uploaded,
            })
        };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::{null, null_mut};

    fn last_message() -> String {
        let ptr = gridsync_last_error_message();
        assert!(!ptr.is_null(), "a failed call leaves a message");
        // SAFETY: just returned by this library.
        let text = unsafe { std::ffi::CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { gridsync_string_free(ptr) };
        text
    }

    fn open(path: &std::path::Path, key: &[u8]) -> (GridsyncStatus, *mut GridsyncEngine) {
        let path = CString::new(path.to_string_lossy().into_owned()).unwrap_or_default();
        let device = CString::new(gridsync_ffi::new_device_id()).unwrap_or_default();
        let mut engine = null_mut();
        // SAFETY: valid arguments.
        let status = unsafe {
            gridsync_engine_open(
                path.as_ptr(),
                c"w-339901001001001".as_ptr(),
                device.as_ptr(),
                key.as_ptr(),
                key.len(),
                &mut engine,
            )
        };
        (status, engine)
    }

    #[test]
    fn null_and_non_utf8_arguments_are_codes_not_crashes() {
        let mut engine = null_mut();
        let key = [7u8; 32];
        // SAFETY: NULLs are allowed to be passed; the rest is valid.
        let status = unsafe {
            gridsync_engine_open(
                null(),
                c"u".as_ptr(),
                c"d".as_ptr(),
                key.as_ptr(),
                32,
                &mut engine,
            )
        };
        assert_eq!(status, GridsyncStatus::NullArgument);
        assert!(engine.is_null());
        assert_eq!(last_message(), "`path` is NULL");

        let bad = [0xffu8, 0xfe, 0];
        // SAFETY: NUL-terminated bytes.
        let status = unsafe {
            gridsync_engine_open(
                bad.as_ptr().cast(),
                c"u".as_ptr(),
                c"d".as_ptr(),
                key.as_ptr(),
                32,
                &mut engine,
            )
        };
        assert_eq!(status, GridsyncStatus::InvalidUtf8);
        assert!(last_message().contains("`path` is not valid UTF-8"));

        // SAFETY: NULL is the point.
        assert_eq!(
            unsafe { gridsync_engine_pending_changes(null_mut(), null_mut()) },
            GridsyncStatus::NullArgument
        );
        // SAFETY: as above.
        assert_eq!(
            unsafe { gridsync_new_device_id(null_mut()) },
            GridsyncStatus::NullArgument
        );
        // SAFETY: freeing NULL is allowed.
        unsafe {
            gridsync_engine_free(null_mut());
            gridsync_string_free(null_mut());
            gridsync_bytes_free(null_mut(), 3);
        }
    }

    #[test]
    fn a_success_clears_the_last_error_and_a_closed_engine_says_so() {
        let folder = tempfile::tempdir().expect("temp dir");
        let (status, _) = open(&folder.path().join("short.db"), &[1u8; 16]);
        assert_eq!(status, GridsyncStatus::InvalidInput);
        assert!(last_message().contains("32 bytes"));

        let (status, engine) = open(&folder.path().join("ok.db"), &[1u8; 32]);
        assert_eq!(status, GridsyncStatus::Ok, "{}", last_message());
        assert!(gridsync_last_error_message().is_null());
        let mut count = 99;
        // SAFETY: a live engine and valid out-pointers.
        unsafe {
            assert_eq!(
                gridsync_engine_pending_changes(engine, &mut count),
                GridsyncStatus::Ok
            );
            assert_eq!(count, 0);
            assert_eq!(gridsync_engine_close(engine), GridsyncStatus::Ok);
            assert_eq!(
                gridsync_engine_pending_changes(engine, &mut count),
                GridsyncStatus::Closed
            );
            gridsync_engine_free(engine);
        }
    }

    #[test]
    fn bad_case_json_is_invalid_input_and_reports_nothing() {
        let folder = tempfile::tempdir().expect("temp dir");
        let (status, engine) = open(&folder.path().join("w.db"), &[2u8; 32]);
        assert_eq!(status, GridsyncStatus::Ok);
        let mut id = null_mut();
        let mut count = 0;
        // SAFETY: a live engine, NUL-terminated strings, valid out-pointers.
        unsafe {
            assert_eq!(
                gridsync_engine_report_case(engine, c"{\"title\":".as_ptr(), &mut id),
                GridsyncStatus::InvalidInput
            );
            assert!(id.is_null());
            assert_eq!(
                gridsync_engine_report_case(
                    engine,
                    c"{\"title\":\"t\",\"category\":\"city\",\"severity\":\"high\"}".as_ptr(),
                    null_mut()
                ),
                GridsyncStatus::NullArgument,
                "a NULL out-pointer is refused before anything is reported"
            );
            assert_eq!(
                gridsync_engine_pending_changes(engine, &mut count),
                GridsyncStatus::Ok
            );
            gridsync_engine_free(engine);
        }
        assert_eq!(count, 0);
    }

    #[test]
    fn status_names_are_static_and_unknown_numbers_are_named_so() {
        let name = |code| {
            // SAFETY: a static NUL-terminated string.
            unsafe { std::ffi::CStr::from_ptr(gridsync_status_name(code)) }
                .to_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            name(GridsyncStatus::WrongKey as c_int),
            "GRIDSYNC_STATUS_WRONG_KEY"
        );
        assert_eq!(name(-5), "GRIDSYNC_STATUS_UNKNOWN");
    }
}
