//! `gridsync`: the one binary — the relay (`serve`), its administration
//! (`admin`), the demo and the benchmarks.

mod allocator;
mod bench;
mod config;
mod demo;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use gridsync_core::sync::{HttpTransport, ServerSecurity};
use gridsync_server::relay::Relay;

#[derive(Parser)]
#[command(
    name = "gridsync",
    version,
    about = "gridsync: offline-first sync for grid workers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay: SQLite and blobs in the data folder, listening on loopback by
    /// default. Settings come from flags, then GRIDSYNC_* variables, then the
    /// config file, then defaults.
    Serve {
        #[command(flatten)]
        settings: Box<config::ServeArgs>,
    },
    /// Administer devices in a relay's data folder (works while it runs).
    Admin {
        /// The relay's data folder.
        #[arg(long, env = "GRIDSYNC_DATA", default_value = config::DEFAULT_DATA)]
        data: PathBuf,
        #[command(flatten)]
        storage: config::StorageArgs,
        #[command(subcommand)]
        which: AdminCommand,
    },
    /// Run a simulated day of one community's work on local devices and print the
    /// timelines and figures.
    Demo {
        /// Keep the devices' databases in this folder (default: a temporary folder).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Language of the output.
        #[arg(long, value_enum, default_value_t = Lang::Zh)]
        lang: Lang,
        /// Leave the relay running afterwards (with its data folder) to explore.
        #[arg(long)]
        keep: bool,
    },
    /// Benchmarks; each prints one JSON line per figure.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Validate a directory file (docs/directory-format.md) and store it as the
    /// next revision: every node picks it up within seconds and every phone at
    /// its next sync, without a restart. Nothing is stored if it is invalid.
    Import {
        /// The directory file.
        file: PathBuf,
    },
    /// The newest revisions: number, when, by whom, what changed.
    History,
    /// Print the revision in force (JSON) to standard output.
    Show,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a one-time enrollment code for a user (valid 72 hours).
    Enroll {
        /// The user id from the directory.
        #[arg(long)]
        user: String,
        /// For a downstream relay (a town server syncing to this one), trusted for
        /// the user's region, instead of a phone.
        #[arg(long)]
        relay: bool,
    },
    /// Connect this relay to its upstream server (a town to its district) with a
    /// code from `gridsync admin enroll --relay` there; `serve` then syncs upward.
    Upstream {
        /// The upstream's URL.
        #[arg(long)]
        url: String,
        /// The one-time relay enrollment code.
        #[arg(long)]
        code: String,
        /// PEM certificates to trust for the upstream's https:// (its own CA).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Allow plain http:// to an upstream that is not on this machine.
        #[arg(long)]
        allow_plain_http: bool,
    },
    /// One round with the upstream server now (also while `serve` runs).
    SyncUpstream,
    /// Restore a backup into the data folder, which must be new or empty (stop
    /// `serve` first, or restore into a new folder and point `serve` at it).
    Restore {
        /// The backup folder.
        #[arg(long)]
        from: PathBuf,
        /// The tombstones to apply before anything is served (default:
        /// `erasures.log` in the folder that holds the backup).
        #[arg(long)]
        erasures: Option<PathBuf>,
    },
    /// Back up the data folder (databases and photos) into a new or empty folder;
    /// safe while `serve` runs. Every erasure so far is appended to
    /// `erasures.log` in the folder that holds the backup.
    Backup {
        /// Where to write the backup.
        #[arg(long)]
        to: PathBuf,
        /// Then delete the backups beside it taken more than this many days ago
        /// (30 is the retention ADR 0011 assumes).
        #[arg(long, value_name = "DAYS")]
        prune: Option<u32>,
    },
    /// Erase a person (or a household) of the registry for good: the whole
    /// document with its history, from the log, the replica and, at their next
    /// sync, every device that holds it; a permanent tombstone refuses it ever
    /// after. Irreversible. Safe while `serve` runs.
    ErasePerson {
        /// The document id (`person-…` or `household-…`).
        doc: String,
        /// Why, for the audit log: moved-away-retention, deceased-retention,
        /// at-request or entered-in-error.
        #[arg(long)]
        reason: String,
        /// The folder that holds the backups: the tombstone is appended to its
        /// `erasures.log` now (otherwise at the next backup).
        #[arg(long, env = "GRIDSYNC_BACKUPS")]
        backups: Option<PathBuf>,
        /// Confirm: erasure cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// Erase now every closed case past its category's retention (the directory's
    /// `retention_days`; `serve` does this at start and daily): from the log, the replica,
    /// the photo store and, at their next sync, every phone. Irreversible. Safe
    /// while `serve` runs.
    SweepRetention {
        /// The folder that holds the backups: the tombstones are appended to its
        /// `erasures.log` now (otherwise at the next backup).
        #[arg(long, env = "GRIDSYNC_BACKUPS")]
        backups: Option<PathBuf>,
    },
    /// Revoke a device: its next contact is told to erase its data.
    Revoke {
        /// The device id.
        #[arg(long)]
        device: String,
    },
    /// Disable a user who left: every device of theirs revoked (each told to
    /// erase its data), unused codes withdrawn, console sessions ended; no more
    /// sign-in or enrollment until `enable`.
    Disable {
        /// The user id from the directory.
        #[arg(long)]
        user: String,
    },
    /// Enable a disabled user again (she enrolls her phone anew).
    Enable {
        /// The user id from the directory.
        #[arg(long)]
        user: String,
    },
    /// List enrolled devices.
    Devices,
    /// The directory as versioned data: import a new revision, or list them.
    Directory {
        #[command(subcommand)]
        what: DirectoryCommand,
    },
    /// Set a user's web console password, read from the first line of standard
    /// input (never from the command line). Ends the user's console sessions.
    Password {
        /// The user id from the directory.
        #[arg(long)]
        user: String,
    },
    /// Import a roster of households and residents (.csv in UTF-8 or .xlsx; see
    /// docs/registry-import.md) as a directory user who keeps those grids. Every
    /// row is checked first; any error is reported row by row and nothing is
    /// imported. Importing the same file again changes nothing. Safe while
    /// `serve` runs (stored like a phone's push).
    ImportRegistry {
        /// The roster file.
        file: PathBuf,
        /// The directory user the records are registered as.
        #[arg(long = "as")]
        user: String,
    },
    /// Export the registry of a region as CSV or XLSX, ID and phone numbers
    /// masked.
    ExportRegistry {
        /// The region (a grid, community, town or district code).
        #[arg(long)]
        region: String,
        /// csv or xlsx.
        #[arg(long, value_parser = ["csv", "xlsx"])]
        format: String,
        /// Where to write it (created with owner-only permissions).
        #[arg(long)]
        out: PathBuf,
    },
    /// The audit log of full ID and phone views in the console, newest first.
    Audit {
        /// Entries to print.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The device engine: report, act, list, search, open, bytes per case and per
    /// patrol-hour.
    Device {
        /// Cases stored on the device for the list/open figures.
        #[arg(long, default_value_t = 50_000)]
        cases: usize,
        /// Samples for the per-operation timings.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Encrypt the device's database (SQLCipher), as on a phone; the figures
        /// then carry `"encrypted": true`, and a rekey of the full database is timed.
        #[arg(long)]
        encrypted: bool,
    },
    /// The photo capture pipeline on 12-megapixel JPEGs.
    Photo {
        /// Photos to ingest.
        #[arg(long, default_value_t = 10)]
        samples: usize,
    },
    /// Load: N grid workers patrolling, reporting cases with small photos and
    /// syncing against one or more relays for M minutes; then every device's data is
    /// checked on the relay. One JSON line.
    Load {
        /// Simulated devices (grid workers of different grids).
        #[arg(long, default_value_t = 50)]
        devices: usize,
        /// How long, in minutes (fractions allowed).
        #[arg(long, default_value_t = 1.0)]
        minutes: f64,
        /// Nodes to start, each with its own data folder, on the given storage
        /// (several need --database-url).
        #[arg(long, default_value_t = 1, conflicts_with = "servers")]
        nodes: usize,
        /// Relays to sync with, round-robin, instead of starting nodes.
        #[arg(long = "server", requires = "data")]
        servers: Vec<String>,
        /// Their data folder (for enrollment codes and the final check).
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        storage: config::StorageArgs,
    },
    /// A phone on a weak link: through a proxy on loopback that throttles to
    /// RATE bytes/s and cuts every connection every CUT_EVERY seconds, a day's
    /// cases with photos go up and a fresh phone pulls a town's cases down; each
    /// against a clean run of the same work. One JSON line per run.
    Link {
        /// The link's rate in bytes per second (both directions share it).
        #[arg(long, default_value_t = 32_000.0)]
        rate: f64,
        /// Seconds between cuts.
        #[arg(long, default_value_t = 60.0)]
        cut_every: f64,
        /// Cases, each with a 640×480 photo, in the day going up.
        #[arg(long, default_value_t = 10)]
        cases: usize,
        /// Cases the fresh phone pulls down.
        #[arg(long, default_value_t = 2_000)]
        pull_cases: usize,
    },
    /// The relay at capacity: enrolled devices sync closed-loop (no think time),
    /// idle, then each reporting a case per sync, then paced at half that rate.
    /// One JSON line per phase: syncs/s, p50/p99, relay CPU and memory.
    Relay {
        /// Devices driving the relay (community dispatchers' desks).
        #[arg(long, default_value_t = 32)]
        devices: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Drive a running relay instead of starting one.
        #[arg(long, requires = "data")]
        server: Option<String>,
        /// That relay's data folder (for enrollment codes).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// The grid's base data at a town's size: a roster imported, searched on a
    /// relay's replica and on a grid worker's encrypted phone, and a grid's
    /// registry synced to a new phone. One JSON line per figure.
    Registry {
        /// Persons in the town's roster.
        #[arg(long, default_value_t = 100_000)]
        persons: usize,
        /// Residents on the grid worker's phone.
        #[arg(long, default_value_t = 3_000)]
        phone_persons: usize,
        /// Samples per search.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// Sync: one device pushes N cases made offline, an empty one pulls them.
    Sync {
        /// Cases to move.
        #[arg(long, default_value_t = 1000)]
        docs: usize,
        /// Target a running relay instead of starting one.
        #[arg(long, requires = "data")]
        server: Option<String>,
        /// That relay's data folder (for enrollment codes).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// Output language: Simplified Chinese by default.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// 简体中文.
    Zh,
    /// English.
    En,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { settings } => serve(*settings),
        Command::Admin {
            data,
            storage,
            which,
        } => storage
            .storage()
            .map_err(Into::into)
            .and_then(|storage| admin(&data, &storage, which)),
        Command::Demo { data, lang, keep } => demo::run(data, lang, keep),
        Command::Bench {
            which:
                BenchCommand::Device {
                    cases,
                    samples,
                    encrypted,
                },
        } => bench::device(cases, samples, encrypted),
        Command::Bench {
            which: BenchCommand::Sync { docs, server, data },
        } => bench::sync(docs, server, data),
        Command::Bench {
            which: BenchCommand::Photo { samples },
        } => bench::photo(samples),
        Command::Bench {
            which:
                BenchCommand::Link {
                    rate,
                    cut_every,
                    cases,
                    pull_cases,
                },
        } => bench::link(rate, cut_every, cases, pull_cases),
        Command::Bench {
            which:
                BenchCommand::Relay {
                    devices,
                    seconds,
                    server,
                    data,
                },
        } => bench::relay(devices, seconds, server, data),
        Command::Bench {
            which:
                BenchCommand::Registry {
                    persons,
                    phone_persons,
                    samples,
                },
        } => bench::registry(persons, phone_persons, samples),
        Command::Bench {
            which:
                BenchCommand::Load {
                    devices,
                    minutes,
                    nodes,
                    servers,
                    data,
                    storage,
                },
        } => storage
            .storage()
            .map_err(Into::into)
            .and_then(|storage| bench::load(devices, minutes, nodes, servers, data, &storage)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridsync: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRIDSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // axum logs a refused extractor's message at trace level, and a query or
        // form message can quote what was typed (a search for a resident's name).
        .add_directive(
            "axum::rejection=off"
                .parse()
                .expect("a valid filter directive"),
        );
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A directory file's text, refused before reading if it is over the limit.
fn read_directory_file(p: &std::path::Path) -> Result<String, String> {
    let cannot = |e: std::io::Error| format!("cannot read directory file {}: {e}", p.display());
    let size = std::fs::metadata(p).map_err(cannot)?.len();
    let limit = gridsync_core::directory::MAX_DIRECTORY_BYTES;
    if size > limit as u64 {
        return Err(format!(
            "directory file {} is {size} bytes; the limit is {limit}",
            p.display()
        ));
    }
    std::fs::read_to_string(p).map_err(cannot)
}

fn serve(args: config::ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    allocator::limit_arenas();
    init_logs();
    let settings = args.resolve()?;
    let directory = settings
        .directory
        .as_deref()
        .map(read_directory_file)
        .transpose()?;
    let mut relay = Relay::open_with(&settings.data, directory.as_deref(), &settings.storage)?;
    tracing::info!(
        database = if settings.storage.database_url.is_some() { "postgres" } else { "sqlite" },
        photos = %relay.photo_store(),
        "storage"
    );
    if settings.storage.database_url.is_some() && settings.storage.photos.is_none() {
        tracing::warn!(
            "photos are kept in this node's data folder: several nodes need an object store (photos_url)"
        );
    }
    // A new node builds its replica from the shared log before it serves.
    relay.catch_up().map_err(|e| e.to_string())?;
    relay.set_token_lifetime(chrono::Duration::days(settings.token_days.into()));
    relay.set_token_rotation(gridsync_server::relay::TokenRotation {
        after: chrono::Duration::hours(settings.token_rotate_hours.into()),
        ..Default::default()
    });
    relay.set_trusted_proxies(settings.trusted_proxies.clone());
    relay.set_map_tiles(settings.map_tile_url.clone());
    relay.set_resident_channel(settings.resident_channel);
    let relay = Arc::new(relay);
    // The relay is dropped last, after the runtime (declared later, so dropped
    // first on every return): PostgreSQL's connections close by blocking, which
    // async code must not do.
    let keep = relay.clone();
    let runtime = runtime(relay.store().connections())?;
    if let Some(link) = relay.upstream()? {
        tracing::info!(upstream = %link.url, "syncing upward");
        runtime.spawn(sync_upward(
            relay.clone(),
            link,
            std::time::Duration::from_secs(settings.upstream_interval_secs),
        ));
    }
    if let Some(notifier) = settings.notify.notifier()? {
        notifier.prepare(&relay)?;
        tracing::info!(gateway = %notifier.describe(), "notifications");
        runtime.spawn(notifier.run(relay.clone()));
    }
    runtime.spawn(daily_sweeps(relay.clone()));
    runtime.spawn(allocator::return_freed_memory());
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let options = gridsync_server::http::ServeOptions {
        listen: settings.listen,
        tls: settings.tls.clone(),
        limits: settings.edge.clone(),
        metrics_listen: settings.metrics_listen,
        metrics_token: settings.metrics_token.clone(),
    };
    tracing::info!(limits = ?settings.edge, "edge");
    runtime.block_on(gridsync_server::http::serve(relay, options, |addr| {
        println!("gridsync listening on {scheme}://{addr}");
        tracing::info!(%addr, data = %settings.data.display(), scheme, "listening");
    }))?;
    drop(runtime);
    drop(keep);
    Ok(())
}

/// Blocking threads beyond the database's connections: the background rounds
/// (upstream, notifications, sweeps, `malloc_trim`) and requests' work off the
/// database (inflating a body, writing a photo, rendering a page).
const SPARE_BLOCKING_THREADS: usize = 8;

/// The relay's runtime: a worker per core, and blocking threads capped near the
/// database's connections. More would only wait for a connection, and tokio's
/// default (512, each kept while tasks keep coming) let one minute of slow disk
/// grow the pool from 10 threads to 26, whose stacks and malloc caches stayed
/// resident for the rest of the two-hour soak (docs/reliability.md §7). Tasks
/// beyond the cap wait in the pool's queue, holding no thread; so do, before
/// it, requests that would wait on one lock in the relay (photo uploads, a
/// cluster's pushes: `http::sync`'s lanes) and bodies inflated while they wait
/// for budget.
fn runtime(connections: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(connections + SPARE_BLOCKING_THREADS)
        .build()
}

/// Rounds with the upstream server, for as long as the relay runs. A failed round
/// (the district unreachable) is retried at the next tick; nothing is lost meanwhile.
async fn sync_upward(
    relay: Arc<Relay>,
    link: gridsync_server::relay::UpstreamLink,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (relay, link) = (relay.clone(), link.clone());
        let round =
            tokio::task::spawn_blocking(move || relay.sync_upstream(&link, &link.transport()?))
                .await;
        match round {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "upstream sync failed; retrying"),
            Err(e) => tracing::error!(error = %e, "upstream sync panicked"),
        }
    }
}

/// At start and daily after, for as long as the relay runs: erase the closed
/// cases past their retention (a sweep that erases rewrites the databases, and
/// retention counts in days), and forget unfinished uploads abandoned for
/// days. A failed sweep is tried again at the next.
async fn daily_sweeps(relay: Arc<Relay>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let relay = relay.clone();
        let swept = tokio::task::spawn_blocking(move || {
            (
                relay.sweep_retention(chrono::Utc::now()).map(drop),
                relay.sweep_partials(std::time::SystemTime::now()).map(drop),
            )
        })
        .await;
        match swept {
            Ok((retention, partials)) => {
                for (what, result) in [("retention", retention), ("unfinished uploads", partials)] {
                    if let Err(e) = result {
                        tracing::warn!(error = %e, sweep = what, "sweep failed; retrying tomorrow");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "a sweep panicked"),
        }
    }
}

fn admin(
    data: &std::path::Path,
    storage: &gridsync_server::relay::Storage,
    which: AdminCommand,
) -> Result<(), Box<dyn std::error::Error>> {
    // Opened by the commands that use it: a restore writes the folder first.
    let open = || Relay::open_with(data, None, storage);
    match which {
        AdminCommand::Restore { from, erasures } => {
            use gridsync_server::backup;
            let log = erasures
                .unwrap_or_else(|| backup::backups_folder(&from).join(backup::ERASURES_LOG));
            if !log.exists() {
                eprintln!(
                    "warning: no {}; only the erasures recorded in the backup itself are applied",
                    log.display()
                );
            }
            let tombstones = backup::read_erasures_file(&log)?;
            let done = backup::restore(&from, data, storage, &tombstones)?;
            println!(
                "restored {} databases and {} photos into {}; {} erasures applied",
                done.databases,
                done.photos,
                data.display(),
                done.erasures
            );
        }
        AdminCommand::ErasePerson {
            doc,
            reason,
            backups,
            yes,
        } => {
            let doc: gridsync_core::DocId = doc.parse()?;
            gridsync_server::relay::erasable(&doc)?;
            let reason: gridsync_server::relay::ErasureReason = reason.parse()?;
            if !yes {
                return Err(format!(
                    "erasing {doc} cannot be undone; run again with --yes to confirm"
                )
                .into());
            }
            let relay = open()?;
            let new = relay.erase(&doc, reason)?;
            println!(
                "{doc} {}",
                if new {
                    "erased"
                } else {
                    "was already erased; erased again"
                }
            );
            match backups {
                Some(folder) => {
                    gridsync_server::backup::record_erasures(relay.store(), &folder)?;
                    println!(
                        "recorded in {}",
                        folder.join(gridsync_server::backup::ERASURES_LOG).display()
                    );
                }
                None => {
                    println!("not yet in erasures.log: the next `gridsync admin backup` records it")
                }
            }
        }
        AdminCommand::SweepRetention { backups } => {
            let relay = open()?;
            let sweep = relay.sweep_retention(chrono::Utc::now())?;
            println!(
                "{} closed cases looked at, {} erased",
                sweep.looked_at, sweep.erased
            );
            if let Some(folder) = backups {
                gridsync_server::backup::record_erasures(relay.store(), &folder)?;
            }
        }
        AdminCommand::Enroll {
            user,
            relay: downstream,
        } => {
            let relay = open()?;
            let code = if downstream {
                relay.create_relay_enrollment(&user)
            } else {
                relay.create_enrollment(&user)
            }
            .map_err(|e| e.to_string())?;
            println!("{code}");
        }
        AdminCommand::Upstream {
            url,
            code,
            ca,
            allow_plain_http,
        } => {
            let relay = open()?;
            let security = ServerSecurity {
                ca_pem: ca
                    .map(|p| {
                        std::fs::read_to_string(&p)
                            .map_err(|e| format!("cannot read {}: {e}", p.display()))
                    })
                    .transpose()?,
                allow_plain_http,
            };
            let transport = HttpTransport::with_security(&url, &security)?;
            let user = relay.connect_upstream(&transport, &url, &code, &security)?;
            println!("connected to {url} as a relay for {user}");
        }
        AdminCommand::SyncUpstream => {
            let relay = open()?;
            let link = relay
                .upstream()?
                .ok_or("no upstream: connect one with `gridsync admin upstream`")?;
            let r = relay.sync_upstream(&link, &link.transport()?)?;
            println!(
                "pushed {}, not stored {} (deferred ones sent again {}), photos {} (refused {}), \
                 pulled {} (not stored {}), photos fetched {} (not had {}), requests {}",
                r.pushed,
                r.not_stored,
                r.retried,
                r.photos,
                r.photos_refused,
                r.pulled,
                r.pulled_not_stored,
                r.photos_down,
                r.photos_missed,
                r.requests
            );
        }
        AdminCommand::Revoke { device } => {
            let relay = open()?;
            let device = device.parse()?;
            if !relay
                .store()
                .revoke(device, chrono::Utc::now().timestamp_millis())?
            {
                return Err(format!("no enrolled, unrevoked device {device}").into());
            }
            println!("revoked {device}");
        }
        AdminCommand::Disable { user } => {
            let relay = open()?;
            let revoked = relay.disable_user(&user.parse()?, None)?;
            println!("disabled {user}; {revoked} devices revoked");
        }
        AdminCommand::Enable { user } => {
            let relay = open()?;
            if !relay.enable_user(&user.parse()?)? {
                return Err(format!("{user} was not disabled").into());
            }
            println!("enabled {user}");
        }
        AdminCommand::Password { user } => {
            let relay = open()?;
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            relay
                .set_console_password(&user, password)
                .map_err(|e| e.to_string())?;
            println!("console password set for {user}");
        }
        AdminCommand::Backup { to, prune } => {
            let done = gridsync_server::backup::backup(data, storage, &to)?;
            println!(
                "backed up {} databases and {} photos to {}",
                done.databases,
                done.photos,
                to.display()
            );
            if let Some(days) = prune {
                let folder = gridsync_server::backup::backups_folder(&to);
                let now = chrono::Utc::now().timestamp_millis();
                for gone in gridsync_server::backup::prune(&folder, days, now)? {
                    println!("pruned {}", gone.display());
                }
            }
        }
        AdminCommand::ImportRegistry { file, user } => {
            use gridsync_server::registry_io::{self, Format};
            let format = Format::from_file_name(&file.to_string_lossy())
                .ok_or("the roster must be a .csv or an .xlsx file")?;
            let size = std::fs::metadata(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?
                .len();
            if size > registry_io::MAX_FILE_BYTES as u64 {
                return Err(format!(
                    "{} is {size} bytes; at most {} bytes",
                    file.display(),
                    registry_io::MAX_FILE_BYTES
                )
                .into());
            }
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let relay = open()?;
            let summary = registry_io::import_as_user(&relay, &user, &bytes, format)?;
            println!("{}", summary.line());
        }
        AdminCommand::ExportRegistry {
            region,
            format,
            out,
        } => {
            use gridsync_server::registry_io::{self, Format};
            let relay = open()?;
            let region: gridsync_core::RegionCode = region.parse()?;
            let dir = relay.engine().directory()?;
            if dir.region(&region).is_none() {
                return Err(format!("region {region} is not in the directory").into());
            }
            // The operator, for the region asked: lists and exports are masked for
            // everyone.
            let operator = gridsync_core::User {
                id: "operator".parse()?,
                name: "operator".into(),
                role: gridsync_core::Role::Admin,
                region,
                department: None,
                contact: None,
            };
            let format = Format::parse(&format).ok_or("the format is csv or xlsx")?;
            let bytes =
                registry_io::export(&relay, &operator, None, format).map_err(|e| e.to_string())?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options
                .open(&out)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
            println!("wrote {} ({} bytes)", out.display(), bytes.len());
        }
        AdminCommand::Audit { limit } => {
            for e in gridsync_server::audit::recent(data, limit.min(10_000))? {
                println!("{}\t{}\t{}\t{}", e.at.to_rfc3339(), e.user, e.action, e.doc);
            }
        }
        AdminCommand::Directory { what } => {
            let relay = open()?;
            match what {
                DirectoryCommand::Import { file } => {
                    let json = read_directory_file(&file)?;
                    let revision = relay.import_directory(&json)?;
                    println!("directory revision {revision} stored");
                }
                DirectoryCommand::History => {
                    for r in relay.directory_history()? {
                        println!(
                            "{}	{}	{}	{}",
                            r.revision,
                            chrono::DateTime::from_timestamp_millis(r.created_ms)
                                .map(|t| t.to_rfc3339())
                                .unwrap_or_default(),
                            r.created_by.as_deref().unwrap_or("-"),
                            r.note
                        );
                    }
                }
                DirectoryCommand::Show => println!("{}", relay.engine().directory_json()?),
            }
        }
        AdminCommand::Devices => {
            let relay = open()?;
            for d in relay.store().devices()? {
                println!(
                    "{}\t{}\t{}\tcursor {}\t{}",
                    d.device,
                    d.user,
                    d.app_version,
                    d.last_cursor,
                    if d.revoked { "revoked" } else { "active" }
                );
            }
        }
    }
    Ok(())
}
