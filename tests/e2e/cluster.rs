//! Several `gridsync serve` nodes on one PostgreSQL database and one S3 bucket serve
//! the same devices interchangeably: a device pushes through one node and pulls
//! through another, the chunks of one photo upload land on different nodes, and
//! every device ends with every change it may see, once.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gridsync_core::sync::client::PHOTO_CHUNK_BYTES;
use gridsync_core::sync::wire::{self, BlobGetRequest, BlobGetResponse};
use gridsync_core::sync::{
    self, route, HttpTransport, Link, SyncReport, Transport, TransportError,
};
use gridsync_core::{Action, DocId, Engine, NewCase, Outcome, PhotoHash, PhotoInfo, Status};
use gridsync_tests::s3::{Moto, ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use tempfile::TempDir;

use crate::sockets::{enroll_on, start_with_env, Server};
use crate::tiers::eventually;
use crate::workflow::{leak, DISPATCHER, HANDLER, WORKER};

const NODES: usize = 3;
const BUCKET: &str = "gridsync-photos";

/// Three nodes on a fresh database and bucket; everything stops when dropped.
struct Cluster {
    // Dropped in this order: the nodes, then the S3 server, then the folders.
    nodes: Vec<Server>,
    _moto: Moto,
    database_url: String,
    admin_data: PathBuf,
    devices: PathBuf,
    _dir: TempDir,
}

/// An enrolled device: its engine and its token (good on every node).
struct Device {
    engine: Engine,
    token: String,
}

impl std::ops::Deref for Device {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = gridsync_tests::postgres_database();
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        let endpoint = moto.endpoint();
        let photos = format!("s3://{BUCKET}/relay");
        let flags = [
            "--database-url",
            &database_url,
            "--photos-url",
            &photos,
            "--s3-endpoint",
            &endpoint,
            "--s3-region",
            "us-east-1",
            "--s3-allow-http",
        ];
        let env = [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ];
        // Started together: they migrate the empty database under its lock.
        let nodes = std::thread::scope(|s| {
            let starting: Vec<_> = (0..NODES)
                .map(|i| {
                    let data = dir.path().join(format!("node{i}"));
                    s.spawn(move || start_with_env(&data, &flags, &env))
                })
                .collect();
            starting
                .into_iter()
                .map(|h| h.join().expect("a node started"))
                .collect()
        });
        let devices = dir.path().join("devices");
        std::fs::create_dir_all(&devices).expect("devices folder");
        Cluster {
            nodes,
            _moto: moto,
            database_url,
            admin_data: dir.path().join("admin"),
            devices,
            _dir: dir,
        }
    }

    /// An enrollment code made on the shared database, redeemed through `node`.
    fn enroll(&self, user: &str, node: usize) -> Device {
        let engine = enroll_on(
            &self.admin_data,
            &["--database-url", &self.database_url],
            &self.nodes[node],
            user,
            &self.devices,
            std::sync::Arc::new(chrono::Utc::now),
        );
        let (_, token) = engine.server().unwrap().expect("enrolled");
        Device { engine, token }
    }

    /// One sync of `device`: its push through node `push`, its pull through node
    /// `pull`, its photo requests spread over every node in turn.
    fn sync(&self, device: &Device, push: usize, pull: usize) -> Result<SyncReport, String> {
        let (push, pull) = (push % NODES, pull % NODES);
        let routed = Routed {
            nodes: self
                .nodes
                .iter()
                .map(|n| HttpTransport::new(&n.url))
                .collect(),
            push,
            pull,
            next_blob: Cell::new(push + 1),
        };
        let who = device.identity().user.clone();
        let r = sync::sync(device, &routed, &mut |_| {})
            .map_err(|e| format!("{who} pushing through {push}, pulling through {pull}: {e}"))?;
        if !r.rejected.is_empty() || r.photos_skipped > 0 {
            return Err(format!("{who}: the cluster refused {r:?}"));
        }
        // Nothing is made on the device during its sync: what is left was deferred,
        // the node lacking a change the log has.
        let left = device.outbox_len().map_err(|e| e.to_string())?;
        if left > 0 {
            return Err(format!("{who}: {left} changes deferred by node {push}"));
        }
        Ok(r)
    }

    /// The whole photo, read from node `node` with `device`'s token.
    fn download(&self, node: usize, device: &Device, hash: &PhotoHash) -> Vec<u8> {
        let transport = HttpTransport::new(&self.nodes[node].url);
        let mut bytes = Vec::new();
        loop {
            let part: BlobGetResponse = Link::new(&transport, Some(&device.token))
                .call::<route::BlobGet>(&BlobGetRequest {
                    v: wire::PROTOCOL_VERSION,
                    hash: hash.clone(),
                    offset: bytes.len() as u64,
                    max_bytes: wire::MAX_CHUNK_BYTES as u64,
                })
                .unwrap_or_else(|e| panic!("photo {hash} from node {node}: {e}"));
            assert!(
                !part.bytes.is_empty() || bytes.len() as u64 >= part.total,
                "node {node} sent nothing of photo {hash} at {}",
                bytes.len()
            );
            bytes.extend(part.bytes);
            if bytes.len() as u64 >= part.total {
                return bytes;
            }
        }
    }

    /// Each change in the shared log: (rows, distinct hashes), and the hashes.
    fn log(&self) -> (i64, i64, BTreeSet<Vec<u8>>) {
        let mut db = postgres::Client::connect(&self.database_url, postgres::NoTls)
            .expect("the test database");
        let row = db
            .query_one("SELECT count(*), count(DISTINCT hash) FROM log", &[])
            .unwrap();
        let hashes = db
            .query("SELECT hash FROM log", &[])
            .unwrap()
            .iter()
            .map(|r| r.get::<_, Vec<u8>>(0))
            .collect();
        (row.get(0), row.get(1), hashes)
    }
}

/// Pushes through one node, pulls through another, and sends each photo request
/// to the next node in turn.
struct Routed {
    nodes: Vec<HttpTransport>,
    push: usize,
    pull: usize,
    next_blob: Cell<usize>,
}

impl Transport for Routed {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let node = match path {
            "/v1/push" => self.push,
            "/v1/pull" => self.pull,
            _ => {
                let n = self.next_blob.get();
                self.next_blob.set(n + 1);
                n % NODES
            }
        };
        self.nodes[node].post(path, token, body)
    }
}

/// A small photo, different for each seed (noise, so its display image takes more
/// than one upload chunk).
fn photo_jpeg(seed: u32) -> Vec<u8> {
    crate::photos::noisy_jpeg(seed.wrapping_mul(2_654_435_761) | 1, 640, 480, 90)
}

/// Every change hash of `id` on `device`.
fn change_hashes(device: &Engine, id: &DocId) -> Vec<Vec<u8>> {
    device
        .changes_since(id, &[])
        .unwrap()
        .iter()
        .map(|change| change.hash().0.to_vec())
        .collect()
}

#[test]
fn a_report_pushed_through_one_node_is_acted_on_through_the_others() {
    let cluster = Cluster::start();
    let (a, b, c) = (0, 1, 2);
    let worker = cluster.enroll(WORKER, a);
    let dispatcher = cluster.enroll(DISPATCHER, b);
    let handler = cluster.enroll(HANDLER, c);

    let photo = worker.ingest_photo(&photo_jpeg(7), None).unwrap();
    let id = worker
        .report_case(NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    let up = cluster.sync(&worker, a, a).unwrap();
    assert_eq!((up.pushed, up.photos_uploaded), (1, 2), "{up:?}");

    // Node B serves what node A stored: the report, and its photo.
    let down = cluster.sync(&dispatcher, b, b).unwrap();
    assert!(down.pulled >= 1, "{down:?}");
    assert_eq!(
        dispatcher.get_case(&id).unwrap().state.status,
        Status::Reported
    );
    sync::fetch_photo(
        &dispatcher,
        &HttpTransport::new(&cluster.nodes[b].url),
        &photo.hash,
    )
    .unwrap();
    assert!(dispatcher.photo(&photo.hash).unwrap() == worker.photo(&photo.hash).unwrap());

    // Node C has never seen the case: it accepts the next steps only if its replica
    // catches up with the shared log first.
    dispatcher.act(&id, Action::Accept).unwrap();
    dispatcher
        .dispatch(&id, "water".parse().unwrap(), None)
        .unwrap();
    let r = cluster.sync(&dispatcher, c, c).unwrap();
    assert_eq!(r.pushed, 2, "{r:?}");

    // Back on node A, the worker sees the dispatch; the handler finds the case
    // dispatched to her department through node B and reports it handled through
    // node A, which has to catch up with what node C stored.
    cluster.sync(&worker, a, a).unwrap();
    assert_eq!(
        worker.get_case(&id).unwrap().state.status,
        Status::Dispatched
    );
    cluster.sync(&handler, b, b).unwrap();
    assert_eq!(
        handler.get_case(&id).unwrap().state.status,
        Status::Dispatched
    );
    handler
        .act(
            &id,
            Action::Feedback {
                result: "已更换水管".into(),
            },
        )
        .unwrap();
    let r = cluster.sync(&handler, a, a).unwrap();
    assert_eq!(r.pushed, 1, "{r:?}");

    cluster.sync(&worker, c, c).unwrap();
    cluster.sync(&dispatcher, b, b).unwrap();
    for (who, device) in [("worker", &worker), ("dispatcher", &dispatcher)] {
        let case = device.get_case(&id).unwrap();
        assert_eq!(case.state.status, Status::Handled, "{who}");
        let actors: Vec<_> = case.doc.timeline.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(actors, [WORKER, DISPATCHER, DISPATCHER, HANDLER], "{who}");
    }
    let (rows, distinct, _) = cluster.log();
    assert_eq!(
        (rows, distinct),
        (4, 4),
        "report, accept, dispatch, feedback"
    );
}

/// Grid workers of two communities, each in her own grid.
const WORKERS: [&str; 6] = [
    "w-339901001001001",
    "w-339901001001002",
    "w-339901001001003",
    "w-339901001002001",
    "w-339901001002002",
    "w-339901001002003",
];
/// Sees the whole town, and accepts every case as it arrives.
const TOWN: &str = "td-339901001";
/// Sees the first community only, and only reads.
const COMMUNITY: &str = "cd-339901001001";
const COMMUNITY_REGION: &str = "339901001001";
const ROUNDS: usize = 5;
/// The concurrent part stops by itself after this.
const TIME_LIMIT: Duration = Duration::from_secs(45);

/// What a worker reported: the case, its photo if any, the notes she added.
struct Reported {
    id: DocId,
    photo: Option<PhotoInfo>,
    notes: Vec<String>,
}

/// A worker's rounds: report a case (every other one with a photo), add a note to
/// the one before, and sync, pushing through one node and pulling through the next,
/// a different pair each round.
fn work(
    cluster: &Cluster,
    worker: &Device,
    i: usize,
    deadline: Instant,
) -> Result<Vec<Reported>, String> {
    let mut reported: Vec<Reported> = Vec::new();
    for round in 0..ROUNDS {
        if Instant::now() > deadline {
            return Err(format!("worker {i} ran out of time in round {round}"));
        }
        let photo = (round % 2 == 0)
            .then(|| worker.ingest_photo(&photo_jpeg((i * ROUNDS + round) as u32), None))
            .transpose()
            .map_err(|e| e.to_string())?;
        let mut case = leak();
        case.title = format!("第{i}网格第{round}件");
        case.photos = photo.iter().map(|p| p.hash.clone()).collect();
        let id = worker.report_case(case).map_err(|e| e.to_string())?;
        if let Some(last) = reported.last_mut() {
            let text = format!("第{round}轮补充");
            worker
                .add_note(&last.id, &text)
                .map_err(|e| e.to_string())?;
            last.notes.push(text);
        }
        reported.push(Reported {
            id,
            photo,
            notes: Vec::new(),
        });
        cluster.sync(worker, i + round, i + round + 1)?;
    }
    Ok(reported)
}

/// Sync every device, each time through other nodes, until a whole pass moves
/// nothing.
fn settle(cluster: &Cluster, devices: &[&Device]) {
    for pass in 0..10 {
        let mut moved = 0;
        for (j, d) in devices.iter().enumerate() {
            let r = cluster.sync(d, j + pass, j + pass + 2).unwrap();
            moved += r.pushed + r.pulled + r.purged + r.photos_uploaded;
        }
        if moved == 0 {
            return;
        }
    }
    panic!("the devices did not go quiet in 10 passes");
}

/// Accept every case `town` has that is still only reported.
fn accept_reported(town: &Device) -> Result<usize, String> {
    let mut accepted = 0;
    for id in town.doc_ids().map_err(|e| e.to_string())? {
        let case = town.get_case(&id).map_err(|e| e.to_string())?;
        if case.state.status == Status::Reported {
            town.act(&id, Action::Accept).map_err(|e| e.to_string())?;
            accepted += 1;
        }
    }
    Ok(accepted)
}

#[test]
fn devices_pushing_and_pulling_through_different_nodes_at_once_all_end_with_every_change() {
    let started = Instant::now();
    let cluster = Cluster::start();
    let workers: Vec<Device> = WORKERS
        .iter()
        .enumerate()
        .map(|(i, user)| cluster.enroll(user, i % NODES))
        .collect();
    let town = cluster.enroll(TOWN, 0);
    let community = cluster.enroll(COMMUNITY, 1);

    // Workers report and sync; meanwhile the town dispatcher pulls and accepts, and
    // the community dispatcher pulls, each through a different node every time.
    let set_up = started.elapsed();
    let deadline = Instant::now() + TIME_LIMIT;
    let done = AtomicBool::new(false);
    let (reports, town_accepted) = std::thread::scope(|s| {
        let readers = [
            s.spawn(|| {
                let mut accepted = 0;
                for k in 0.. {
                    if done.load(Ordering::SeqCst) || Instant::now() > deadline {
                        break;
                    }
                    cluster.sync(&town, k, k + 1)?;
                    accepted += accept_reported(&town)?;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok::<_, String>(accepted)
            }),
            s.spawn(|| {
                for k in 0.. {
                    if done.load(Ordering::SeqCst) || Instant::now() > deadline {
                        break;
                    }
                    cluster.sync(&community, k + 2, k)?;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok::<_, String>(0)
            }),
        ];
        let working: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let cluster = &cluster;
                s.spawn(move || work(cluster, w, i, deadline))
            })
            .collect();
        let reports: Vec<_> = working
            .into_iter()
            .map(|h| h.join().expect("a worker's thread panicked"))
            .collect();
        done.store(true, Ordering::SeqCst);
        let accepted: Vec<_> = readers
            .into_iter()
            .map(|h| h.join().expect("a reader's thread panicked"))
            .collect();
        (reports, accepted)
    });
    let reports: Vec<Vec<Reported>> = reports
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let town_accepted: usize = town_accepted
        .into_iter()
        .sum::<Result<usize, String>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let concurrent = started.elapsed();

    // The town dispatcher accepts what she had not seen yet; then everyone syncs
    // until nothing moves.
    cluster.sync(&town, 1, 2).unwrap();
    let late = accept_reported(&town).unwrap();
    let all: Vec<&Device> = workers.iter().chain([&town, &community]).collect();
    settle(&cluster, &all);
    let settled = started.elapsed();
    let total = WORKERS.len() * ROUNDS;
    assert_eq!(town_accepted + late, total, "each case accepted once");
    assert!(
        town_accepted > 0,
        "no case was accepted while the workers were still reporting"
    );

    // Every device has exactly the cases it may see, and each the same way: the
    // report, its photo and notes once each, and the town's acceptance.
    let town_heads: BTreeMap<DocId, _> = town
        .doc_ids()
        .unwrap()
        .into_iter()
        .map(|id| {
            let heads = town.heads(&id).unwrap();
            (id, heads)
        })
        .collect();
    let mut photos = Vec::new();
    let mut expected_changes = 0;
    for (i, (user, reported)) in WORKERS.iter().zip(&reports).enumerate() {
        let mine: BTreeSet<DocId> = reported.iter().map(|r| r.id.clone()).collect();
        assert_eq!(mine.len(), ROUNDS);
        let on = |d: &Device| -> BTreeSet<DocId> { d.doc_ids().unwrap().into_iter().collect() };
        assert_eq!(on(&workers[i]), mine, "{user} has her own cases only");
        let readers: Vec<(&str, &Device)> = if user.contains(COMMUNITY_REGION) {
            vec![(TOWN, &town), (COMMUNITY, &community)]
        } else {
            assert!(
                on(&community).is_disjoint(&mine),
                "{COMMUNITY} sees {user}'s"
            );
            vec![(TOWN, &town)]
        };
        for r in reported {
            // report + notes + acceptance, one change each
            expected_changes += 2 + r.notes.len();
            for (who, device) in std::iter::once((*user, &workers[i])).chain(readers.clone()) {
                let case = device
                    .get_case(&r.id)
                    .unwrap_or_else(|e| panic!("{who} lacks {user}'s case {}: {e}", r.id));
                let what = format!("{user}'s case {} on {who}", r.id);
                assert_eq!(case.state.status, Status::Accepted, "{what}");
                let entries: Vec<(&str, &Action)> = case
                    .doc
                    .timeline
                    .iter()
                    .map(|e| (e.actor.as_str(), &e.action))
                    .collect();
                assert_eq!(entries.len(), 2, "{what}: {entries:?}");
                assert_eq!(entries[0].0, *user, "{what}");
                assert!(matches!(entries[0].1, Action::Report { .. }), "{what}");
                assert_eq!(entries[1], (TOWN, &Action::Accept), "{what}");
                assert!(
                    case.timeline().all(|(_, o)| *o == Outcome::Applied),
                    "{what}"
                );
                let notes: Vec<&str> = case.doc.notes.iter().map(|n| n.text.as_str()).collect();
                assert_eq!(notes, r.notes, "{what}");
                let attached: Vec<_> = case
                    .doc
                    .photos
                    .iter()
                    .map(|p| (p.hash.clone(), p.thumb.clone()))
                    .collect();
                let planned: Vec<_> = r
                    .photo
                    .iter()
                    .map(|p| (p.hash.clone(), Some(p.thumb.clone())))
                    .collect();
                assert_eq!(attached, planned, "{what}");
                assert_eq!(
                    Some(&device.heads(&r.id).unwrap()),
                    town_heads.get(&r.id),
                    "{what}: the same history as the town's"
                );
            }
            if let Some(p) = &r.photo {
                photos.push((i, p.clone()));
            }
        }
        assert!(workers[i].photos_to_upload().unwrap().is_empty());
    }
    assert_eq!(town_heads.len(), total, "the town has every case, once");
    assert_eq!(
        community.doc_ids().unwrap().len(),
        WORKERS
            .iter()
            .filter(|w| w.contains(COMMUNITY_REGION))
            .count()
            * ROUNDS,
        "{COMMUNITY} has her community's cases"
    );

    // Every photo, uploaded in chunks spread over the nodes, reads back whole and
    // unchanged from every node, and through another node onto the readers' phones.
    assert!(
        photos
            .iter()
            .any(|(i, p)| { workers[*i].photo(&p.hash).unwrap().len() > PHOTO_CHUNK_BYTES }),
        "the test photos should need more than one upload chunk"
    );
    for (n, (i, p)) in photos.iter().enumerate() {
        for hash in [&p.hash, &p.thumb] {
            let original = workers[*i].photo(hash).unwrap();
            for node in 0..NODES {
                assert!(
                    cluster.download(node, &town, hash) == original,
                    "photo {hash} differs on node {node}"
                );
            }
        }
        let node = HttpTransport::new(&cluster.nodes[(i + n + 1) % NODES].url);
        sync::fetch_photo(&town, &node, &p.hash).unwrap();
        assert!(town.photo(&p.hash).unwrap() == workers[*i].photo(&p.hash).unwrap());
        if WORKERS[*i].contains(COMMUNITY_REGION) {
            sync::fetch_photo(&community, &node, &p.thumb).unwrap();
            assert!(community.photo(&p.thumb).unwrap() == workers[*i].photo(&p.thumb).unwrap());
        }
    }

    // The shared log holds each change once: exactly those the devices hold.
    let (rows, distinct, logged) = cluster.log();
    let held: BTreeSet<Vec<u8>> = town_heads
        .keys()
        .flat_map(|id| change_hashes(&town, id))
        .collect();
    assert_eq!(rows, distinct, "a change logged twice");
    assert_eq!(rows as usize, expected_changes);
    assert!(
        logged == held,
        "the log and the devices hold different changes"
    );

    eprintln!(
        "cluster: {total} cases, {} photos, {expected_changes} changes through {NODES} \
         nodes; set up by {set_up:?}, concurrent part done by {concurrent:?}, settled by \
         {settled:?}, checked by {:?}",
        photos.len(),
        started.elapsed()
    );
}

/// A change can reach the log before its dependency: the node that checked it had
/// the dependency in its replica, whose own push then failed to log it. Another
/// node's replica keeps such a change waiting (and its recorded position before
/// it, across a restart) until the dependency is logged, then has both.
#[test]
fn a_change_logged_before_its_dependency_waits_for_it_in_other_replicas() {
    use gridsync_server::relay::store::{DocScope, LogEntry};
    use gridsync_server::relay::{Relay, Storage};

    let dir = tempfile::tempdir().unwrap();
    let storage = Storage {
        database_url: Some(gridsync_tests::postgres_database()),
        photos: None,
    };
    let worker = Engine::open(
        dir.path().join("worker.db"),
        gridsync_core::Identity {
            user: WORKER.parse().unwrap(),
            device: gridsync_core::DeviceId::random(),
        },
    )
    .unwrap();
    worker
        .load_directory(gridsync_server::SAMPLE_DIRECTORY)
        .unwrap();
    let id = worker.report_case(leak()).unwrap();
    let report = worker.changes_since(&id, &[]).unwrap();
    let reported = worker.heads(&id).unwrap();
    worker.add_note(&id, "门口积水已清理").unwrap();
    let note = worker.changes_since(&id, &reported).unwrap();

    // Another node's store logs; this node catches up.
    let other = gridsync_server::relay::store::open_store(
        &dir.path().join("other"),
        storage.database_url.as_deref(),
    )
    .unwrap();
    let node_data = dir.path().join("node");
    let node = Relay::open_with(&node_data, None, &storage).unwrap();
    let log = |changes: &[automerge::Change]| {
        let entries: Vec<LogEntry> = changes
            .iter()
            .map(|change| LogEntry {
                hash: change.hash().0,
                doc: id.clone(),
                bytes: change.raw_bytes().to_vec(),
            })
            .collect();
        let scope = DocScope {
            grid: worker.me().unwrap().region,
            dept: None,
            photos: Vec::new(),
        };
        other
            .append(
                gridsync_core::DeviceId::random(),
                &entries,
                &[(id.clone(), scope)],
                0,
                None,
            )
            .unwrap()
    };
    let note_seq = log(&note);
    node.catch_up().unwrap();
    assert!(
        node.engine().heads(&id).unwrap_or_default().is_empty(),
        "the note cannot be applied without the report"
    );
    drop(node);

    // Restarted, the node reads the waiting note again.
    let node = Relay::open_with(&node_data, None, &storage).unwrap();
    assert!(node.engine().replica_position().unwrap() < note_seq);
    let top = log(&report);
    node.catch_up().unwrap();
    assert_eq!(
        node.engine().heads(&id).unwrap(),
        worker.heads(&id).unwrap()
    );
    assert_eq!(node.engine().replica_position().unwrap(), top);
}

#[test]
fn a_directory_revision_imported_beside_the_nodes_is_in_force_on_every_node() {
    let cluster = Cluster::start();
    let worker = cluster.enroll(WORKER, 0);
    let id = worker.report_case(leak()).unwrap();
    cluster.sync(&worker, 0, 0).unwrap();
    assert_eq!(worker.doc_ids().unwrap(), vec![id]);

    // The operator moves her to another town's grid with the command line, on
    // the shared database, while the three nodes run.
    let mut directory: serde_json::Value =
        serde_json::from_str(gridsync_server::SAMPLE_DIRECTORY).unwrap();
    let users = directory["users"].as_array_mut().unwrap();
    let me = users.iter_mut().find(|u| u["id"] == WORKER).unwrap();
    me["region"] = "339901002001002".into();
    let file = cluster.devices.join("moved.json");
    std::fs::write(&file, directory.to_string()).unwrap();
    let out = crate::sockets::gridsync()
        .args(["admin", "--data"])
        .arg(&cluster.admin_data)
        .args([
            "--database-url",
            &cluster.database_url,
            "directory",
            "import",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Within seconds every node serves it: her phone, pushing and pulling through
    // the other nodes, hears of the move and loses her old grid's case.
    let mut updated = false;
    eventually("the revision reaches the nodes", || {
        updated |= cluster.sync(&worker, 1, 2).unwrap().directory_updated;
        worker.me().unwrap().region.as_str() == "339901002001002"
    });
    assert!(updated);
    // Through the node that served her before the import, too (it looks for a
    // newer revision every 2 seconds).
    eventually("her old grid's case leaves", || {
        cluster.sync(&worker, 0, 0).unwrap();
        worker.doc_ids().unwrap().is_empty()
    });
    // A node that checks her push uses the new placement too: a report in her new
    // grid is stored through node 1.
    worker.report_case(leak()).unwrap();
    cluster.sync(&worker, 1, 1).unwrap();
}
