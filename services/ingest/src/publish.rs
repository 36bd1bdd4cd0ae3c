//! Publishing batches ([`crate::batch`]) to JetStream with a bounded window of outstanding
//! acknowledgements.
//!
//! Each batch goes out as a plain NATS publish with a reply subject `<inbox>.<number>.<send>`
//! and its `Nats-Msg-Id`; the stream's acknowledgements all arrive on one subscription to
//! `<inbox>.>` and are matched to their batches by that number, and to the send they answer.
//! This is what async-nats' `send_publish` does too, minus the bookkeeping it needs to hand
//! each caller a future of its own (docs/ARCHITECTURE.md, "Publishing").
//!
//! Ack policy: a batch counts as published (or duplicate) when its first successful ack
//! arrives, whichever send it answers; later acks of the same batch are ignored. An error ack
//! (stream full, no stream yet) counts only when it answers the batch's latest send (an older
//! send's refusal says nothing about the newer one still in flight); the refused batches go
//! again after a pause with one shared backoff, with the same Msg-Id, so the stream's
//! de-duplication makes retries harmless: wait, never drop. No ack within [`ACK_TIMEOUT`]
//! means the server restarted or the connection dropped: every unanswered batch goes again.

use crate::batch::{Batch, KindCounts};
use crate::error::IngestError;
use altdata_common::Shutdown;
use async_nats::{Client, HeaderMap, Subject, Subscriber};
use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a batch may wait for its ack before the window is sent again (async-nats'
/// JetStream default).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The most acks that may be in flight: the subscription's buffer (async-nats' default
/// capacity, 65,536) must never fill, or the client drops acks as a slow consumer.
pub const MAX_WINDOW: usize = 16_384;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

struct Outstanding {
    batch: Batch,
    sent_at: Instant,
    /// Which send of the batch is the latest (0 for the first): the `<send>` of its reply.
    send: u32,
    state: AckState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckState {
    Waiting,
    Acked,
    /// Refused by the stream: to be sent again after a pause.
    Refused,
}

/// Per-file publish counts, in rows.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublishCounts {
    /// Stored new rows of named brands.
    pub published: u64,
    /// Stored new rows of unattributed merchants.
    pub unattributed: u64,
    /// New rows in batches the stream acknowledged as duplicates (same `Nats-Msg-Id` within
    /// its window: a re-run after a crash re-sending what was already stored).
    pub duplicates: u64,
}

impl PublishCounts {
    fn count(&mut self, kinds: KindCounts, duplicate: bool) {
        if duplicate {
            self.duplicates += kinds.rows();
        } else {
            self.published += kinds.named;
            self.unattributed += kinds.unattributed;
        }
    }
}

/// What JetStream replies to a publish: `{"stream":..,"seq":..,"duplicate":true}` or
/// `{"error":{"code":..,"description":..}}`.
#[derive(Deserialize)]
struct AckReply {
    #[serde(default)]
    duplicate: bool,
    error: Option<AckError>,
}

#[derive(Deserialize)]
struct AckError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    description: String,
}

/// What one reply on the ack subscription says about its batch.
enum Ack {
    Stored { duplicate: bool },
    Failed(String),
}

pub struct Publisher {
    client: Client,
    acks: Subscriber,
    /// `<inbox>.`: a batch's reply subject is this plus `<number>.<send>`.
    reply_prefix: String,
    shard_subjects: Vec<Subject>,
    window: usize,
    /// Events from number `first` on, in order; acked ones stay until those before them are.
    queue: VecDeque<Outstanding>,
    first: u64,
    /// Some batch may be refused: set by a refusal, cleared by a resend, and checked against
    /// the queue before a pause (an older send may have stored it since). Saves scanning the
    /// window on every settle.
    refused: bool,
    /// Why the last refusal happened, and the pause before the next resend of refused batches
    /// (doubles while the stream keeps refusing, back to the start after a stored batch).
    refusal: String,
    backoff: Duration,
    pub counts: PublishCounts,
    shutdown: Shutdown,
    latency: metrics::Histogram,
    retries: metrics::Counter,
}

impl Publisher {
    pub async fn new(
        client: Client,
        shard_subjects: Vec<Subject>,
        window: usize,
        shutdown: Shutdown,
    ) -> Result<Publisher, IngestError> {
        let inbox = client.new_inbox();
        let acks = client
            .subscribe(format!("{inbox}.>"))
            .await
            .map_err(|e| IngestError::Publish(format!("subscribe to acks: {e}")))?;
        let window = window.clamp(1, MAX_WINDOW);
        Ok(Publisher {
            client,
            acks,
            reply_prefix: format!("{inbox}."),
            shard_subjects,
            window,
            queue: VecDeque::with_capacity(window),
            first: 0,
            refused: false,
            refusal: String::new(),
            backoff: FIRST_BACKOFF,
            counts: PublishCounts::default(),
            shutdown,
            latency: metrics::histogram!("altdata_ingest_publish_seconds"),
            retries: metrics::counter!("altdata_ingest_publish_retries_total"),
        })
    }

    /// Sends one batch; waits for acks while the window is full.
    pub async fn publish(&mut self, batch: Batch) -> Result<(), IngestError> {
        while self.queue.len() >= self.window {
            self.settle().await?;
        }
        let number = self.first + self.queue.len() as u64;
        self.send(number, 0, &batch).await?;
        self.queue.push_back(Outstanding {
            batch,
            sent_at: Instant::now(),
            send: 0,
            state: AckState::Waiting,
        });
        Ok(())
    }

    /// Waits for every outstanding acknowledgement (before a checkpoint).
    pub async fn drain(&mut self) -> Result<(), IngestError> {
        while !self.queue.is_empty() {
            self.settle().await?;
        }
        Ok(())
    }

    /// Sends one batch, retrying with backoff while the client refuses it.
    async fn send(&self, number: u64, send: u32, batch: &Batch) -> Result<(), IngestError> {
        let subject = &self.shard_subjects[batch.shard as usize];
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", batch.msg_id.as_str());
            let reply = format!("{}{number}.{send}", self.reply_prefix);
            match self
                .client
                .publish_with_reply_and_headers(
                    subject.clone(),
                    reply,
                    headers,
                    batch.payload.clone(),
                )
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) => self.pause(&mut backoff, &error.to_string()).await?,
            }
        }
    }

    /// Takes every reply already there, then waits for one more (or the oldest unanswered
    /// batch's timeout) if some batch is still waiting, sends the refused batches again after a
    /// pause, and retires the acked batches at the front of the window.
    async fn settle(&mut self) -> Result<(), IngestError> {
        // Replies that arrived during a pause first: the pauses of a refusing stream can add up
        // past the timeout, and judging the timeout before reading them resent batches whose
        // "stored" reply was already here.
        self.take_ready_replies();
        if let Some(oldest) = self
            .queue
            .iter()
            .find(|o| o.state == AckState::Waiting)
            .map(|o| o.sent_at)
        {
            // Checked before waiting: replies to other batches could otherwise keep arriving
            // and hold off the timeout of one whose reply is lost.
            let deadline = oldest + ACK_TIMEOUT;
            let reply = if Instant::now() >= deadline {
                None
            } else {
                let deadline = tokio::time::Instant::from_std(deadline);
                tokio::time::timeout_at(deadline, self.acks.next())
                    .await
                    .ok()
            };
            match reply {
                Some(Some(message)) => {
                    self.on_reply(&message);
                    self.take_ready_replies();
                }
                Some(None) => {
                    return Err(IngestError::Publish(
                        "the ack subscription ended (connection closed)".to_owned(),
                    ))
                }
                None => {
                    // A lost ack usually means the server restarted or the connection
                    // dropped, and then the acks of everything sent after it are lost too:
                    // send the whole window again (the same Msg-Ids: stored once).
                    tracing::info!(
                        batches = self.queue.iter().filter(|o| o.state != AckState::Acked).count(),
                        "no acknowledgement within {ACK_TIMEOUT:?}: publishing the outstanding window again"
                    );
                    self.retries.increment(1);
                    self.resend(|state| state != AckState::Acked).await?;
                }
            }
        }
        // A refused batch may have been stored since, by an older send whose reply came later.
        if self.refused && !self.queue.iter().any(|o| o.state == AckState::Refused) {
            self.refused = false;
        }
        if self.refused {
            let mut backoff = self.backoff;
            self.pause(&mut backoff, &self.refusal).await?;
            self.backoff = backoff;
            // Only the refused: the batches still waiting have a send in flight that will be
            // answered (or time out). Sending those again too multiplied the sends in flight
            // at every refusal while a full stream refused them all.
            self.resend(|state| state == AckState::Refused).await?;
        }
        while self
            .queue
            .front()
            .is_some_and(|o| o.state == AckState::Acked)
        {
            self.queue.pop_front();
            self.first += 1;
        }
        Ok(())
    }

    /// Handles every reply already received, without waiting.
    fn take_ready_replies(&mut self) {
        while let Some(Some(message)) = self.acks.next().now_or_never() {
            self.on_reply(&message);
        }
    }

    fn on_reply(&mut self, message: &async_nats::Message) {
        let Some((number, send)) = message
            .subject
            .as_str()
            .strip_prefix(self.reply_prefix.as_str())
            .and_then(|tail| tail.split_once('.'))
            .and_then(|(number, send)| {
                Some((number.parse::<u64>().ok()?, send.parse::<u32>().ok()?))
            })
        else {
            return;
        };
        let Some(index) = number.checked_sub(self.first) else {
            return; // a late ack of a batch already retired
        };
        let Some(outstanding) = self.queue.get_mut(index as usize) else {
            return;
        };
        match judge(
            outstanding.state,
            outstanding.send,
            send,
            parse_ack(message),
        ) {
            Verdict::Ignore => {}
            Verdict::Stored { duplicate } => {
                outstanding.state = AckState::Acked;
                self.backoff = FIRST_BACKOFF;
                self.latency
                    .record(outstanding.sent_at.elapsed().as_secs_f64());
                self.counts.count(outstanding.batch.kinds, duplicate);
            }
            Verdict::Refused(reason) => {
                // Stream full, no stream yet, or no server to answer: wait, send it again.
                outstanding.state = AckState::Refused;
                self.refused = true;
                self.refusal = reason;
            }
        }
    }

    /// Sends again, as waiting, every batch whose state `should` says so.
    async fn resend(&mut self, should: impl Fn(AckState) -> bool) -> Result<(), IngestError> {
        for index in 0..self.queue.len() {
            let Some(outstanding) = self.queue.get(index).filter(|o| should(o.state)) else {
                continue;
            };
            let send = outstanding.send.wrapping_add(1);
            self.send(self.first + index as u64, send, &outstanding.batch)
                .await?;
            if let Some(outstanding) = self.queue.get_mut(index) {
                outstanding.sent_at = Instant::now();
                outstanding.send = send;
                outstanding.state = AckState::Waiting;
            }
        }
        self.refused = false;
        Ok(())
    }

    async fn pause(&self, backoff: &mut Duration, reason: &str) -> Result<(), IngestError> {
        if self.shutdown.is_triggered() {
            return Err(IngestError::Publish(format!(
                "stopped while retrying: {reason}"
            )));
        }
        self.retries.increment(1);
        tracing::warn!(
            reason,
            retry_in_ms = backoff.as_millis() as u64,
            "publish failed, retrying"
        );
        tokio::select! {
            _ = tokio::time::sleep(*backoff) => {}
            _ = self.shutdown.cancelled() => {}
        }
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

/// What a reply to send `reply_send` of a batch means, given the batch's state and latest
/// send. A stored ack counts whichever send it answers (the batch is in the stream); a
/// refusal counts only when it answers the latest send, since the refusal of an older one
/// says nothing about the newer send still in flight (acked as stored, it would otherwise be
/// sent a third time and come back a duplicate).
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Ignore,
    Stored { duplicate: bool },
    Refused(String),
}

fn judge(state: AckState, latest_send: u32, reply_send: u32, ack: Ack) -> Verdict {
    match (state, ack) {
        (AckState::Acked, _) => Verdict::Ignore,
        (_, Ack::Stored { duplicate }) => Verdict::Stored { duplicate },
        (AckState::Waiting, Ack::Failed(reason)) if reply_send == latest_send => {
            Verdict::Refused(reason)
        }
        (_, Ack::Failed(_)) => Verdict::Ignore,
    }
}

/// Reads one reply: a status without a body (503: no stream is listening on the subject) or
/// JetStream's JSON ack.
fn parse_ack(message: &async_nats::Message) -> Ack {
    if let Some(status) = message.status {
        if message.payload.is_empty() {
            return Ack::Failed(format!("status {status} (no stream answered)"));
        }
    }
    match serde_json::from_slice::<AckReply>(&message.payload) {
        Ok(AckReply {
            error: None,
            duplicate,
        }) => Ack::Stored { duplicate },
        Ok(AckReply {
            error: Some(error), ..
        }) => Ack::Failed(format!("{} (code {})", error.description, error.code)),
        Err(error) => Ack::Failed(format!("unreadable ack: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(payload: &'static [u8]) -> async_nats::Message {
        async_nats::Message {
            subject: "_INBOX.x.1".into(),
            reply: None,
            payload: Bytes::from_static(payload),
            headers: None,
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn acks_are_read_as_stored_duplicate_or_failed() {
        assert!(matches!(
            parse_ack(&reply(br#"{"stream":"T","seq":3}"#)),
            Ack::Stored { duplicate: false }
        ));
        assert!(matches!(
            parse_ack(&reply(br#"{"stream":"T","seq":3,"duplicate":true}"#)),
            Ack::Stored { duplicate: true }
        ));
        match parse_ack(&reply(
            br#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
        )) {
            Ack::Failed(reason) => {
                assert!(reason.contains("maximum messages exceeded"), "{reason}")
            }
            Ack::Stored { .. } => panic!("an error ack counted as stored"),
        }
        assert!(matches!(parse_ack(&reply(b"not json")), Ack::Failed(_)));
    }

    #[test]
    fn a_refusal_counts_only_for_the_latest_send_and_a_stored_ack_for_any() {
        let refused = || Ack::Failed("maximum bytes exceeded".to_owned());
        let stored = || Ack::Stored { duplicate: false };
        // Send 0 refused while send 1 is in flight: send 1 decides.
        assert_eq!(judge(AckState::Waiting, 1, 0, refused()), Verdict::Ignore);
        assert_eq!(
            judge(AckState::Waiting, 1, 1, refused()),
            Verdict::Refused("maximum bytes exceeded".to_owned())
        );
        // Send 0 stored after send 1 was refused (a 429 can overtake a queued send).
        assert_eq!(
            judge(AckState::Refused, 1, 0, stored()),
            Verdict::Stored { duplicate: false }
        );
        assert_eq!(judge(AckState::Refused, 1, 1, refused()), Verdict::Ignore);
        // Once counted, later replies change nothing.
        assert_eq!(
            judge(AckState::Acked, 2, 2, Ack::Stored { duplicate: true }),
            Verdict::Ignore
        );
    }
}
