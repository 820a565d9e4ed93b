//! The photo stores, a local folder and S3, held to one suite: what the relay (and so
//! a user) relies on, checked the same way against both. The S3 store runs against
//! moto's S3 server ([`gridsync_tests::s3::Moto`]).

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridsync_core::blobs::Blobs;
use gridsync_core::photo::hash_of;
use gridsync_core::PhotoHash;
use gridsync_server::blobstore::{
    open_blob_store, BlobStore, BlobStoreError, LocalBlobStore, S3BlobStore, S3Config, MAX_KEY_LEN,
};
use gridsync_tests::s3::{free_port, Moto, ACCESS_KEY_ID, SECRET_ACCESS_KEY as SECRET};

// ---------------------------------------------------------------------------------
// The shared suite
// ---------------------------------------------------------------------------------

/// Opens one more store on the same place, as another relay node would.
type Open<'a> = &'a dyn Fn() -> Box<dyn BlobStore>;

/// Every check, against stores opened by `open` on one (empty) place.
fn suite(open: Open) {
    let store = open();
    photo_reads_back_whole_and_by_ranges(&*store);
    put_is_idempotent(&*store, &*open());
    missing_photo_is_an_error(&*store);
    bad_partial_keys_are_rejected(&*store);
    partial_uploads_are_shared_between_nodes(&*store, &*open());
    partial_uploads_are_listed_on_every_node(&*store, &*open());
}

fn partial_uploads_are_listed_on_every_node(node_a: &dyn BlobStore, node_b: &dyn BlobStore) {
    let keys = |store: &dyn BlobStore| {
        let mut keys: Vec<String> = store
            .partials()
            .expect("listed")
            .into_iter()
            .map(|p| p.key)
            .filter(|k| k.starts_with("listed-"))
            .collect();
        keys.sort();
        keys
    };
    assert!(keys(node_b).is_empty());
    let before = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    node_a.append_partial("listed-1", b"one").expect("append");
    node_a.append_partial("listed-2", b"two").expect("append");
    assert_eq!(keys(node_b), ["listed-1", "listed-2"]);
    assert!(node_b
        .partials()
        .expect("listed")
        .iter()
        .all(|p| p.modified > before));
    node_b.remove_partial("listed-1").expect("remove");
    assert_eq!(keys(node_a), ["listed-2"]);
    node_a.remove_partial("listed-2").expect("remove");
}

/// Bytes that look like nothing in particular (so a shifted range would show).
fn photo_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn photo_reads_back_whole_and_by_ranges(store: &dyn BlobStore) {
    let bytes = photo_bytes(300_000, 1);
    let hash = hash_of(&bytes);
    let len = bytes.len() as u64;
    store.put(&hash, &bytes).expect("put");

    assert!(
        store.read(&hash).expect("read") == bytes,
        "whole photo differs"
    );
    let range = |offset: u64, n: u64| store.read_range(&hash, offset, n).expect("read_range");
    assert_eq!(range(0, 10), bytes[..10]);
    assert_eq!(range(1_000, 65_536), bytes[1_000..66_536]);
    // A device fetches in chunks: the last one is short, and asking on past the end
    // is not an error, just nothing.
    assert_eq!(range(len - 5, 1_048_576), bytes[bytes.len() - 5..]);
    assert!(
        range(0, len + 1_000) == bytes,
        "an oversized range is the whole photo"
    );
    assert_eq!(range(len, 10), Vec::<u8>::new(), "a range at the end");
    assert_eq!(
        range(len + 100, 10),
        Vec::<u8>::new(),
        "a range past the end"
    );
    assert_eq!(range(5, 0), Vec::<u8>::new(), "an empty range");
}

fn put_is_idempotent(store: &dyn BlobStore, other_node: &dyn BlobStore) {
    let bytes = photo_bytes(50_000, 2);
    let hash = hash_of(&bytes);
    store.put(&hash, &bytes).expect("first put");
    store
        .put(&hash, &bytes)
        .expect("second put of the same photo");
    other_node
        .put(&hash, &bytes)
        .expect("the same photo from another node");
    assert!(store.read(&hash).expect("read") == bytes);
    assert!(other_node.read(&hash).expect("read on the other node") == bytes);
}

fn missing_photo_is_an_error(store: &dyn BlobStore) {
    let hash = hash_of(b"a photo nobody uploaded");
    for (what, result) in [
        ("read", store.read(&hash)),
        ("read_range", store.read_range(&hash, 0, 100)),
        ("empty read_range", store.read_range(&hash, 0, 0)),
    ] {
        match result {
            Err(e @ BlobStoreError::NotFound { .. }) => {
                assert!(e.to_string().contains(hash.as_str()), "{what}: {e}");
            }
            other => panic!("{what} of a missing photo gave {other:?}"),
        }
    }
}

fn bad_partial_keys_are_rejected(store: &dyn BlobStore) {
    let too_long = "a".repeat(MAX_KEY_LEN + 1);
    for key in [
        "",
        "../../etc/passwd",
        "a/b",
        "a b",
        "a.b",
        "ab\0",
        "é",
        &too_long,
    ] {
        let refused = |what: &str, r: Result<(), BlobStoreError>| match r {
            Err(BlobStoreError::InvalidKey) => {}
            other => panic!("{what}({key:?}) gave {other:?}"),
        };
        refused("partial_len", store.partial_len(key).map(drop));
        refused("append_partial", store.append_partial(key, b"x").map(drop));
        refused("read_partial", store.read_partial(key).map(drop));
        refused("remove_partial", store.remove_partial(key));
    }
    let longest = "b".repeat(MAX_KEY_LEN);
    assert_eq!(
        store.append_partial(&longest, b"ok").expect("longest key"),
        2
    );
    store.remove_partial(&longest).expect("remove");
}

fn partial_uploads_are_shared_between_nodes(node_a: &dyn BlobStore, node_b: &dyn BlobStore) {
    let photo = photo_bytes(1_048_576 + 3_000, 3);
    let hash = hash_of(&photo);
    // As the relay names them: hash, device, announced size.
    let key = format!(
        "{hash}-5f0c3a1e-8d2b-4c6f-9a7e-1b2c3d4e5f60-{}",
        photo.len()
    );
    let other_key = format!(
        "{hash}-0b7d9e2a-1111-4222-8333-944455566677-{}",
        photo.len()
    );
    let (first, rest) = photo.split_at(1_048_576);

    assert_eq!(node_a.partial_len(&key).expect("len of nothing"), 0);
    node_b.remove_partial(&key).expect("removing nothing");
    assert!(matches!(
        node_a.read_partial(&key),
        Err(BlobStoreError::NotFound { .. })
    ));

    // The device's first chunk reaches node A, its second node B.
    assert_eq!(
        node_a.append_partial(&key, first).expect("append on A"),
        1_048_576
    );
    assert_eq!(node_b.partial_len(&key).expect("len on B"), 1_048_576);
    assert_eq!(
        node_b.append_partial(&key, rest).expect("append on B"),
        photo.len() as u64
    );
    assert_eq!(
        node_a.partial_len(&key).expect("len on A"),
        photo.len() as u64
    );
    assert!(node_a.read_partial(&key).expect("read on A") == photo);
    assert_eq!(node_b.partial_len(&other_key).expect("another device"), 0);

    node_a.remove_partial(&key).expect("remove on A");
    assert_eq!(node_b.partial_len(&key).expect("len after remove"), 0);
    assert!(matches!(
        node_b.read_partial(&key),
        Err(BlobStoreError::NotFound { .. })
    ));
    node_b.remove_partial(&key).expect("removing it again");
    // The photo the partial became is stored on its own, not under the partial.
    assert!(matches!(
        node_a.read(&hash),
        Err(BlobStoreError::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------
// Local folder
// ---------------------------------------------------------------------------------

#[test]
fn local_store_passes_the_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("blobs");
    suite(&|| Box::new(LocalBlobStore::at(&root)));
    assert_eq!(
        LocalBlobStore::at(&root).describe(),
        format!("local folder {}", root.display())
    );
}

/// After an upgrade, photos and half-done uploads from before are still there: the
/// store uses the relay's old layout (`blobs/<aa>/<hash>.jpg`, `blobs/partial/<key>`).
#[test]
fn local_store_keeps_the_relays_folder_layout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path();
    let bytes = photo_bytes(1_000, 4);
    let hash = hash_of(&bytes);
    Blobs::at(&data.join("blobs"))
        .write(&hash, &bytes)
        .expect("old photo");
    fs::create_dir_all(data.join("blobs/partial")).expect("partial folder");
    let key = format!("{hash}-dev-2000");
    fs::write(data.join("blobs/partial").join(&key), &bytes).expect("old partial");

    let store = open_blob_store(None, data).expect("open");
    assert!(store.describe().starts_with("local folder"));
    assert!(store.read(&hash).expect("old photo") == bytes);
    assert_eq!(store.partial_len(&key).expect("old partial"), 1_000);
    assert_eq!(store.append_partial(&key, &bytes).expect("resume"), 2_000);
}

// ---------------------------------------------------------------------------------
// S3, against moto's server
// ---------------------------------------------------------------------------------

#[test]
fn s3_store_passes_the_suite() {
    let moto = Moto::start();
    moto.create_bucket("gridsync-photos");
    let config = moto.config("s3://gridsync-photos/relay");
    suite(&|| Box::new(S3BlobStore::open(&config).expect("open the S3 store")));

    let store = open_blob_store(Some(&config), std::path::Path::new("/nonexistent"))
        .expect("open through open_blob_store");
    let described = store.describe();
    assert_eq!(
        described,
        format!(
            "s3://gridsync-photos/relay at http://127.0.0.1:{}",
            moto.port
        )
    );
    assert!(!described.contains(SECRET));

    // Another prefix of the same bucket is another store.
    let bytes = photo_bytes(1_000, 5);
    let hash = hash_of(&bytes);
    store.put(&hash, &bytes).expect("put");
    let elsewhere = S3BlobStore::open(&moto.config("s3://gridsync-photos/other")).expect("open");
    assert!(matches!(
        elsewhere.read(&hash),
        Err(BlobStoreError::NotFound { .. })
    ));
}

#[test]
fn s3_store_with_a_missing_bucket_fails_at_open() {
    let moto = Moto::start();
    let err = S3BlobStore::open(&moto.config("s3://no-such-bucket/relay"))
        .expect_err("a missing bucket opened");
    let message = err.to_string();
    assert!(
        message.contains("cannot reach s3://no-such-bucket/relay"),
        "{message}"
    );
    assert!(!message.contains(SECRET), "{message}");
}

#[test]
fn s3_store_on_a_wrong_port_fails_at_open_with_a_message() {
    let port = free_port();
    let config = S3Config {
        url: "s3://gridsync-photos".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        allow_http: true,
        access_key_id: Some(ACCESS_KEY_ID.into()),
        secret_access_key: Some(SECRET.into()),
    };
    let started = Instant::now();
    let err = S3BlobStore::open(&config).expect_err("nothing listens there");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "photo store: cannot reach s3://gridsync-photos at http://127.0.0.1:{port}"
        )),
        "{message}"
    );
    assert!(!message.contains(SECRET), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?} to give up",
        started.elapsed()
    );
}

/// The relay calls the store from `spawn_blocking` in its tokio runtime, and may drop
/// its last handle inside async code: neither may panic.
#[test]
fn s3_store_works_from_spawn_blocking_in_a_tokio_runtime() {
    let moto = Moto::start();
    moto.create_bucket("gridsync-photos");
    let config = moto.config("s3://gridsync-photos");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store: Arc<dyn BlobStore> = Arc::new(
            tokio::task::spawn_blocking(move || S3BlobStore::open(&config))
                .await
                .expect("open did not panic")
                .expect("open"),
        );
        let uploads: Vec<_> = (0..4u32)
            .map(|i| {
                let store = store.clone();
                tokio::task::spawn_blocking(move || {
                    let bytes = photo_bytes(20_000, 10 + i);
                    let hash = hash_of(&bytes);
                    store.put(&hash, &bytes)?;
                    let key = format!("{hash}-device{i}-40000");
                    store.append_partial(&key, &bytes)?;
                    store.append_partial(&key, &bytes)?;
                    let partial = store.read_partial(&key)?;
                    store.remove_partial(&key)?;
                    Ok::<_, BlobStoreError>((hash, bytes, partial))
                })
            })
            .collect();
        for upload in uploads {
            let (hash, bytes, partial): (PhotoHash, Vec<u8>, Vec<u8>) = upload
                .await
                .expect("no panic in spawn_blocking")
                .expect("store calls");
            assert!(partial == [bytes.as_slice(), bytes.as_slice()].concat());
            let store = store.clone();
            let read = tokio::task::spawn_blocking(move || store.read(&hash))
                .await
                .expect("no panic")
                .expect("read");
            assert!(read == bytes);
        }
        // The last handle goes inside async code.
        drop(store);
    });
}
