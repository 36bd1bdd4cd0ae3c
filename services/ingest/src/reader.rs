//! The row path of one file, on a blocking thread: read → validate → resolve → encode.
//! Its output is a stream of chunks the async side publishes and records; memory is bounded
//! by the chunk size and the channel's capacity, whatever the file's size.

use crate::identity::{content_hash, region_bytes, Contribution, Version};
use crate::profile::{ColumnMap, ProviderProfile};
use crate::records::{BoundedRecords, Next};
use crate::sanitize;
use crate::validate::{truncate, RejectReason, RowValidator};
use altdata_domain::{date_to_epoch_days, shard_of, CustomerKeyer, Region};
use altdata_proto::v1::{ResolutionSource, TransactionEvent};
use altdata_proto::{Message, SCHEMA_VERSION};
use altdata_resolver::{Candidate, Decision, ResolutionCache, Resolver};
use bytes::{Bytes, BytesMut};
use chrono::NaiveDate;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

/// Rows per chunk handed to the async side.
pub const CHUNK_ROWS: usize = 1024;
/// The longest raw row kept with a reject.
pub const MAX_REJECT_ROW_LEN: usize = 512;

/// Room for a chunk's payloads (about 60 bytes an event); the buffer grows if a chunk needs
/// more.
const CHUNK_BYTES: usize = CHUNK_ROWS * 128;

/// An encoded event, ready to go into its shard's batch ([`crate::batch`]).
pub struct Event {
    pub shard: u32,
    pub merchant_id: i64,
    pub payload: Bytes,
}

/// What became of one row.
pub enum RowOutcome {
    /// Valid: its identity (classified against the identity record before anything is
    /// published) and what to do with it if it is new.
    Valid(RowIdentity, Action),
    /// Invalid: record the reason. (Boxed, as held rows, so that a chunk's outcomes are the
    /// size of an event each, not of the largest row.)
    Reject(Box<RejectRow>),
}

/// What a valid row becomes.
pub enum Action {
    /// Resolved to a brand: publish this event.
    Named(Event),
    /// Brand unknown, category known: publish this event (under the category's unattributed
    /// merchant) and hold the row for review.
    Unattributed(Event, Box<UnmappedRow>),
    /// Neither brand nor category known: hold it for review only.
    Unmapped(Box<UnmappedRow>),
}

/// A valid row's identity and the version this file carries.
pub struct RowIdentity {
    pub txn_id: String,
    pub version: Version,
}

pub struct UnmappedRow {
    pub txn_id: String,
    pub raw_descriptor: String,
    pub normalized_descriptor: String,
    pub amount_cents: i64,
    pub metric_date: NaiveDate,
    pub region: String,
    pub mcc: String,
    pub customer_key: i64,
    /// The decision's candidates as JSON, shared by every row with that decision.
    pub candidates: Arc<str>,
    /// The unattributed merchant whose aggregates count this row meanwhile, if any.
    pub counted_merchant_id: Option<i64>,
    /// A corrected version replacing an earlier held row of the same identity (written over
    /// it, and counted as corrected rather than unmapped).
    pub replaces: bool,
    /// A corrected version (counted as corrected, not unmapped).
    pub correction: bool,
}

pub struct RejectRow {
    pub line: u64,
    pub reason: String,
    pub raw_row: String,
}

/// A batch of rows in file order.
pub struct Chunk {
    pub outcomes: Vec<RowOutcome>,
    /// The line of this chunk's first row: with `next_line`, it names the chunk's batches.
    pub first_line: u64,
    /// Data rows read in this chunk (every row lands in exactly one outcome).
    pub rows: u64,
    /// The line after the last row of this chunk: where a resume would start.
    pub next_line: u64,
    pub lossy_utf8: bool,
    /// Valid rows whose descriptor was found in the resolution cache, and those resolved anew.
    pub resolution_cache_hits: u64,
    pub resolution_cache_misses: u64,
}

/// Everything the row path needs, owned so it can move to a blocking thread.
pub struct RowPath {
    pub provider: String,
    pub profile: ProviderProfile,
    pub resolver: Arc<Resolver>,
    pub cache: Arc<Mutex<ResolutionCache>>,
    pub keyer: CustomerKeyer,
    pub shard_count: u32,
    pub latest_date: NaiveDate,
    pub earliest_date: NaiveDate,
    /// Lines before this one were handled by an earlier, interrupted run.
    pub resume_line: u64,
    /// Longest record read; a longer one is rejected without being held in memory.
    pub max_record_bytes: usize,
}

/// Why a file could not be read at all (as opposed to a bad row).
#[derive(Debug)]
pub enum FileProblem {
    Header(Vec<String>),
    Read(String),
}

impl RowPath {
    /// Reads the whole file, sending chunks until done. Returns early, without error, when
    /// the receiver is gone (shutdown).
    pub fn run(
        &self,
        input: impl Read,
        gzip: bool,
        chunks: tokio::sync::mpsc::Sender<Chunk>,
    ) -> Result<(), FileProblem> {
        let input: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(input))
        } else {
            Box::new(input)
        };
        let mut records = BoundedRecords::new(
            std::io::BufReader::with_capacity(256 * 1024, input),
            self.profile.format.delimiter.map_or(b',', |c| c as u8),
            self.max_record_bytes,
        );
        let read_failed = |records: &BoundedRecords<_>, error: std::io::Error| -> FileProblem {
            // An I/O or gzip error: the file cannot be trusted past here.
            FileProblem::Read(format!("line {}: {error}", records.line()))
        };
        let mut record = csv::ByteRecord::new();
        match records.read(&mut record) {
            Ok(Next::Record) => {}
            Ok(Next::End) => return Err(FileProblem::Header(vec!["(no header)".into()])),
            Ok(Next::TooLong { .. }) => {
                return Err(FileProblem::Read(format!(
                    "the header is longer than {} bytes (ALTDATA_MAX_RECORD_BYTES)",
                    self.max_record_bytes
                )))
            }
            Err(error) => return Err(read_failed(&records, error)),
        }
        let header: Vec<String> = record
            .iter()
            .map(|h| {
                String::from_utf8_lossy(h)
                    .trim_start_matches('\u{feff}')
                    .to_owned()
            })
            .collect();
        let columns =
            ColumnMap::from_header(&header, &self.profile).map_err(FileProblem::Header)?;
        let card_column = columns.index[2];
        let validator = RowValidator {
            columns,
            profile: &self.profile,
            keyer: &self.keyer,
            latest_date: self.latest_date,
            earliest_date: self.earliest_date,
        };

        let mut chunk = new_chunk(self.resume_line);
        // One event whose strings are refilled row after row, and one buffer per chunk that
        // every payload and Msg-Id of the chunk is a slice of: no allocation per event.
        let mut event = TransactionEvent {
            schema_version: SCHEMA_VERSION,
            provider: self.provider.clone(),
            ..TransactionEvent::default()
        };
        let mut out = BytesMut::with_capacity(CHUNK_BYTES);
        let mut candidates = CandidatesJson::default();
        loop {
            let too_long = match records.read(&mut record) {
                Ok(Next::Record) => None,
                Ok(Next::TooLong { line, start }) => Some((line, start)),
                Ok(Next::End) => break,
                Err(error) => return Err(read_failed(&records, error)),
            };
            let line = match &too_long {
                Some((line, _)) => *line,
                None => record.position().map_or(0, |p| p.line()),
            };
            if line < self.resume_line {
                continue;
            }
            chunk.rows += 1;
            chunk.next_line = line + 1;
            let outcome = match too_long {
                Some((line, start)) => RowOutcome::Reject(Box::new(too_long_reject(
                    line,
                    &start,
                    self.max_record_bytes,
                ))),
                None => match validator.validate(&record) {
                    Err(reason) => {
                        RowOutcome::Reject(Box::new(reject(line, &reason, &record, card_column)))
                    }
                    Ok(row) => {
                        chunk.lossy_utf8 |= row.lossy;
                        let (outcome, cache_hit) =
                            self.resolve_and_encode(&row, &mut event, &mut out, &mut candidates);
                        if cache_hit {
                            chunk.resolution_cache_hits += 1;
                        } else {
                            chunk.resolution_cache_misses += 1;
                        }
                        outcome
                    }
                },
            };
            chunk.outcomes.push(outcome);
            if chunk.outcomes.len() >= CHUNK_ROWS {
                out.reserve(CHUNK_BYTES);
                let next_line = chunk.next_line;
                if chunks
                    .blocking_send(std::mem::replace(&mut chunk, new_chunk(next_line)))
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
        if chunk.rows > 0 {
            let _ = chunks.blocking_send(chunk);
        }
        Ok(())
    }

    /// The row's outcome, and whether its resolution came from the cache.
    fn resolve_and_encode(
        &self,
        row: &crate::validate::ValidRow<'_>,
        event: &mut TransactionEvent,
        out: &mut BytesMut,
        candidates_json: &mut CandidatesJson,
    ) -> (RowOutcome, bool) {
        let (resolution, cache_hit) = match self.cache.lock() {
            Ok(mut cache) => {
                let misses = cache.misses();
                let resolution = cache.get_or_resolve(&self.resolver, &row.descriptor, &row.mcc);
                (resolution, cache.misses() == misses)
            }
            // A poisoned lock only means another thread panicked mid-insert; resolve uncached.
            Err(_) => (
                Arc::new(self.resolver.resolve(&row.descriptor, &row.mcc)),
                false,
            ),
        };
        // The structured state column wins; the descriptor's state is the fallback.
        let region = row.state.or(resolution.state).unwrap_or(Region::UNKNOWN);
        let customer_key = self.keyer.customer_key(&row.card_id);
        let content_hash = content_hash(
            row.metric_date,
            row.amount_cents,
            customer_key,
            &row.masked_descriptor,
            &row.mcc,
            region.as_str(),
        );
        let action = match &resolution.decision {
            Decision::Auto {
                merchant_id,
                confidence,
                source,
            } => {
                let encoded = EncodedRow {
                    row,
                    region,
                    customer_key,
                    merchant_id: *merchant_id,
                    source: wire_source(source),
                    confidence: *confidence,
                };
                Action::Named(self.encode(&encoded, event, out))
            }
            Decision::Review { candidates, .. } => {
                let candidates = candidates_json.of(candidates);
                let held = |counted_merchant_id| {
                    Box::new(UnmappedRow {
                        txn_id: row.txn_id.to_string(),
                        raw_descriptor: row.masked_descriptor.to_string(),
                        // Normalising drops long numbers; masked all the same, to be sure.
                        normalized_descriptor: sanitize::mask_pans(resolution.group()).into_owned(),
                        amount_cents: row.amount_cents,
                        metric_date: row.metric_date,
                        region: region.to_string(),
                        mcc: row.mcc.to_string(),
                        customer_key: customer_key as i64,
                        candidates: Arc::clone(&candidates),
                        counted_merchant_id,
                        replaces: false,
                        correction: false,
                    })
                };
                match resolution.unattributed_category() {
                    Some(guess) => {
                        let merchant_id = guess.category.unattributed_merchant_id();
                        let encoded = EncodedRow {
                            row,
                            region,
                            customer_key,
                            merchant_id,
                            source: ResolutionSource::Category,
                            confidence: guess.confidence,
                        };
                        Action::Unattributed(
                            self.encode(&encoded, event, out),
                            held(Some(merchant_id)),
                        )
                    }
                    None => Action::Unmapped(held(None)),
                }
            }
        };
        let version = Version {
            content_hash,
            merchant_id: match &action {
                Action::Named(event) | Action::Unattributed(event, _) => Some(event.merchant_id),
                Action::Unmapped(_) => None,
            },
            region: region_bytes(region.as_str()),
            metric_date: row.metric_date,
            amount_cents: row.amount_cents,
            customer_key: customer_key as i64,
            held: !matches!(action, Action::Named(_)),
        };
        let identity = RowIdentity {
            txn_id: row.txn_id.to_string(),
            version,
        };
        let outcome = RowOutcome::Valid(identity, action);
        (outcome, cache_hit)
    }
}

/// What an event says about a valid row.
struct EncodedRow<'r, 'a> {
    row: &'r crate::validate::ValidRow<'a>,
    region: Region,
    customer_key: u64,
    merchant_id: i64,
    source: ResolutionSource,
    confidence: f32,
}

impl RowPath {
    /// Refills the one event with the row and encodes it into the chunk's buffer (no
    /// allocation per event).
    fn encode(
        &self,
        encoded: &EncodedRow<'_, '_>,
        event: &mut TransactionEvent,
        out: &mut BytesMut,
    ) -> Event {
        let row = encoded.row;
        refill(&mut event.txn_id, &row.txn_id);
        event.metric_date = date_to_epoch_days(row.metric_date);
        event.amount_cents = row.amount_cents;
        event.customer_key = encoded.customer_key;
        event.merchant_id = encoded.merchant_id;
        refill(&mut event.region, encoded.region.as_str());
        refill(&mut event.mcc, &row.mcc);
        event.resolution = encoded.source as i32;
        event.confidence = encoded.confidence;
        // Encoding into a BytesMut with room cannot fail.
        let _ = event.encode(out);
        Event {
            shard: shard_of(encoded.merchant_id, self.shard_count),
            merchant_id: encoded.merchant_id,
            payload: out.split().freeze(),
        }
    }
}

/// The event that takes a version's contribution back out: the same merchant, cell and
/// amount, flagged as a retraction.
pub fn retraction_event(
    provider: &str,
    txn_id: &str,
    contribution: &Contribution,
    shard_count: u32,
) -> Event {
    let event = TransactionEvent {
        schema_version: SCHEMA_VERSION,
        provider: provider.to_owned(),
        txn_id: txn_id.to_owned(),
        metric_date: date_to_epoch_days(contribution.metric_date),
        amount_cents: contribution.amount_cents,
        customer_key: contribution.customer_key as u64,
        merchant_id: contribution.merchant_id,
        region: String::from_utf8_lossy(&contribution.region).into_owned(),
        retraction: true,
        ..TransactionEvent::default()
    };
    Event {
        shard: shard_of(contribution.merchant_id, shard_count),
        merchant_id: contribution.merchant_id,
        payload: event.encode_to_vec().into(),
    }
}

fn refill(target: &mut String, value: &str) {
    target.clear();
    target.push_str(value);
}

fn new_chunk(next_line: u64) -> Chunk {
    Chunk {
        outcomes: Vec::with_capacity(CHUNK_ROWS),
        rows: 0,
        first_line: next_line,
        next_line,
        lossy_utf8: false,
        resolution_cache_hits: 0,
        resolution_cache_misses: 0,
    }
}

fn wire_source(source: &altdata_resolver::ResolutionSource) -> ResolutionSource {
    match source {
        altdata_resolver::ResolutionSource::Alias => ResolutionSource::Alias,
        altdata_resolver::ResolutionSource::Rule => ResolutionSource::Rule,
        altdata_resolver::ResolutionSource::Fuzzy => ResolutionSource::Fuzzy,
    }
}

/// Review candidates as JSON (what `unmapped_transactions.candidates` stores), written once
/// per decision rather than once per row: the rows of one decision share its candidate list,
/// so the list's address names it for as long as the map holds the list (and so keeps the
/// address from being reused). Cleared when it grows past [`CandidatesJson::CAPACITY`].
#[derive(Default)]
struct CandidatesJson {
    by_list: HashMap<usize, (Arc<[Candidate]>, Arc<str>)>,
}

impl CandidatesJson {
    const CAPACITY: usize = 65_536;

    fn of(&mut self, list: &Arc<[Candidate]>) -> Arc<str> {
        let address = Arc::as_ptr(list).cast::<Candidate>() as usize;
        if let Some((_, json)) = self.by_list.get(&address) {
            return Arc::clone(json);
        }
        if self.by_list.len() >= Self::CAPACITY {
            self.by_list.clear();
        }
        let json: Arc<str> = candidates_json(list).into();
        self.by_list
            .insert(address, (Arc::clone(list), Arc::clone(&json)));
        json
    }
}

fn candidates_json(candidates: &[Candidate]) -> String {
    let list: Vec<serde_json::Value> = candidates
        .iter()
        .map(|c| {
            serde_json::json!({
                "merchant_id": c.merchant_id,
                "name": c.name,
                "category": c.category.as_str(),
                "score": c.score,
                "why": c.why,
                "name_at_start": c.name_at_start,
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// The reject record: the raw row joined back, the card id masked (and any long digit run,
/// in case a broken row shifted the card id into another column), every field through the
/// edge's cleaning ([`sanitize::for_storage`]), truncated.
fn reject(
    line: u64,
    reason: &RejectReason,
    record: &csv::ByteRecord,
    card_column: Option<usize>,
) -> RejectRow {
    let mut raw = String::with_capacity(128);
    for (index, field) in record.iter().enumerate() {
        if index > 0 {
            raw.push(',');
        }
        let text = String::from_utf8_lossy(field);
        if Some(index) == card_column {
            raw.push_str(&sanitize::mask_last4(&text));
        } else {
            raw.push_str(&mask_digit_runs(&sanitize::for_storage(&text)));
        }
        if raw.len() > MAX_REJECT_ROW_LEN {
            break;
        }
    }
    RejectRow::new(line, reason, &raw)
}

/// The reject of a record longer than `max` bytes, from its first bytes.
fn too_long_reject(line: u64, start: &str, max: usize) -> RejectRow {
    let raw = mask_digit_runs(&sanitize::for_storage(start));
    RejectRow::new(line, &RejectReason::RecordTooLong { max }, &raw)
}

impl RejectRow {
    /// A reject whose reason and row are clean for storage (the reason may quote a field).
    fn new(line: u64, reason: &RejectReason, raw: &str) -> RejectRow {
        let raw = sanitize::for_storage(raw);
        RejectRow {
            line,
            reason: sanitize::for_storage(&reason.to_string()).into_owned(),
            raw_row: truncate(&raw, MAX_REJECT_ROW_LEN).to_owned(),
        }
    }
}

/// Replaces every run of 12 or more digits with `X`s and its last four digits, card number
/// or not.
pub fn mask_digit_runs(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index].is_ascii_digit() {
            let run_start = index;
            while index < bytes.len() && bytes[index].is_ascii_digit() {
                index += 1;
            }
            if index - run_start >= 12 {
                out.push_str(&text[start..run_start]);
                out.push_str(&sanitize::mask_last4(&text[run_start..index]));
                start = index;
            }
        } else {
            index += 1;
        }
    }
    out.push_str(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_digit_runs_are_masked_to_their_last_four() {
        assert_eq!(
            mask_digit_runs("a 4111222233334444 b 1234"),
            "a XXXXXXXXXXXX4444 b 1234"
        );
    }
}
