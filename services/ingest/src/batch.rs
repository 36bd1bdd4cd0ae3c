//! Events travel in batches: one JetStream message per (chunk of the file, shard), a
//! `TransactionBatch` of the chunk's events of that shard in file order.
//!
//! Invariant: a batch's contents and its `Nats-Msg-Id` depend only on the file's bytes and the
//! chunk (the reader cuts chunks every `CHUNK_ROWS` rows from the line a run starts at, and a
//! run starts at a checkpoint, which is always a chunk's end). A re-run from a checkpoint
//! after any crash therefore rebuilds the same batches under the same ids, and the stream
//! stores each once. A batch is never carried across chunks, so a checkpoint never has a
//! batch half built.
//!
//! Ids: `b:<first 16 hex of the file's SHA-256>:<first line>-<next line>:<shard>` for a chunk,
//! `b:<sha>:tail<n>:<shard>` for the n-th block of a restated day's retractions; `:<part>` is
//! appended to every part but the last when a batch is cut for size.

use bytes::Bytes;

/// A batch is cut into parts above this size, well under NATS' default 1 MiB payload limit.
const MAX_BATCH_BYTES: usize = 512 * 1024;

/// What an event is, for the conservation line: a new row's (a named brand's, or a
/// category's unattributed merchant's, counted apart by their acknowledgement), or part of a
/// correction or retraction (their rows are counted when they are classified, so their
/// acknowledgements count nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Named,
    Unattributed,
    Correction,
    Retraction,
}

/// The new rows a batch carries, counted when its acknowledgement arrives.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KindCounts {
    pub named: u64,
    pub unattributed: u64,
}

impl KindCounts {
    fn add(&mut self, kind: EventKind) {
        match kind {
            EventKind::Named => self.named += 1,
            EventKind::Unattributed => self.unattributed += 1,
            EventKind::Correction | EventKind::Retraction => {}
        }
    }

    pub fn rows(&self) -> u64 {
        self.named + self.unattributed
    }
}

/// One message, ready to publish.
#[derive(Debug, Clone)]
pub struct Batch {
    pub shard: u32,
    pub msg_id: String,
    pub payload: Bytes,
    pub kinds: KindCounts,
    pub events: u64,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    kinds: KindCounts,
    events: u64,
    parts: u32,
}

/// The batches of one chunk (or one block of retractions), per shard.
pub struct Batches {
    file_key: String,
    label: String,
    shards: Vec<Pending>,
}

impl Batches {
    /// `sha256` is the file's content hash (hex).
    pub fn new(sha256: &str, shard_count: u32) -> Batches {
        Batches {
            file_key: sha256.chars().take(16).collect(),
            label: String::new(),
            shards: (0..shard_count).map(|_| Pending::default()).collect(),
        }
    }

    /// Starts the batches of the next chunk or block; `label` names it in the ids.
    pub fn begin(&mut self, label: String) {
        debug_assert!(self.shards.iter().all(|p| p.events == 0));
        self.label = label;
        for pending in &mut self.shards {
            pending.parts = 0;
        }
    }

    /// Adds an encoded event; returns a part to publish when the shard's batch is full.
    pub fn push(&mut self, kind: EventKind, shard: u32, event: &[u8]) -> Option<Batch> {
        let full = {
            let pending = &self.shards[shard as usize];
            pending.events > 0 && pending.bytes.len() + event.len() + 16 > MAX_BATCH_BYTES
        };
        let part = if full {
            let part = self.shards[shard as usize].parts;
            self.shards[shard as usize].parts += 1;
            self.take(shard, Some(part))
        } else {
            None
        };
        let pending = &mut self.shards[shard as usize];
        if pending.events == 0 {
            pending.bytes.clear();
            altdata_proto::batch::start(&mut pending.bytes);
        }
        altdata_proto::batch::push_event(&mut pending.bytes, event);
        pending.kinds.add(kind);
        pending.events += 1;
        part
    }

    /// The chunk's remaining batches, one per shard that has events.
    pub fn finish(&mut self) -> Vec<Batch> {
        (0..self.shards.len() as u32)
            .filter_map(|shard| self.take(shard, None))
            .collect()
    }

    fn take(&mut self, shard: u32, part: Option<u32>) -> Option<Batch> {
        let pending = &mut self.shards[shard as usize];
        if pending.events == 0 {
            return None;
        }
        let mut msg_id = format!("b:{}:{}:{shard}", self.file_key, self.label);
        if let Some(part) = part {
            msg_id.push_str(&format!(":{part}"));
        }
        let batch = Batch {
            shard,
            msg_id,
            payload: Bytes::copy_from_slice(&pending.bytes),
            kinds: pending.kinds,
            events: pending.events,
        };
        pending.bytes.clear();
        pending.kinds = KindCounts::default();
        pending.events = 0;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use altdata_proto::v1::{TransactionBatch, TransactionEvent};
    use altdata_proto::Message as _;

    fn event(i: usize, txn_len: usize) -> Vec<u8> {
        TransactionEvent {
            schema_version: 1,
            txn_id: format!("{i:0txn_len$}"),
            merchant_id: i as i64,
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn a_chunk_becomes_one_batch_per_shard_named_by_file_lines_and_shard() {
        let mut batches = Batches::new("0123456789abcdef0123", 4);
        batches.begin("10-1034".to_owned());
        for i in 0..10 {
            let kind = if i % 2 == 0 {
                EventKind::Named
            } else {
                EventKind::Retraction
            };
            assert!(batches.push(kind, (i % 3) as u32, &event(i, 4)).is_none());
        }
        let done = batches.finish();
        let ids: Vec<&str> = done.iter().map(|b| b.msg_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "b:0123456789abcdef:10-1034:0",
                "b:0123456789abcdef:10-1034:1",
                "b:0123456789abcdef:10-1034:2"
            ]
        );
        let shard0 = TransactionBatch::decode(done[0].payload.as_ref()).expect("decodes");
        assert_eq!(shard0.schema_version, 1);
        let merchants: Vec<i64> = shard0.events.iter().map(|e| e.merchant_id).collect();
        assert_eq!(merchants, [0, 3, 6, 9]);
        assert_eq!(
            done[0].kinds.named, 2,
            "0 and 6 are named; 3 and 9 retractions"
        );
        assert_eq!(done.iter().map(|b| b.events).sum::<u64>(), 10);
        assert!(batches.finish().is_empty());
    }

    #[test]
    fn a_large_batch_is_cut_into_parts_with_their_own_ids() {
        let mut batches = Batches::new("ffff", 1);
        batches.begin("0-1024".to_owned());
        let mut parts = Vec::new();
        for i in 0..1024 {
            parts.extend(batches.push(EventKind::Named, 0, &event(i, 2000)));
        }
        parts.extend(batches.finish());
        assert!(parts.len() > 2);
        assert!(parts.iter().all(|b| b.payload.len() <= MAX_BATCH_BYTES));
        assert_eq!(parts[0].msg_id, "b:ffff:0-1024:0:0");
        assert_eq!(
            parts.last().map(|b| b.msg_id.as_str()),
            Some("b:ffff:0-1024:0")
        );
        let decoded: usize = parts
            .iter()
            .map(|b| {
                TransactionBatch::decode(b.payload.as_ref())
                    .expect("decodes")
                    .events
                    .len()
            })
            .sum();
        assert_eq!(decoded, 1024);
        assert_eq!(parts.iter().map(|b| b.kinds.named).sum::<u64>(), 1024);
    }
}
