//! The audit log as a Merkle transparency log: entries are leaves of an RFC 9162 tree, every
//! commit is covered by a signed checkpoint (C2SP tlog-checkpoint), and every appended entry
//! comes back with its inclusion proof.
//!
//! Appends use group commit: appenders queue their events; whichever task holds the writer
//! lock takes everything queued, assigns indices, extends the tree, signs one checkpoint and
//! writes entries and checkpoint in one durable transaction, then releases every waiter.
//! Storage ([`LogStorage`]) and checkpoint signing ([`NoteSigner`]) are plug-ins.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use async_trait::async_trait;
use tokio::sync::{Mutex as AsyncMutex, oneshot};

use crate::audit::{AuditEvent, AuditLog, AuditQuery, AuditReceipt, AuditRecord, Checkpoint};
use crate::error::{CoreError, ErrorCode};
use crate::merkle::{Hash, LeafSource, MerkleError, leaf_hash, node_hash};

/// One entry ready to be stored: its index, its exact bytes (canonical JSON) and leaf hash.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub index: u64,
    pub bytes: Vec<u8>,
    pub leaf_hash: Hash,
    pub event: AuditEvent,
}

/// An entry as storage holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub index: u64,
    pub bytes: Vec<u8>,
    /// The leaf hash stored beside the entry (absent for entries written before the log was
    /// a Merkle tree).
    pub leaf_hash: Option<Hash>,
}

/// Where the log's entries and checkpoints are kept.
#[async_trait]
pub trait LogStorage: Send + Sync {
    /// Stores `entries` (dense, continuing the log) and `checkpoint` in one transaction that
    /// is durable when this returns.
    async fn append_batch(
        &self,
        entries: &[LogEntry],
        checkpoint: &Checkpoint,
    ) -> Result<(), CoreError>;

    /// Every leaf hash, in index order (read once at start).
    async fn leaf_hashes(&self) -> Result<Vec<Hash>, CoreError>;

    /// The checkpoint over the largest tree.
    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, CoreError>;

    /// Entries `start..end` as stored.
    async fn entries(&self, start: u64, end: u64) -> Result<Vec<StoredEntry>, CoreError>;

    /// Records matching a query, in index order.
    async fn search(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, CoreError>;
}

/// Signs checkpoint bodies with the log key (which never leaves its backend).
pub trait NoteSigner: Send + Sync {
    /// The log's origin line (C2SP tlog-checkpoint).
    fn origin(&self) -> &str;

    /// A signed note over the checkpoint `(size, root)`.
    fn sign_checkpoint(&self, size: u64, root: &Hash) -> Result<String, CoreError>;

    /// Checks a note's signature with the log key and returns the `(size, root)` it signs.
    fn open_checkpoint(&self, note: &str) -> Result<(u64, Hash), CoreError>;
}

/// The canonical encoding of an entry: JSON with object keys sorted and no insignificant
/// whitespace (RFC 8785; entries hold only strings, integers and booleans, so number
/// canonicalization does not arise). `index` is part of the entry, so an entry moved to another
/// position no longer matches it.
pub fn encode_entry(index: u64, event: &AuditEvent) -> Result<Vec<u8>, CoreError> {
    let mut value = serde_json::to_value(event)
        .map_err(|e| CoreError::internal("encoding an audit event", e))?;
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("index".into(), serde_json::Value::from(index));
    }
    // serde_json's map is ordered by key (no `preserve_order`), so this output is sorted.
    serde_json::to_vec(&value).map_err(|e| CoreError::internal("encoding an audit event", e))
}

/// A Merkle tree kept in memory as every complete, aligned subtree hash (level k holds the
/// roots of subtrees of 2^k leaves), so any subtree root, and so any proof, costs O(log² n).
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn from_leaves(leaves: Vec<Hash>) -> Self {
        let mut t = MemoryTree::default();
        for l in leaves {
            t.push(l);
        }
        t
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0;
        let mut hash = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                return;
            };
            row.push(hash);
            let n = row.len();
            // A new complete pair at this level makes a node one level up.
            if n.is_multiple_of(2) {
                match (row.get(n - 2), row.get(n - 1)) {
                    (Some(l), Some(r)) => hash = node_hash(l, r),
                    _ => return,
                }
                level += 1;
            } else {
                return;
            }
        }
    }

    /// Shrinks the tree back to its first `size` leaves (undoing pushes that were not stored).
    pub fn truncate(&mut self, size: u64) {
        for (k, row) in self.levels.iter_mut().enumerate() {
            let keep = u32::try_from(k)
                .ok()
                .and_then(|k| size.checked_shr(k))
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            row.truncate(keep);
        }
        while self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
    }

    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// MTH of leaves `start..end` (RFC 9162 §2.1.1); `end` must not exceed the size.
    fn subtree(&self, start: u64, end: u64) -> Option<Hash> {
        let n = end.checked_sub(start)?;
        if n == 0 || end > self.size() {
            return None;
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            return self
                .levels
                .get(level)?
                .get(usize::try_from(start / n).ok()?)
                .copied();
        }
        let k = crate::merkle::split(n);
        Some(node_hash(
            &self.subtree(start, start + k)?,
            &self.subtree(start + k, end)?,
        ))
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        if size == 0 {
            return Some(crate::merkle::empty_root());
        }
        self.subtree(0, size)
    }

    /// Inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 9162
    /// §2.1.3.1, generated by [`crate::merkle::inclusion_proof`] over the cached levels).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, CoreError> {
        crate::merkle::inclusion_proof(self, index, size).map_err(|e| out_of_range(e.to_string()))
    }

    /// Consistency proof between the trees of the first `old` and `new` leaves (RFC 9162
    /// §2.1.4.1); from the empty tree it is empty.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, CoreError> {
        crate::merkle::consistency_proof(self, old, new).map_err(|e| out_of_range(e.to_string()))
    }
}

/// Leaves and, through the cached levels, any subtree root in O(log n).
impl LeafSource for MemoryTree {
    fn len(&self) -> u64 {
        self.size()
    }

    fn leaf(&self, index: u64) -> Result<Hash, MerkleError> {
        MemoryTree::leaf(self, index).ok_or(MerkleError::IndexOutOfRange {
            index,
            size: self.size(),
        })
    }

    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, MerkleError> {
        if start == end && end <= self.size() {
            return Ok(crate::merkle::empty_root());
        }
        self.subtree(start, end)
            .ok_or(MerkleError::RangeOutOfBounds {
                start,
                end,
                available: self.size(),
            })
    }
}

fn out_of_range(msg: String) -> CoreError {
    CoreError::new(ErrorCode::InvalidRequest, msg)
}

fn bug() -> CoreError {
    CoreError::new(ErrorCode::Internal, "merkle tree is inconsistent")
}

type Outcome = Result<Result<Vec<AuditReceipt>, (ErrorCode, String)>, oneshot::error::RecvError>;

/// What an appender got first.
enum Turn<G> {
    /// Its receipt: another task committed its events.
    Done(Outcome),
    /// The writer lock: it commits everything queued.
    Writer(G),
}

struct Pending {
    events: Vec<AuditEvent>,
    done: oneshot::Sender<Result<Vec<AuditReceipt>, (ErrorCode, String)>>,
}

struct State {
    tree: MemoryTree,
    checkpoint: Option<Arc<Checkpoint>>,
}

/// The Merkle audit log with group commit.
pub struct MerkleLog {
    storage: Arc<dyn LogStorage>,
    signer: Arc<dyn NoteSigner>,
    queue: Mutex<Vec<Pending>>,
    state: AsyncMutex<State>,
}

impl MerkleLog {
    /// Loads the tree from storage; checks that the stored leaves match the latest checkpoint.
    pub async fn open(
        storage: Arc<dyn LogStorage>,
        signer: Arc<dyn NoteSigner>,
    ) -> Result<Self, CoreError> {
        let tree = MemoryTree::from_leaves(storage.leaf_hashes().await?);
        let checkpoint = storage.latest_checkpoint().await?;
        if let Some(cp) = &checkpoint {
            // INVARIANT: the server never extends a history that differs from what it signed.
            // The size and root come from the signed note, not from columns beside it.
            let (size, signed_root) = signer.open_checkpoint(&cp.note).map_err(|e| {
                CoreError::new(
                    ErrorCode::Internal,
                    format!(
                        "the last stored checkpoint does not verify with the log key ({}); it was altered — run `signet audit verify` and restore from backup",
                        e.message
                    ),
                )
            })?;
            let root = tree.root_at(size);
            // Entries and their checkpoint commit together, so rows past the signed size can
            // only have been added behind the server's back.
            if size != cp.size || tree.size() != size || root != Some(signed_root) {
                return Err(CoreError::new(
                    ErrorCode::Internal,
                    format!(
                        "the stored audit log does not match its last signed checkpoint (size {}); it was altered — run `signet audit verify` and restore from backup",
                        cp.size
                    ),
                ));
            }
        }
        Ok(MerkleLog {
            storage,
            signer,
            queue: Mutex::new(Vec::new()),
            state: AsyncMutex::new(State {
                tree,
                checkpoint: checkpoint.map(Arc::new),
            }),
        })
    }

    /// The latest signed checkpoint (signing one over the empty log if none exists yet).
    pub async fn checkpoint(&self) -> Result<Arc<Checkpoint>, CoreError> {
        let mut state = self.state.lock().await;
        if let Some(cp) = &state.checkpoint {
            return Ok(Arc::clone(cp));
        }
        let size = state.tree.size();
        let root = state.tree.root_at(size).ok_or_else(bug)?;
        let cp = Arc::new(Checkpoint {
            size,
            root,
            note: self.signer.sign_checkpoint(size, &root)?,
        });
        state.checkpoint = Some(Arc::clone(&cp));
        Ok(cp)
    }

    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(Hash, Vec<Hash>), CoreError> {
        let state = self.state.lock().await;
        let proof = state.tree.inclusion_proof(index, size)?;
        Ok((state.tree.leaf(index).ok_or_else(bug)?, proof))
    }

    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, CoreError> {
        self.state.lock().await.tree.consistency_proof(old, new)
    }

    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<StoredEntry>, CoreError> {
        self.storage.entries(start, end).await
    }

    /// Commits everything queued (called with the writer lock held).
    async fn commit(&self, state: &mut State, batch: Vec<Pending>) {
        let start = state.tree.size();
        let prepared = (|| -> Result<Vec<LogEntry>, CoreError> {
            // Indices continue the stored log.
            let mut entries = Vec::new();
            let mut index = start;
            for p in &batch {
                for ev in &p.events {
                    let bytes = encode_entry(index, ev)?;
                    entries.push(LogEntry {
                        index,
                        leaf_hash: leaf_hash(&bytes),
                        bytes,
                        event: ev.clone(),
                    });
                    index += 1;
                }
            }
            Ok(entries)
        })();
        let result = async {
            let entries = prepared?;
            for e in &entries {
                state.tree.push(e.leaf_hash);
            }
            let size = state.tree.size();
            let root = state.tree.root_at(size).ok_or_else(bug)?;
            let checkpoint = Arc::new(Checkpoint {
                size,
                root,
                note: self.signer.sign_checkpoint(size, &root)?,
            });
            self.storage.append_batch(&entries, &checkpoint).await?;
            Ok::<_, CoreError>((entries, checkpoint))
        }
        .await;
        match result {
            Ok((entries, checkpoint)) => {
                // Durable: only now do waiters get their receipts.
                state.checkpoint = Some(Arc::clone(&checkpoint));
                let mut it = entries.into_iter();
                for p in batch {
                    let receipts = it
                        .by_ref()
                        .take(p.events.len())
                        .map(|e| {
                            Ok(AuditReceipt {
                                index: e.index,
                                entry: e.bytes,
                                leaf_hash: e.leaf_hash,
                                inclusion_proof: state
                                    .tree
                                    .inclusion_proof(e.index, checkpoint.size)?,
                                checkpoint: Arc::clone(&checkpoint),
                            })
                        })
                        .collect::<Result<Vec<_>, CoreError>>()
                        .map_err(|e| (e.code, e.to_string()));
                    let _ = p.done.send(receipts);
                }
            }
            Err(e) => {
                // Nothing was stored: the tree goes back to what storage holds.
                state.tree.truncate(start);
                for p in batch {
                    let _ = p.done.send(Err((e.code, e.message.clone())));
                }
            }
        }
    }
}

#[async_trait]
impl AuditLog for MerkleLog {
    async fn append(&self, events: Vec<AuditEvent>) -> Result<Vec<AuditReceipt>, CoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (done, rx) = oneshot::channel();
        if let Ok(mut q) = self.queue.lock() {
            q.push(Pending { events, done });
        }
        // Wait for whichever comes first: our receipt (another task committed our events) or
        // the writer lock. Whoever gets the lock commits everything queued so far, its own
        // events and everyone else's; a task whose receipt arrives first leaves the lock queue,
        // so one commit serves every appender that was waiting (group commit).
        let mut rx = rx;
        let outcome = {
            let mut lock = std::pin::pin!(self.state.lock());
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = Pin::new(&mut rx).poll(cx) {
                    return Poll::Ready(Turn::Done(r));
                }
                lock.as_mut().poll(cx).map(Turn::Writer)
            })
            .await
        };
        let result = match outcome {
            Turn::Done(r) => r,
            Turn::Writer(mut state) => {
                let batch = match self.queue.lock() {
                    Ok(mut q) => std::mem::take(&mut *q),
                    Err(_) => Vec::new(),
                };
                if !batch.is_empty() {
                    self.commit(&mut state, batch).await;
                }
                drop(state);
                rx.await
            }
        };
        match result {
            Ok(Ok(receipts)) => Ok(receipts),
            // A sealed server cannot sign checkpoints: that is `sealed`, not an internal error.
            Ok(Err((ErrorCode::Sealed, msg))) => Err(CoreError::new(ErrorCode::Sealed, msg)),
            Ok(Err((_, msg))) => Err(CoreError::new(
                ErrorCode::Internal,
                format!("audit append failed: {msg}"),
            )),
            Err(_) => Err(CoreError::new(
                ErrorCode::Internal,
                "audit append was abandoned",
            )),
        }
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, CoreError> {
        self.storage.search(query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, inclusion_proof};

    #[test]
    fn cached_subtrees_give_the_same_proofs_as_the_leaves() -> Result<(), CoreError> {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut tree = MemoryTree::default();
        for (n, leaf) in leaves.iter().enumerate() {
            tree.push(*leaf);
            let size = n as u64 + 1;
            let plain = &leaves[..=n];
            assert_eq!(tree.root_at(size), Some(crate::merkle::root(plain)));
            for i in 0..size {
                assert_eq!(
                    tree.inclusion_proof(i, size)?,
                    inclusion_proof(plain, i, size).map_err(|e| out_of_range(e.to_string()))?
                );
            }
            for m in 0..=size {
                assert_eq!(
                    tree.consistency_proof(m, size)?,
                    consistency_proof(plain, m, size).map_err(|e| out_of_range(e.to_string()))?
                );
            }
        }
        assert!(tree.inclusion_proof(70, 70).is_err());
        assert!(tree.consistency_proof(5, 71).is_err());
        tree.truncate(33);
        assert_eq!(tree.root_at(33), Some(crate::merkle::root(&leaves[..33])));
        Ok(())
    }
}
