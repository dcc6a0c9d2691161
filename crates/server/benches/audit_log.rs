//! Throughput of the Merkle audit log alone: `MerkleLog` (group commit) over a real `SqliteStore`
//! (WAL, `synchronous=FULL`) in a temporary directory, with the real log key and `LogSigner`.
//! No HTTP, no signing of digests: only what every audited operation pays for its entries.
//!
//! Run: `cargo bench -p signet-server --bench audit_log`. The database goes where `TMPDIR` points
//! (`/tmp` by default; `TMPDIR=/dev/shm` measures the same without a real fsync).
//!
//! - `audit_log/*`: entries/s with N concurrent appenders (tokio multi-thread runtime), each
//!   appending `sign` events in a loop, 1 or 10 events per append (one append = one request).
//! - `audit_log_parts/*`: the pieces one commit is made of, each alone: canonical JSON encoding,
//!   leaf hash, tree push, inclusion proof, checkpoint signature, storage transaction.
//! - Then (bench mode only) a breakdown printed to stdout: the same appender configurations for a
//!   fixed time with the storage and signer instrumented, showing how many entries each commit
//!   carried and where the writer's time went.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{BenchmarkId, Criterion, Throughput};
use signet_core::audit::{
    Action, Actor, AuditEvent, AuditLog, AuditQuery, AuditRecord, BuildInfo, Checkpoint, DigestRef,
    KeyRef, Outcome, SignContext,
};
use signet_core::log::{
    LogEntry, LogStorage, MemoryTree, MerkleLog, NoteSigner, StoredEntry, encode_entry,
};
use signet_core::merkle::{Hash, leaf_hash};
use signet_core::principal::{PrincipalKind, Role};
use signet_core::{CoreError, SystemClock};
use signet_keys::{Kek, SoftwareBackend, SystemRandom};
use signet_server::audit_log::{LogSigner, find_log_key};
use signet_store::SqliteStore;
use tokio::runtime::Runtime;

/// A realistic `sign` event: key, digest and the full context a CI pipeline sends. The digest is a
/// SHA-256 value, random-looking like a real one (it lands anywhere in the digest index).
fn sign_event(n: u64) -> AuditEvent {
    AuditEvent {
        time: time::OffsetDateTime::now_utc(),
        action: Action::Sign,
        actor: Actor {
            id: "3f9a0c4be1d27a65".into(),
            name: "ci-release".into(),
            kind: PrincipalKind::ServiceAccount,
            role: Some(Role::Signer),
        },
        key: Some(KeyRef {
            name: "release".into(),
            version: Some(3),
            algorithm: Some("ecdsa-p256".into()),
        }),
        token_id: None,
        digest: Some(DigestRef {
            algorithm: "sha256".into(),
            value: hex::encode(leaf_hash(&n.to_be_bytes())),
        }),
        context: Some(SignContext {
            artifact_name: Some(format!("dist/app-1.4.{n}-linux-amd64.tar.gz")),
            artifact_kind: Some("file".into()),
            reason: Some("release 1.4".into()),
            build: Some(BuildInfo {
                repository: Some("https://git.example.com/platform/app".into()),
                commit: Some("9fceb02d0ae598e95dc970b74767f19372d61af8".into()),
                pipeline_id: Some("48213".into()),
            }),
        }),
        outcome: Outcome::Allowed,
        client_addr: Some("10.20.30.40".into()),
        node: "signetd".into(),
        custody: None,
        fips: false,
    }
}

// ---- instrumentation ----------------------------------------------------------------------

/// Counts and times what the writer spends in storage.
struct TimedStorage {
    inner: SqliteStore,
    commits: AtomicU64,
    entries: AtomicU64,
    nanos: AtomicU64,
}

#[async_trait]
impl LogStorage for TimedStorage {
    async fn append_batch(
        &self,
        entries: &[LogEntry],
        checkpoint: &Checkpoint,
    ) -> Result<(), CoreError> {
        let t = Instant::now();
        let r = self.inner.append_batch(entries, checkpoint).await;
        self.nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        r
    }
    async fn leaf_hashes(&self) -> Result<Vec<Hash>, CoreError> {
        self.inner.leaf_hashes().await
    }
    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, CoreError> {
        self.inner.latest_checkpoint().await
    }
    async fn entries(&self, start: u64, end: u64) -> Result<Vec<StoredEntry>, CoreError> {
        self.inner.entries(start, end).await
    }
    async fn search(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, CoreError> {
        self.inner.search(q).await
    }
}

/// Times the checkpoint signatures.
struct TimedSigner {
    inner: LogSigner,
    nanos: AtomicU64,
}

impl NoteSigner for TimedSigner {
    fn origin(&self) -> &str {
        self.inner.origin()
    }
    fn sign_checkpoint(&self, size: u64, root: &Hash) -> Result<String, CoreError> {
        let t = Instant::now();
        let r = self.inner.sign_checkpoint(size, root);
        self.nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
    fn open_checkpoint(&self, note: &str) -> Result<(u64, Hash), CoreError> {
        self.inner.open_checkpoint(note)
    }
}

impl TimedStorage {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.entries.load(Ordering::Relaxed),
            self.nanos.load(Ordering::Relaxed),
        )
    }
}

// ---- fixture ------------------------------------------------------------------------------

struct Fixture {
    _dir: tempfile::TempDir,
    log: Arc<MerkleLog>,
    storage: Arc<TimedStorage>,
    signer: Arc<TimedSigner>,
}

/// A fresh log on disk (under `TMPDIR`) with a real log key, as `signetd serve` builds it.
async fn fixture() -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("signet-audit-bench")
        .tempdir()
        .expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("signet.db"))
        .await
        .expect("open the store");
    let kek = Kek::from_bytes(Kek::generate_bytes().expect("kek").as_ref()).expect("kek");
    let backend = Arc::new(SoftwareBackend::new(kek));
    let key = find_log_key(&store, backend.as_ref(), &SystemClock, &SystemRandom)
        .await
        .expect("log key");
    let signer = Arc::new(TimedSigner {
        inner: LogSigner::new("signet/bench".into(), backend, key).expect("log signer"),
        nanos: AtomicU64::new(0),
    });
    let storage = Arc::new(TimedStorage {
        inner: store,
        commits: AtomicU64::new(0),
        entries: AtomicU64::new(0),
        nanos: AtomicU64::new(0),
    });
    let log = Arc::new(
        MerkleLog::open(storage.clone(), signer.clone())
            .await
            .expect("open the log"),
    );
    Fixture {
        _dir: dir,
        log,
        storage,
        signer,
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `tasks` appenders share `appends` appends of `per_append` events each; returns the wall time
/// and every append's latency.
async fn drive(
    log: &Arc<MerkleLog>,
    tasks: usize,
    per_append: usize,
    appends: u64,
    keep_latencies: bool,
) -> (Duration, Vec<Duration>) {
    let remaining = Arc::new(AtomicI64::new(i64::try_from(appends).unwrap_or(i64::MAX)));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let log = Arc::clone(log);
        let remaining = Arc::clone(&remaining);
        set.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let n = remaining.fetch_sub(1, Ordering::Relaxed);
                if n <= 0 {
                    break;
                }
                let events = (0..per_append)
                    .map(|i| sign_event(n as u64 * 16 + i as u64))
                    .collect();
                let t = Instant::now();
                let receipts = log.append(events).await.expect("append");
                if keep_latencies {
                    lat.push(t.elapsed());
                }
                black_box(receipts);
            }
            lat
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = set.join_next().await {
        latencies.extend(r.expect("appender task"));
    }
    (start.elapsed(), latencies)
}

/// (appenders, events per append)
const CONFIGS: &[(usize, usize)] = &[(1, 1), (16, 1), (64, 1), (64, 10)];

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("audit_log");
    group.sample_size(10);
    for &(tasks, per) in CONFIGS {
        let f = rt.block_on(fixture());
        group.throughput(Throughput::Elements(per as u64));
        group.bench_function(
            BenchmarkId::new(format!("{tasks}_appenders"), format!("{per}_events")),
            |b| {
                b.iter_custom(|iters| rt.block_on(drive(&f.log, tasks, per, iters, false)).0);
            },
        );
        drop(f);
    }
    group.finish();
}

// ---- the parts of one commit --------------------------------------------------------------

fn parts(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("audit_log_parts");
    group.throughput(Throughput::Elements(1));

    let event = sign_event(7);
    let entry = encode_entry(1_000_000, &event).expect("encode");
    eprintln!(
        "a realistic sign entry is {} bytes of canonical JSON",
        entry.len()
    );
    group.bench_function("encode_entry", |b| {
        b.iter(|| encode_entry(black_box(1_000_000), black_box(&event)))
    });
    group.bench_function("clone_event", |b| b.iter(|| black_box(&event).clone()));
    group.bench_function("leaf_hash", |b| b.iter(|| leaf_hash(black_box(&entry))));

    // A tree of 2^20 leaves, as after a million signatures.
    let leaves: Vec<Hash> = (0..(1u64 << 20))
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut tree = MemoryTree::from_leaves(leaves);
    let mut next = 0u64;
    group.bench_function("tree_push", |b| {
        b.iter(|| {
            next += 1;
            tree.push(leaf_hash(&next.to_be_bytes()));
        })
    });
    let size = tree.size();
    group.bench_function("inclusion_proof_1M", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = (i + 7919) % size;
            tree.inclusion_proof(black_box(i), size)
        })
    });
    group.bench_function("root_at_1M", |b| b.iter(|| tree.root_at(black_box(size))));

    let f = rt.block_on(fixture());
    let root = tree.root_at(size).expect("root");
    group.bench_function("sign_checkpoint", |b| {
        b.iter(|| f.signer.sign_checkpoint(black_box(size), &root))
    });

    // The storage transaction alone (multi-row insert + checkpoint row + commit with fsync),
    // at batch sizes a commit sees: one request alone, 64 single requests, 64 requests of 10.
    let note = f.signer.sign_checkpoint(size, &root).expect("note");
    let stored = Arc::new(AtomicU64::new(0));
    for batch in [1usize, 64, 640] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("storage_append_batch", batch), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = stored.load(Ordering::Relaxed);
                        let entries: Vec<LogEntry> = (start..start + batch as u64)
                            .map(|index| {
                                let ev = sign_event(index);
                                let bytes = encode_entry(index, &ev).expect("encode");
                                LogEntry {
                                    index,
                                    leaf_hash: leaf_hash(&bytes),
                                    bytes,
                                    event: ev,
                                }
                            })
                            .collect();
                        let cp = Checkpoint {
                            size: start + batch as u64,
                            root,
                            note: note.clone(),
                        };
                        let t = Instant::now();
                        f.storage
                            .inner
                            .append_batch(&entries, &cp)
                            .await
                            .expect("append_batch");
                        total += t.elapsed();
                        stored.store(start + batch as u64, Ordering::Relaxed);
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

// ---- breakdown ----------------------------------------------------------------------------

/// Bytes this process has written through write(2)/pwrite(2) so far (Linux; 0 elsewhere): the
/// database's WAL frames, checkpoints into the main file and the journal.
fn bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar:").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

fn pct(p: f64, sorted: &[Duration]) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Runs each configuration for a fixed time with the instrumented storage and signer, and prints
/// where the writer's time went.
fn breakdown() {
    let secs: f64 = std::env::var("SIGNET_BENCH_BREAKDOWN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let rt = runtime();
    println!();
    println!(
        "audit log breakdown ({secs} s per row, database under {}):",
        std::env::temp_dir().display()
    );
    println!(
        "| appenders × events | entries/s | commits/s | entries/commit | storage ms/commit | sign µs/commit | storage % of wall | sign % | rest % | KiB written/entry | append p50 ms | p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &(tasks, per) in CONFIGS {
        let f = rt.block_on(fixture());
        // Warm up, then measure a batch of appends sized from the warm-up rate.
        let (w, _) = rt.block_on(drive(&f.log, tasks, per, (tasks * 20) as u64, false));
        let rate = (tasks * 20) as f64 / w.as_secs_f64().max(1e-6);
        let appends = ((rate * secs) as u64).max(tasks as u64);
        let (c0, e0, s0) = f.storage.snapshot();
        let g0 = f.signer.nanos.load(Ordering::Relaxed);
        let w0 = bytes_written();
        let (wall, mut lat) = rt.block_on(drive(&f.log, tasks, per, appends, true));
        let (c1, e1, s1) = f.storage.snapshot();
        let g1 = f.signer.nanos.load(Ordering::Relaxed);
        let written = bytes_written().saturating_sub(w0) as f64;
        lat.sort();
        let wall_s = wall.as_secs_f64();
        let commits = (c1 - c0) as f64;
        let entries = (e1 - e0) as f64;
        let storage_s = (s1 - s0) as f64 / 1e9;
        let sign_s = (g1 - g0) as f64 / 1e9;
        println!(
            "| {tasks} × {per} | {:.0} | {:.0} | {:.1} | {:.2} | {:.0} | {:.0} | {:.1} | {:.0} | {:.1} | {:.2} | {:.2} |",
            entries / wall_s,
            commits / wall_s,
            entries / commits.max(1.0),
            storage_s * 1e3 / commits.max(1.0),
            sign_s * 1e6 / commits.max(1.0),
            100.0 * storage_s / wall_s,
            100.0 * sign_s / wall_s,
            100.0 * (1.0 - (storage_s + sign_s) / wall_s),
            written / 1024.0 / entries.max(1.0),
            pct(0.5, &lat),
            pct(0.99, &lat),
        );
    }
    println!(
        "(`rest` = encoding, hashing, tree and proofs, queueing and idle writer time: the writer lock is free between commits.)"
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    parts(&mut c);
    c.final_summary();
    // Only under `cargo bench` (criterion's test mode runs each benchmark once and stops).
    if std::env::args().any(|a| a == "--bench") {
        breakdown();
    }
}
