//! A power cut for SQLite, and I/O errors on demand: a VFS that wraps the
//! platform's (unix) VFS and is registered as SQLite's default in the process under
//! test (`torture_phone`, `torture_relay`), before any connection opens. It lives in
//! this crate so that no shipped binary carries it.
//!
//! **Power cut.** Writes to a database, its WAL or its rollback journal go to an
//! overlay in this process's memory, one per file (shared by every handle on the
//! file, and kept when the file is closed: it is the page cache), and reach the real
//! file only at `xSync`, which writes them out and then calls the real `fsync`.
//! Reads, the file size and truncation see the overlay. A SIGKILL of the process then
//! leaves on disk exactly what SQLite synced: the state after a power cut. It is
//! stricter than a real disk, which may also have written some of the unsynced
//! pages (in any order) before the power went; a torn or reordered unsynced write is
//! not emulated. File creation and deletion (directory entries) are immediate.
//! Shared memory (`-shm`) is passed through: it is rebuilt from the WAL by the first
//! connection after the crash. SQLCipher encrypts above the VFS, so the overlay
//! holds ciphertext. Temporary files and everything outside SQLite (photo files) are
//! not buffered.
//!
//! **I/O errors.** A schedule of faults (`write:N`, `sync:N`, `read:N`: the N-th
//! call of that kind on a database, WAL or journal file since the process started)
//! makes that one call fail with `SQLITE_IOERR_WRITE`, `SQLITE_IOERR_FSYNC` or
//! `SQLITE_IOERR_READ` without doing anything; the calls after it work again. A
//! failed sync leaves the overlay as it was (the writes stay unsynced). Each fault
//! is announced on stderr (`powerloss_vfs: fault write:N`).
//!
//! Configured from the environment by [`install_from_env`]: `TORTURE_VFS=powerloss`
//! buffers, `TORTURE_VFS_FAULTS=write:12,sync:3` schedules faults, and
//! `TORTURE_VFS_LYING_SYNC=1` makes `xSync` report success without writing anything
//! out (a disk that lies about `fsync`: the check that the power-cut scenario can
//! fail).

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::ffi;

/// The overlay's granule: a write touches whole blocks of the overlay.
const BLOCK: u64 = 4096;

/// The name the shim is registered under.
pub const VFS_NAME: &CStr = c"torture-powerloss";

/// A kind of I/O call a fault can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `xWrite`.
    Write,
    /// `xSync`.
    Sync,
    /// `xRead`.
    Read,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Write => "write",
            Call::Sync => "sync",
            Call::Read => "read",
        }
    }
}

/// How the shim behaves in this process.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Hold unsynced writes in memory (the power cut).
    pub buffer: bool,
    /// `xSync` succeeds without writing out (a lying disk); only with `buffer`.
    pub lying_sync: bool,
    /// The calls that fail: (kind, 1-based ordinal among calls of that kind).
    pub faults: Vec<(Call, u64)>,
}

impl Config {
    /// From `TORTURE_VFS`, `TORTURE_VFS_FAULTS` and `TORTURE_VFS_LYING_SYNC`; `None`
    /// when none is set.
    pub fn from_env() -> Result<Option<Config>, String> {
        let mode = std::env::var("TORTURE_VFS").ok();
        let faults = std::env::var("TORTURE_VFS_FAULTS").ok();
        if mode.is_none() && faults.is_none() {
            return Ok(None);
        }
        let buffer = match mode.as_deref() {
            None | Some("") | Some("passthrough") => false,
            Some("powerloss") => true,
            Some(other) => return Err(format!("TORTURE_VFS={other:?}: powerloss or passthrough")),
        };
        let mut config = Config {
            buffer,
            lying_sync: std::env::var("TORTURE_VFS_LYING_SYNC").is_ok_and(|v| v == "1"),
            faults: Vec::new(),
        };
        for item in faults.as_deref().unwrap_or("").split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (kind, n) = item
                .split_once(':')
                .ok_or_else(|| format!("TORTURE_VFS_FAULTS: {item:?} is not kind:N"))?;
            let kind = match kind {
                "write" => Call::Write,
                "sync" => Call::Sync,
                "read" => Call::Read,
                _ => return Err(format!("TORTURE_VFS_FAULTS: no kind {kind:?}")),
            };
            let n: u64 = n
                .parse()
                .map_err(|_| format!("TORTURE_VFS_FAULTS: {item:?} is not kind:N"))?;
            config.faults.push((kind, n));
        }
        Ok(Some(config))
    }
}

/// Register the shim as SQLite's default VFS if the environment asks for it (see
/// the module's documentation). Call before any connection opens. True when
/// registered.
pub fn install_from_env() -> Result<bool, String> {
    match Config::from_env()? {
        Some(config) => install(config, true).map(|()| true),
        None => Ok(false),
    }
}

/// Calls of each kind so far on database, WAL and journal files: (writes, syncs,
/// reads).
pub fn calls() -> (u64, u64, u64) {
    (
        WRITES.load(Ordering::Relaxed),
        SYNCS.load(Ordering::Relaxed),
        READS.load(Ordering::Relaxed),
    )
}

/// Faults injected so far.
pub fn faults_injected() -> u64 {
    FAULTS_HIT.load(Ordering::Relaxed)
}

/// Bytes written but not yet synced, over every file (what a power cut now would
/// throw away).
pub fn unsynced_bytes() -> u64 {
    files()
        .values()
        .map(|o| {
            let o = lock(o);
            o.blocks.len() as u64 * BLOCK
        })
        .sum()
}

/// Throw every unsynced write away, as a power cut does, in a process that goes on
/// (unit tests: the connections must be closed first).
pub fn cut_power() {
    files().clear();
}

/// Register the shim (once per process; later calls change nothing but the
/// configuration) as the default VFS (`make_default`) or under [`VFS_NAME`] only.
pub fn install(config: Config, make_default: bool) -> Result<(), String> {
    BUFFER.store(config.buffer, Ordering::Relaxed);
    LYING_SYNC.store(config.lying_sync && config.buffer, Ordering::Relaxed);
    *FAULT_PLAN.lock().unwrap_or_else(|e| e.into_inner()) = config.faults;
    static REGISTERED: Mutex<bool> = Mutex::new(false);
    let mut registered = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if *registered {
        return Ok(());
    }
    // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are thread-safe and
    // initialise SQLite themselves. The real VFS lives for the whole process (the
    // platform VFS is static inside SQLite). The shim's `sqlite3_vfs` is leaked, so
    // the pointer SQLite keeps stays valid for the process's life; it is a copy of
    // the real one (same pAppData, so the real methods copied into it, which may read
    // pAppData, see what they expect) with the open, delete and file size replaced.
    unsafe {
        let real = ffi::sqlite3_vfs_find(ptr::null());
        if real.is_null() {
            return Err("SQLite has no default VFS".into());
        }
        REAL.store(real, Ordering::Release);
        let mut shim: ffi::sqlite3_vfs = ptr::read(real);
        shim.pNext = ptr::null_mut();
        shim.zName = VFS_NAME.as_ptr();
        shim.szOsFile = std::mem::size_of::<ShimFile>() as c_int;
        shim.xOpen = Some(shim_open);
        shim.xDelete = Some(shim_delete);
        let shim = Box::into_raw(Box::new(shim));
        let rc = ffi::sqlite3_vfs_register(shim, c_int::from(make_default));
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3_vfs_register: {rc}"));
        }
    }
    *registered = true;
    Ok(())
}

static REAL: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(ptr::null_mut());
static BUFFER: AtomicBool = AtomicBool::new(false);
static LYING_SYNC: AtomicBool = AtomicBool::new(false);
static FAULT_PLAN: Mutex<Vec<(Call, u64)>> = Mutex::new(Vec::new());
static WRITES: AtomicU64 = AtomicU64::new(0);
static SYNCS: AtomicU64 = AtomicU64::new(0);
static READS: AtomicU64 = AtomicU64::new(0);
static FAULTS_HIT: AtomicU64 = AtomicU64::new(0);

/// The overlays, by the full path SQLite opened (the same for every handle).
static FILES: Mutex<BTreeMap<String, Arc<Mutex<Overlay>>>> = Mutex::new(BTreeMap::new());

fn files() -> MutexGuard<'static, BTreeMap<String, Arc<Mutex<Overlay>>>> {
    FILES.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock(o: &Mutex<Overlay>) -> MutexGuard<'_, Overlay> {
    o.lock().unwrap_or_else(|e| e.into_inner())
}

/// Count a call of `kind` and say whether the schedule fails it.
fn fault(kind: Call) -> bool {
    let counter = match kind {
        Call::Write => &WRITES,
        Call::Sync => &SYNCS,
        Call::Read => &READS,
    };
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    let hit = FAULT_PLAN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|&(k, at)| k == kind && at == n);
    if hit {
        FAULTS_HIT.fetch_add(1, Ordering::Relaxed);
        eprintln!("powerloss_vfs: fault {}:{n}", kind.name());
    }
    hit
}

/// What this process has written to a file and not synced.
#[derive(Default)]
struct Overlay {
    /// The file differs from what is on disk; when false, everything passes
    /// through (another process may have changed the file meanwhile).
    dirty: bool,
    /// The file's size as this process sees it.
    len: u64,
    /// Bytes of the real file at or past this offset are not there any more (a
    /// truncation not yet synced).
    real_valid: u64,
    /// Written blocks, by index.
    blocks: BTreeMap<u64, Box<[u8]>>,
}

/// The `sqlite3_file` SQLite allocates for the shim (`szOsFile` bytes): the base
/// SQLite reads `pMethods` from, and our handle.
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    handle: *mut Handle,
}

/// One open file: the real file's memory and, if buffered, the file's overlay.
struct Handle {
    /// `szOsFile` bytes of the real VFS, 8-aligned, at a stable address (boxed).
    real: Box<[u64]>,
    overlay: Option<Arc<Mutex<Overlay>>>,
    /// A database, WAL or journal file: its calls are counted and may fail.
    durable: bool,
}

impl Handle {
    fn real(&mut self) -> *mut ffi::sqlite3_file {
        self.real.as_mut_ptr().cast()
    }
}

/// The handle behind `file`.
///
/// SAFETY: `file` is a `ShimFile` that `shim_open` opened successfully (SQLite only
/// calls the io methods of a file whose `pMethods` we set), and SQLite does not call
/// two methods of one `sqlite3_file` at once.
unsafe fn handle<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Handle {
    &mut *(*file.cast::<ShimFile>()).handle
}

/// Call the real file's method `$m`, or fail with `SQLITE_IOERR` if it has none.
macro_rules! real_call {
    ($real:expr, $m:ident $(, $arg:expr)*) => {{
        let real = $real;
        match (*(*real).pMethods).$m {
            Some(f) => f(real $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

fn is_durable(flags: c_int) -> bool {
    flags
        & (ffi::SQLITE_OPEN_MAIN_DB
            | ffi::SQLITE_OPEN_WAL
            | ffi::SQLITE_OPEN_MAIN_JOURNAL
            | ffi::SQLITE_OPEN_SUPER_JOURNAL)
        != 0
}

unsafe extern "C" fn shim_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real_vfs = REAL.load(Ordering::Acquire);
    let shim = file.cast::<ShimFile>();
    // SQLite reads pMethods to decide whether to close a file whose open failed.
    (*shim).base.pMethods = ptr::null();
    (*shim).handle = ptr::null_mut();
    let Some(open) = (*real_vfs).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    let words = ((*real_vfs).szOsFile.max(0) as usize).div_ceil(8);
    let mut h = Box::new(Handle {
        real: vec![0u64; words.max(1)].into_boxed_slice(),
        overlay: None,
        durable: is_durable(flags),
    });
    let real = h.real();
    let rc = open(real_vfs, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        if !(*real).pMethods.is_null() {
            real_call!(real, xClose);
        }
        return rc;
    }
    if h.durable && BUFFER.load(Ordering::Relaxed) && !name.is_null() {
        let path = CStr::from_ptr(name).to_string_lossy().into_owned();
        h.overlay = Some(files().entry(path).or_default().clone());
    }
    (*shim).handle = Box::into_raw(h);
    (*shim).base.pMethods = &METHODS;
    ffi::SQLITE_OK
}

unsafe extern "C" fn shim_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let real_vfs = REAL.load(Ordering::Acquire);
    if !name.is_null() {
        // The file is gone: what this process had not synced of it goes too (a
        // handle still open keeps its own overlay, as an unlinked inode stays).
        files().remove(CStr::from_ptr(name).to_string_lossy().as_ref());
    }
    match (*real_vfs).xDelete {
        Some(f) => f(real_vfs, name, sync_dir),
        None => ffi::SQLITE_IOERR_DELETE,
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // 2: shared memory, but no xFetch: SQLite then never maps the file into memory,
    // so every read of it comes through xRead.
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let shim = file.cast::<ShimFile>();
    let h = Box::from_raw((*shim).handle);
    (*shim).handle = ptr::null_mut();
    let mut h = h;
    let rc = real_call!(h.real(), xClose);
    // The overlay stays in FILES: unsynced writes outlive the handle, as the page
    // cache outlives a closed descriptor.
    drop(h);
    rc
}

/// The real file's size.
unsafe fn real_size(real: *mut ffi::sqlite3_file) -> Result<u64, c_int> {
    let mut size: ffi::sqlite3_int64 = 0;
    match real_call!(real, xFileSize, &mut size) {
        ffi::SQLITE_OK => Ok(size.max(0) as u64),
        rc => Err(rc),
    }
}

/// Read `out.len()` bytes of the real file at `off`, zeros past its end.
unsafe fn read_real(real: *mut ffi::sqlite3_file, out: &mut [u8], off: u64) -> c_int {
    let rc = real_call!(
        real,
        xRead,
        out.as_mut_ptr().cast::<c_void>(),
        out.len() as c_int,
        off as ffi::sqlite3_int64
    );
    // A short read has zero-filled the rest.
    if rc == ffi::SQLITE_IOERR_SHORT_READ {
        ffi::SQLITE_OK
    } else {
        rc
    }
}

/// Zero the bytes of `out` (which holds the file from `off`) at `from` and after.
fn zero_from(out: &mut [u8], off: u64, from: u64) {
    if from < off + out.len() as u64 {
        let start = from.saturating_sub(off) as usize;
        out[start..].fill(0);
    }
}

/// The file as this process sees it, from `off`, into `out`.
unsafe fn overlay_read(
    real: *mut ffi::sqlite3_file,
    o: &Overlay,
    out: &mut [u8],
    off: u64,
) -> c_int {
    let rc = read_real(real, out, off);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    zero_from(out, off, o.real_valid);
    let end = off + out.len() as u64;
    if end > off {
        for (&i, block) in o.blocks.range(off / BLOCK..=(end - 1) / BLOCK) {
            let b_start = i * BLOCK;
            let from = off.max(b_start);
            let to = end.min(b_start + BLOCK);
            out[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&block[(from - b_start) as usize..(to - b_start) as usize]);
        }
    }
    if end > o.len {
        zero_from(out, off, o.len);
        return ffi::SQLITE_IOERR_SHORT_READ;
    }
    ffi::SQLITE_OK
}

/// Start buffering a clean file: its size is the real file's now.
unsafe fn make_dirty(real: *mut ffi::sqlite3_file, o: &mut Overlay) -> c_int {
    if !o.dirty {
        match real_size(real) {
            Ok(size) => {
                o.len = size;
                o.real_valid = size;
                o.blocks.clear();
                o.dirty = true;
            }
            Err(rc) => return rc,
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    let h = handle(file);
    if h.durable && fault(Call::Read) {
        return ffi::SQLITE_IOERR_READ;
    }
    let real = h.real();
    let Some(overlay) = &h.overlay else {
        return real_call!(real, xRead, buf, amt, off);
    };
    let o = lock(overlay);
    if !o.dirty {
        drop(o);
        return real_call!(real, xRead, buf, amt, off);
    }
    // SAFETY: SQLite hands a buffer of `amt` bytes.
    let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), amt.max(0) as usize);
    overlay_read(real, &o, out, off.max(0) as u64)
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    let h = handle(file);
    if h.durable && fault(Call::Write) {
        return ffi::SQLITE_IOERR_WRITE;
    }
    let real = h.real();
    let Some(overlay) = &h.overlay else {
        return real_call!(real, xWrite, buf, amt, off);
    };
    let mut o = lock(overlay);
    let rc = make_dirty(real, &mut o);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    // SAFETY: SQLite hands `amt` bytes.
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), amt.max(0) as usize);
    let off = off.max(0) as u64;
    let end = off + data.len() as u64;
    if data.is_empty() {
        return ffi::SQLITE_OK;
    }
    for i in off / BLOCK..=(end - 1) / BLOCK {
        let b_start = i * BLOCK;
        if !o.blocks.contains_key(&i) {
            // The block as the file holds it now, to write into.
            let mut block = vec![0u8; BLOCK as usize].into_boxed_slice();
            let rc = read_real(real, &mut block, b_start);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            zero_from(&mut block, b_start, o.real_valid);
            o.blocks.insert(i, block);
        }
        let from = off.max(b_start);
        let to = end.min(b_start + BLOCK);
        if let Some(block) = o.blocks.get_mut(&i) {
            block[(from - b_start) as usize..(to - b_start) as usize]
                .copy_from_slice(&data[(from - off) as usize..(to - off) as usize]);
        }
    }
    o.len = o.len.max(end);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    let h = handle(file);
    let real = h.real();
    let Some(overlay) = &h.overlay else {
        return real_call!(real, xTruncate, size);
    };
    let mut o = lock(overlay);
    let rc = make_dirty(real, &mut o);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let size = size.max(0) as u64;
    let first_gone = size.div_ceil(BLOCK);
    o.blocks.retain(|&i, _| i < first_gone);
    if size % BLOCK != 0 {
        if let Some(block) = o.blocks.get_mut(&(size / BLOCK)) {
            zero_from(block, (size / BLOCK) * BLOCK, size);
        }
    }
    o.len = size;
    o.real_valid = o.real_valid.min(size);
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let h = handle(file);
    if h.durable && fault(Call::Sync) {
        return ffi::SQLITE_IOERR_FSYNC;
    }
    let real = h.real();
    let Some(overlay) = &h.overlay else {
        return real_call!(real, xSync, flags);
    };
    if LYING_SYNC.load(Ordering::Relaxed) {
        return ffi::SQLITE_OK;
    }
    let mut o = lock(overlay);
    if o.dirty {
        for (&i, block) in &o.blocks {
            let b_start = i * BLOCK;
            let n = (o.len.saturating_sub(b_start)).min(BLOCK) as usize;
            if n == 0 {
                continue;
            }
            let rc = real_call!(
                real,
                xWrite,
                block.as_ptr().cast::<c_void>(),
                n as c_int,
                b_start as ffi::sqlite3_int64
            );
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        match real_size(real) {
            Ok(size) if size != o.len => {
                let rc = real_call!(real, xTruncate, o.len as ffi::sqlite3_int64);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
            }
            Ok(_) => {}
            Err(rc) => return rc,
        }
    }
    let rc = real_call!(real, xSync, flags);
    if rc == ffi::SQLITE_OK {
        o.blocks.clear();
        o.dirty = false;
    }
    rc
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    let h = handle(file);
    let real = h.real();
    if let Some(overlay) = &h.overlay {
        let o = lock(overlay);
        if o.dirty {
            *size = o.len as ffi::sqlite3_int64;
            return ffi::SQLITE_OK;
        }
    }
    real_call!(real, xFileSize, size)
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    real_call!(handle(file).real(), xLock, level)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    real_call!(handle(file).real(), xUnlock, level)
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    real_call!(handle(file).real(), xCheckReservedLock, out)
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let h = handle(file);
    // Size hints and chunk sizes would make the real VFS grow the real file
    // directly, under the overlay: they are hints, and declined.
    if h.overlay.is_some()
        && (op == ffi::SQLITE_FCNTL_SIZE_HINT || op == ffi::SQLITE_FCNTL_CHUNK_SIZE)
    {
        return ffi::SQLITE_OK;
    }
    real_call!(h.real(), xFileControl, op, arg)
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let real = handle(file).real();
    match (*(*real).pMethods).xSectorSize {
        Some(f) => f(real),
        None => 4096,
    }
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let real = handle(file).real();
    match (*(*real).pMethods).xDeviceCharacteristics {
        Some(f) => f(real),
        None => 0,
    }
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    real_call!(handle(file).real(), xShmMap, region, size, extend, out)
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    real_call!(handle(file).real(), xShmLock, offset, n, flags)
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let real = handle(file).real();
    if let Some(f) = (*(*real).pMethods).xShmBarrier {
        f(real);
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    real_call!(handle(file).real(), xShmUnmap, delete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn open(path: &std::path::Path, journal_mode: &str) -> Connection {
        let conn = Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            VFS_NAME,
        )
        .expect("opens through the shim");
        conn.pragma_update(None, "journal_mode", journal_mode)
            .expect("journal mode");
        conn
    }

    fn rows(path: &std::path::Path) -> i64 {
        // Through the real VFS: what is on disk.
        Connection::open(path)
            .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .unwrap_or(-1)
    }

    /// The shim's configuration is per process: the cases run one after another.
    #[test]
    fn a_power_cut_keeps_what_was_synced_and_only_that() {
        install(
            Config {
                buffer: true,
                ..Default::default()
            },
            false,
        )
        .expect("registers");
        let dir = tempfile::tempdir().expect("temp dir");

        // synchronous = FULL: every commit is synced, so all of it survives.
        let full = dir.path().join("full.db");
        {
            let conn = open(&full, "WAL");
            conn.pragma_update(None, "synchronous", "FULL")
                .expect("FULL");
            conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
                .expect("writes");
            assert!(
                unsynced_bytes() == 0,
                "a FULL commit leaves nothing unsynced"
            );
            // Seen through the shim while it runs.
            let n: i64 = conn
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .expect("reads");
            assert_eq!(n, 2);
            std::mem::forget(conn); // the process dies: no close, no checkpoint
        }
        cut_power();
        assert_eq!(rows(&full), 2);

        // synchronous = OFF: nothing is synced, so a cut loses the commits, though
        // the process read them back. (A rollback journal: in WAL mode the killed
        // process's shared memory would be gone with it, which a test that goes on in
        // the same process cannot show.)
        let off = dir.path().join("off.db");
        {
            let conn = open(&off, "DELETE");
            conn.pragma_update(None, "synchronous", "FULL")
                .expect("FULL");
            conn.execute_batch("CREATE TABLE t (x);").expect("schema");
            conn.pragma_update(None, "synchronous", "OFF").expect("OFF");
            conn.execute_batch("INSERT INTO t VALUES (1), (2), (3);")
                .expect("writes");
            let n: i64 = conn
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .expect("reads");
            assert_eq!(n, 3);
            assert!(unsynced_bytes() > 0);
            std::mem::forget(conn);
        }
        cut_power();
        assert_eq!(rows(&off), 0, "the unsynced rows are gone");

        // A scheduled fault fails that one call, and the next works.
        let io = dir.path().join("io.db");
        let conn = open(&io, "WAL");
        conn.execute_batch("CREATE TABLE t (x);").expect("schema");
        let (writes, _, _) = calls();
        install(
            Config {
                buffer: true,
                faults: vec![(Call::Write, writes + 1)],
                ..Default::default()
            },
            false,
        )
        .expect("configures");
        let failed = conn.execute("INSERT INTO t VALUES (1)", []);
        assert!(failed.is_err(), "the faulted write fails the statement");
        conn.execute("INSERT INTO t VALUES (2)", [])
            .expect("the next write works");
        drop(conn);
        assert_eq!(rows(&io), 1);
        assert_eq!(faults_injected(), 1);
    }
}
