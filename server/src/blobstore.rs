//! Where the relay keeps photos: a local folder for one node, or an S3 bucket that
//! every node of a cluster shares. Both keep complete photos under their hash and the
//! partial uploads devices resume, so a device's next chunk may reach any node.
//!
//! The trait is synchronous: the relay calls it from blocking threads and the CLI
//! from plain code. The S3 store therefore owns a small tokio runtime of its own and
//! waits on it with `Runtime::block_on`, which works on any thread that is not
//! itself running async code (a `spawn_blocking` closure included).

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gridsync_core::blobs::Blobs;
use gridsync_core::PhotoHash;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, RetryConfig};

/// The name a local photo file takes while it is being removed: `.erasing-<hash>`.
const ERASING_PREFIX: &str = ".erasing-";

/// Where the relay keeps photos: every node of a cluster must see the same store.
pub trait BlobStore: Send + Sync {
    /// Store a complete, verified photo under its hash, durably, before returning (idempotent).
    fn put(&self, hash: &PhotoHash, bytes: &[u8]) -> Result<(), BlobStoreError>;
    /// Up to `len` bytes of a stored photo from `offset` (fewer at its end; empty past it).
    fn read_range(
        &self,
        hash: &PhotoHash,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BlobStoreError>;
    /// A whole stored photo.
    fn read(&self, hash: &PhotoHash) -> Result<Vec<u8>, BlobStoreError>;
    /// Remove a stored photo for good (no error if absent): an erased document's.
    fn remove(&self, hash: &PhotoHash) -> Result<(), BlobStoreError>;
    /// Resumable uploads, shared by every node (a device's next chunk may reach another node):
    /// the bytes received so far under `key` (0 if none).
    fn partial_len(&self, key: &str) -> Result<u64, BlobStoreError>;
    /// Append `bytes` to partial `key` durably; returns its new length.
    fn append_partial(&self, key: &str, bytes: &[u8]) -> Result<u64, BlobStoreError>;
    /// The whole partial `key`.
    fn read_partial(&self, key: &str) -> Result<Vec<u8>, BlobStoreError>;
    /// Forget partial `key` (no error if absent).
    fn remove_partial(&self, key: &str) -> Result<(), BlobStoreError>;
    /// Every partial upload, with when it last grew.
    fn partials(&self) -> Result<Vec<PartialUpload>, BlobStoreError>;
    /// A short description for logs and `gridsync` output, without secrets (e.g.
    /// "s3://bucket/prefix at http://127.0.0.1:9000" or "local folder /data/blobs").
    fn describe(&self) -> String;
}

/// A partial upload as [`BlobStore::partials`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialUpload {
    /// Its key.
    pub key: String,
    /// When it last grew.
    pub modified: std::time::SystemTime,
}

/// What went wrong in a photo store. Messages name photos by hash and partial
/// uploads by key, never credentials.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    /// No such photo or partial upload.
    #[error("photo store: {what} is not stored")]
    NotFound {
        /// "photo <hash>" or "partial upload <key>".
        what: String,
    },
    /// A partial upload key that is empty, too long or not `[A-Za-z0-9-]`.
    #[error(
        "photo store: a partial upload key must be 1 to {} ASCII letters, digits or '-'",
        MAX_KEY_LEN
    )]
    InvalidKey,
    /// The store cannot be opened as configured (bad URL, unreachable bucket, …).
    #[error("photo store: {0}")]
    Config(String),
    /// The local folder failed.
    #[error("photo store: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The object store (S3) failed.
    #[error("photo store: {context}: {source}")]
    Remote {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
}

/// The longest partial upload key accepted.
pub const MAX_KEY_LEN: usize = 200;

/// The folder (or key prefix) of partial uploads, beside the photos.
const PARTIAL: &str = "partial";

/// Keys become file names and object keys: only a safe alphabet, never a path.
fn check_key(key: &str) -> Result<(), BlobStoreError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BlobStoreError::InvalidKey)
    }
}

fn photo_name(hash: &PhotoHash) -> String {
    format!("photo {hash}")
}

fn partial_name(key: &str) -> String {
    format!("partial upload {key}")
}

/// The photo store the relay should use: S3 when configured, else the `blobs`
/// folder inside the data folder.
pub fn open_blob_store(
    photos: Option<&S3Config>,
    data: &Path,
) -> Result<Arc<dyn BlobStore>, BlobStoreError> {
    Ok(match photos {
        Some(config) => Arc::new(S3BlobStore::open(config)?),
        None => Arc::new(LocalBlobStore::at(&data.join("blobs"))),
    })
}

/// Photos in a local folder (one node): `<root>/<aa>/<hash>.jpg`, and partial
/// uploads in `<root>/partial/<key>`.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    blobs: Blobs,
}

impl LocalBlobStore {
    /// The store in the folder `root` (created when first written).
    pub fn at(root: &Path) -> LocalBlobStore {
        LocalBlobStore {
            root: root.to_owned(),
            blobs: Blobs::at(root),
        }
    }

    fn partial_path(&self, key: &str) -> Result<PathBuf, BlobStoreError> {
        check_key(key)?;
        Ok(self.root.join(PARTIAL).join(key))
    }
}

/// An io error as a store error, `NotFound` kept apart.
fn io_error(what: impl FnOnce() -> String, doing: &str, e: std::io::Error) -> BlobStoreError {
    if e.kind() == ErrorKind::NotFound {
        BlobStoreError::NotFound { what: what() }
    } else {
        BlobStoreError::Io {
            context: format!("{doing} {}", what()),
            source: e,
        }
    }
}

impl BlobStore for LocalBlobStore {
    fn put(&self, hash: &PhotoHash, bytes: &[u8]) -> Result<(), BlobStoreError> {
        self.blobs
            .write(hash, bytes)
            .map_err(|e| BlobStoreError::Io {
                context: format!("writing {}", photo_name(hash)),
                source: e,
            })
    }

    fn read_range(
        &self,
        hash: &PhotoHash,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BlobStoreError> {
        self.blobs
            .read_range(hash, offset, len)
            .map_err(|e| io_error(|| photo_name(hash), "reading", e))
    }

    fn read(&self, hash: &PhotoHash) -> Result<Vec<u8>, BlobStoreError> {
        self.blobs
            .read(hash)
            .map_err(|e| io_error(|| photo_name(hash), "reading", e))
    }

    fn remove(&self, hash: &PhotoHash) -> Result<(), BlobStoreError> {
        // First renamed out of the photo's name, so that name never holds a
        // half-zeroed file (a crash there would leave one that an upload of the
        // same bytes takes for stored); then its bytes overwritten and synced
        // before it goes, as `secure_delete` zeroes a database's freed pages. A
        // crash after the rename leaves the renamed file to the next try, which
        // finishes it first. On a copy-on-write file system or an SSD the old
        // blocks may survive the overwrite: keep the data folder on an
        // encrypted volume. An S3 bucket with versioning keeps old versions.
        let path = self.blobs.path(hash);
        let fail = |e| io_error(|| photo_name(hash), "removing", e);
        let dir = path.parent().unwrap_or(Path::new("."));
        let doomed = dir.join(format!("{ERASING_PREFIX}{hash}"));
        let sync_dir = || File::open(dir).and_then(|d| d.sync_all()).map_err(fail);
        let zero_and_unlink = || -> Result<(), BlobStoreError> {
            let mut f = match OpenOptions::new().write(true).open(&doomed) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(fail(e)),
            };
            let zeros = vec![0u8; 64 * 1024];
            let mut left = f.metadata().map_err(fail)?.len();
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                f.write_all(&zeros[..n]).map_err(fail)?;
                left -= n as u64;
            }
            f.sync_all().map_err(fail)?;
            fs::remove_file(&doomed).map_err(fail)?;
            sync_dir()
        };
        zero_and_unlink()?;
        match fs::rename(&path, &doomed) {
            Ok(()) => sync_dir()?,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(fail(e)),
        }
        zero_and_unlink()
    }

    fn partial_len(&self, key: &str) -> Result<u64, BlobStoreError> {
        match fs::metadata(self.partial_path(key)?) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_error(|| partial_name(key), "reading", e)),
        }
    }

    fn append_partial(&self, key: &str, bytes: &[u8]) -> Result<u64, BlobStoreError> {
        let path = self.partial_path(key)?;
        let fail = |e| BlobStoreError::Io {
            context: format!("appending to {}", partial_name(key)),
            source: e,
        };
        let dir = self.root.join(PARTIAL);
        fs::create_dir_all(&dir).map_err(fail)?;
        let new = !path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(fail)?;
        f.write_all(bytes).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        if new {
            // A new file's name must survive a power loss with its bytes.
            File::open(&dir).and_then(|d| d.sync_all()).map_err(fail)?;
        }
        Ok(f.metadata().map_err(fail)?.len())
    }

    fn read_partial(&self, key: &str) -> Result<Vec<u8>, BlobStoreError> {
        fs::read(self.partial_path(key)?).map_err(|e| io_error(|| partial_name(key), "reading", e))
    }

    fn remove_partial(&self, key: &str) -> Result<(), BlobStoreError> {
        match fs::remove_file(self.partial_path(key)?) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(io_error(|| partial_name(key), "removing", e))
            }
            _ => Ok(()),
        }
    }

    fn partials(&self) -> Result<Vec<PartialUpload>, BlobStoreError> {
        let listing = || "partial uploads".to_owned();
        let entries = match fs::read_dir(self.root.join(PARTIAL)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(listing, "listing", e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(listing, "listing", e))?;
            let Some(key) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // Removed since the listing began: nothing to list.
            let modified = match entry.metadata().and_then(|m| m.modified()) {
                Ok(t) => t,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(|| partial_name(&key), "reading", e)),
            };
            if check_key(&key).is_ok() {
                found.push(PartialUpload { key, modified });
            }
        }
        Ok(found)
    }

    fn describe(&self) -> String {
        format!("local folder {}", self.root.display())
    }
}

/// Where an S3 (or S3-compatible: MinIO, Ceph, R2, …) photo store is.
///
/// Credentials come from the standard environment (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, and the other `AWS_*`
/// variables `object_store` reads); the fields here override it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// The S3 endpoint, for stores other than AWS (e.g. `http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// The region (AWS's default, us-east-1, if neither this nor the environment says).
    pub region: Option<String>,
    /// Permit a plain `http://` endpoint (`AWS_ALLOW_HTTP=true` also does).
    pub allow_http: bool,
    /// The access key id, overriding `AWS_ACCESS_KEY_ID`. Prefer the environment for
    /// secrets.
    pub access_key_id: Option<String>,
    /// The secret access key, overriding `AWS_SECRET_ACCESS_KEY`. Prefer the
    /// environment for secrets.
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("S3Config")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint.as_deref().map(without_userinfo))
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &hidden(&self.access_key_id))
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .finish()
    }
}

/// A URL without any `user:password@` in it, for messages.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Split `s3://bucket/prefix` into the bucket and the prefix (possibly empty).
fn parse_s3_url(url: &str) -> Result<(String, String), BlobStoreError> {
    let bad = || {
        BlobStoreError::Config(format!(
            "{:?} is not an S3 URL (s3://bucket or s3://bucket/prefix)",
            without_userinfo(url)
        ))
    };
    let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(bad());
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

/// Photos in an S3 bucket, shared by every node: `<prefix>/photos/<hash>` and partial
/// uploads at `<prefix>/partial/<key>`.
///
/// Its calls wait on a runtime of its own: make them from blocking threads
/// (`tokio::task::spawn_blocking`) or plain code, never from inside async code, where
/// waiting would panic.
pub struct S3BlobStore {
    /// Always `Some` until dropped (taken to shut it down without blocking).
    runtime: Option<tokio::runtime::Runtime>,
    store: AmazonS3,
    photos: ObjectPath,
    partials: ObjectPath,
    description: String,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("store", &self.description)
            .finish_non_exhaustive()
    }
}

/// How long opening waits for the bucket to answer before giving up.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

impl S3BlobStore {
    /// Open the store and check that its bucket answers with these credentials, so
    /// a misconfigured store fails at startup rather than at the first photo.
    pub fn open(config: &S3Config) -> Result<S3BlobStore, BlobStoreError> {
        let (bucket, prefix) = parse_s3_url(&config.url)?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if config.allow_http {
            builder = builder.with_allow_http(true);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        // A relay request waits on these calls: a few quick retries, not object_store's
        // default of ten over three minutes.
        builder = builder.with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        });

        let at = match builder.get_config_value(&AmazonS3ConfigKey::Endpoint) {
            Some(endpoint) => without_userinfo(&endpoint),
            None => {
                let region = builder
                    .get_config_value(&AmazonS3ConfigKey::Region)
                    .unwrap_or_else(|| "us-east-1".into());
                format!("AWS {region}")
            }
        };
        let description = if prefix.is_empty() {
            format!("s3://{bucket} at {at}")
        } else {
            format!("s3://{bucket}/{prefix} at {at}")
        };

        let store = builder
            .build()
            .map_err(|e| BlobStoreError::Config(format!("{description}: {e}")))?;
        let root = ObjectPath::parse(&prefix).map_err(|e| {
            BlobStoreError::Config(format!("{description}: the prefix is not a valid key: {e}"))
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gridsync-s3")
            .enable_all()
            .build()
            .map_err(|e| BlobStoreError::Io {
                context: "starting the S3 client's runtime".into(),
                source: e,
            })?;
        let s3 = S3BlobStore {
            runtime: Some(runtime),
            store,
            photos: root.child("photos"),
            partials: root.child(PARTIAL),
            description,
        };
        s3.check_reachable()?;
        Ok(s3)
    }

    /// One listing of a prefix nothing is stored under: it fails on a wrong endpoint,
    /// bucket, region or credentials, and costs one request when all is well.
    fn check_reachable(&self) -> Result<(), BlobStoreError> {
        let probe = self.partials.child("gridsync-open-check");
        let listed = self.run(async {
            tokio::time::timeout(OPEN_TIMEOUT, self.store.list_with_delimiter(Some(&probe)))
                .await
                .map_err(|_| {
                    BlobStoreError::Config(format!(
                        "{} did not answer within {} s",
                        self.description,
                        OPEN_TIMEOUT.as_secs()
                    ))
                })
        })?;
        listed.map(|_| ()).map_err(|e| {
            BlobStoreError::Config(format!(
                "cannot reach {} (check the URL, endpoint, region and credentials): {e}",
                self.description
            ))
        })
    }

    /// Wait for `fut` on the store's own runtime.
    fn run<T>(
        &self,
        fut: impl Future<Output = Result<T, BlobStoreError>>,
    ) -> Result<T, BlobStoreError> {
        match &self.runtime {
            Some(runtime) => runtime.block_on(fut),
            None => Err(BlobStoreError::Config(format!(
                "{} is closed",
                self.description
            ))),
        }
    }

    fn photo_path(&self, hash: &PhotoHash) -> ObjectPath {
        self.photos.child(hash.as_str())
    }

    fn partial_path(&self, key: &str) -> Result<ObjectPath, BlobStoreError> {
        check_key(key)?;
        Ok(self.partials.child(key))
    }

    /// A whole object, `None` if absent.
    async fn get(&self, path: &ObjectPath) -> Result<Option<Vec<u8>>, object_store::Error> {
        match self.store.get(path).await {
            Ok(got) => Ok(Some(got.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// An object store error as a store error, `NotFound` kept apart.
fn remote_error(
    what: impl FnOnce() -> String,
    doing: &str,
    e: object_store::Error,
) -> BlobStoreError {
    match e {
        object_store::Error::NotFound { .. } => BlobStoreError::NotFound { what: what() },
        e => BlobStoreError::Remote {
            context: format!("{doing} {}", what()),
            source: e,
        },
    }
}

impl BlobStore for S3BlobStore {
    fn put(&self, hash: &PhotoHash, bytes: &[u8]) -> Result<(), BlobStoreError> {
        // S3 acknowledges a PUT only once the object is durable; a second put of the
        // same hash writes the same bytes again.
        let path = self.photo_path(hash);
        self.run(async {
            self.store
                .put(&path, PutPayload::from(bytes.to_vec()))
                .await
                .map(|_| ())
                .map_err(|e| remote_error(|| photo_name(hash), "writing", e))
        })
    }

    fn read_range(
        &self,
        hash: &PhotoHash,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BlobStoreError> {
        let path = self.photo_path(hash);
        let fail = |e| remote_error(|| photo_name(hash), "reading", e);
        self.run(async {
            if len > 0 {
                match self
                    .store
                    .get_range(&path, offset..offset.saturating_add(len))
                    .await
                {
                    Ok(bytes) => return Ok(bytes.to_vec()),
                    // S3 refuses a range that starts at or past the end (416): only a
                    // HEAD tells that case from a real failure.
                    Err(e @ object_store::Error::NotFound { .. }) => return Err(fail(e)),
                    Err(e) => {
                        let meta = self.store.head(&path).await.map_err(fail)?;
                        if offset < meta.size {
                            return Err(fail(e));
                        }
                    }
                }
            } else {
                // Nothing asked for, but a missing photo is still an error.
                self.store.head(&path).await.map_err(fail)?;
            }
            Ok(Vec::new())
        })
    }

    fn read(&self, hash: &PhotoHash) -> Result<Vec<u8>, BlobStoreError> {
        let path = self.photo_path(hash);
        self.run(async {
            self.get(&path)
                .await
                .map_err(|e| remote_error(|| photo_name(hash), "reading", e))?
                .ok_or_else(|| BlobStoreError::NotFound {
                    what: photo_name(hash),
                })
        })
    }

    fn remove(&self, hash: &PhotoHash) -> Result<(), BlobStoreError> {
        let path = self.photo_path(hash);
        self.run(async {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(remote_error(|| photo_name(hash), "removing", e)),
            }
        })
    }

    fn partial_len(&self, key: &str) -> Result<u64, BlobStoreError> {
        let path = self.partial_path(key)?;
        self.run(async {
            match self.store.head(&path).await {
                Ok(meta) => Ok(meta.size),
                Err(object_store::Error::NotFound { .. }) => Ok(0),
                Err(e) => Err(remote_error(|| partial_name(key), "reading", e)),
            }
        })
    }

    fn append_partial(&self, key: &str, bytes: &[u8]) -> Result<u64, BlobStoreError> {
        // S3 cannot append: read the partial, write it back longer. Photos are at most
        // 16 MiB and chunks at most 1 MiB, so this stays small. Two nodes appending at
        // once (a device retrying on another node) leave the last write; the relay
        // checks every chunk's offset against `partial_len` and the whole photo
        // against its hash, so a lost chunk is sent again, never stored wrong.
        let path = self.partial_path(key)?;
        let fail = |e| remote_error(|| partial_name(key), "appending to", e);
        self.run(async {
            let mut all = self.get(&path).await.map_err(fail)?.unwrap_or_default();
            all.extend_from_slice(bytes);
            let len = all.len() as u64;
            self.store
                .put(&path, PutPayload::from(all))
                .await
                .map_err(fail)?;
            Ok(len)
        })
    }

    fn read_partial(&self, key: &str) -> Result<Vec<u8>, BlobStoreError> {
        let path = self.partial_path(key)?;
        self.run(async {
            self.get(&path)
                .await
                .map_err(|e| remote_error(|| partial_name(key), "reading", e))?
                .ok_or_else(|| BlobStoreError::NotFound {
                    what: partial_name(key),
                })
        })
    }

    fn remove_partial(&self, key: &str) -> Result<(), BlobStoreError> {
        let path = self.partial_path(key)?;
        self.run(async {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(remote_error(|| partial_name(key), "removing", e)),
            }
        })
    }

    fn partials(&self) -> Result<Vec<PartialUpload>, BlobStoreError> {
        self.run(async {
            let listed = self
                .store
                .list_with_delimiter(Some(&self.partials))
                .await
                .map_err(|e| remote_error(|| "partial uploads".to_owned(), "listing", e))?;
            Ok(listed
                .objects
                .into_iter()
                .filter_map(|o| {
                    let key = o.location.filename()?.to_owned();
                    check_key(&key).ok()?;
                    Some(PartialUpload {
                        key,
                        modified: o.last_modified.into(),
                    })
                })
                .collect())
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl Drop for S3BlobStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside async code (the relay may drop
        // its last handle there): let its thread wind down on its own instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A removal zeroes the bytes and leaves nothing under the photo's name or its removal name, and
    /// one a crash cut short after the rename (the bytes still there under the
    /// removal name) is finished by the next, also when the same bytes were put
    /// again meanwhile.
    #[test]
    fn a_removed_photo_leaves_no_file_and_a_cut_removal_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::at(dir.path());
        let bytes = b"CANARY-BYTES-77e0 to remove".to_vec();
        let hash: PhotoHash = "ab".repeat(32).parse().unwrap();
        store.put(&hash, &bytes).unwrap();
        let path = store.blobs.path(&hash);
        let doomed = path.with_file_name(format!("{ERASING_PREFIX}{hash}"));
        // A second name for the same bytes sees them overwritten.
        let witness = dir.path().join("witness");
        fs::hard_link(&path, &witness).unwrap();
        store.remove(&hash).unwrap();
        assert!(!path.exists() && !doomed.exists());
        assert_eq!(fs::read(&witness).unwrap(), vec![0u8; bytes.len()]);
        store.remove(&hash).unwrap();

        for again in [false, true] {
            store.put(&hash, &bytes).unwrap();
            fs::rename(&path, &doomed).unwrap();
            if again {
                store.put(&hash, &bytes).unwrap();
            }
            store.remove(&hash).unwrap();
            assert!(!path.exists() && !doomed.exists(), "again: {again}");
            assert!(matches!(
                store.read(&hash),
                Err(BlobStoreError::NotFound { .. })
            ));
        }
    }

    #[test]
    fn keys_are_a_safe_alphabet() {
        assert!(check_key("ab12-DEVICE-1048576").is_ok());
        assert!(check_key(&"a".repeat(MAX_KEY_LEN)).is_ok());
        for bad in [
            "",
            "../x",
            "a/b",
            "a b",
            "a.b",
            "é",
            &"a".repeat(MAX_KEY_LEN + 1),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn s3_urls_give_bucket_and_prefix() {
        let parse = |u| parse_s3_url(u).map_err(|e| e.to_string());
        assert_eq!(parse("s3://photos").unwrap(), ("photos".into(), "".into()));
        assert_eq!(
            parse("s3://photos/a/b/").unwrap(),
            ("photos".into(), "a/b".into())
        );
        for bad in [
            "photos",
            "https://photos",
            "s3://",
            "s3:///x",
            "s3://Bad_Bucket",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn secrets_stay_out_of_urls_and_debug() {
        assert_eq!(
            without_userinfo("http://key:secret@127.0.0.1:9000/x"),
            "http://127.0.0.1:9000/x"
        );
        assert_eq!(without_userinfo("http://host/a@b"), "http://host/a@b");
        let config = S3Config {
            url: "s3://b".into(),
            secret_access_key: Some("s3cr3t".into()),
            ..S3Config::default()
        };
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }
}
