//! Publishing events to JetStream with a bounded window of outstanding acknowledgements.
//! A failed publish (including "stream full") is retried with backoff, with the same
//! `Nats-Msg-Id`, so the stream's de-duplication makes retries harmless: wait, never drop.

use crate::error::IngestError;
use crate::reader::MsgId;
use altdata_common::Shutdown;
use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::Subject;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

struct Outstanding {
    shard: u32,
    msg_id: MsgId,
    payload: Bytes,
    sent_at: Instant,
    ack: PublishAckFuture,
}

/// Per-file publish counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublishCounts {
    pub published: u64,
    /// Acknowledged as duplicates by the stream (same `Nats-Msg-Id` within its window).
    pub duplicates: u64,
}

pub struct Publisher {
    jetstream: jetstream::Context,
    shard_subjects: Vec<Subject>,
    window: usize,
    queue: VecDeque<Outstanding>,
    pub counts: PublishCounts,
    shutdown: Shutdown,
    latency: metrics::Histogram,
    retries: metrics::Counter,
}

impl Publisher {
    pub fn new(
        jetstream: jetstream::Context,
        shard_subjects: Vec<Subject>,
        window: usize,
        shutdown: Shutdown,
    ) -> Publisher {
        Publisher {
            jetstream,
            shard_subjects,
            window: window.max(1),
            queue: VecDeque::with_capacity(window),
            counts: PublishCounts::default(),
            shutdown,
            latency: metrics::histogram!("altdata_ingest_publish_seconds"),
            retries: metrics::counter!("altdata_ingest_publish_retries_total"),
        }
    }

    /// Sends one event; waits for the oldest acknowledgement when the window is full.
    pub async fn publish(
        &mut self,
        shard: u32,
        msg_id: MsgId,
        payload: Bytes,
    ) -> Result<(), IngestError> {
        while self.queue.len() >= self.window {
            self.settle_oldest().await?;
        }
        let ack = self.send(shard, msg_id.as_str(), payload.clone()).await?;
        self.queue.push_back(Outstanding {
            shard,
            msg_id,
            payload,
            sent_at: Instant::now(),
            ack,
        });
        Ok(())
    }

    /// Waits for every outstanding acknowledgement (before a checkpoint).
    pub async fn drain(&mut self) -> Result<(), IngestError> {
        while !self.queue.is_empty() {
            self.settle_oldest().await?;
        }
        Ok(())
    }

    async fn send(
        &self,
        shard: u32,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<PublishAckFuture, IngestError> {
        let subject = self.shard_subjects[shard as usize].clone();
        let mut backoff = Duration::from_millis(50);
        loop {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .message_id(msg_id);
            match self.jetstream.send_publish(subject.clone(), message).await {
                Ok(ack) => return Ok(ack),
                Err(error) => self.pause(&mut backoff, &error.to_string()).await?,
            }
        }
    }

    async fn settle_oldest(&mut self) -> Result<(), IngestError> {
        let Some(mut outstanding) = self.queue.pop_front() else {
            return Ok(());
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            match outstanding.ack.await {
                Ok(ack) => {
                    self.latency
                        .record(outstanding.sent_at.elapsed().as_secs_f64());
                    if ack.duplicate {
                        self.counts.duplicates += 1;
                    } else {
                        self.counts.published += 1;
                    }
                    return Ok(());
                }
                Err(error) => {
                    // Stream full, timeout, or a server restart: publish again, same Msg-Id.
                    self.pause(&mut backoff, &error.to_string()).await?;
                    outstanding.ack = self
                        .send(
                            outstanding.shard,
                            outstanding.msg_id.as_str(),
                            outstanding.payload.clone(),
                        )
                        .await?;
                    outstanding.sent_at = Instant::now();
                    // A lost acknowledgement usually means the server restarted or the
                    // connection dropped, and then the acks of everything sent after it are
                    // lost too; awaiting them one by one would cost a full ack timeout each
                    // (hours for a window of 4,096). Send the whole window again instead: the
                    // same Msg-Ids, so the stream stores each event once.
                    self.resend_window().await?;
                }
            }
        }
    }

    async fn resend_window(&mut self) -> Result<(), IngestError> {
        let mut window = std::mem::take(&mut self.queue);
        tracing::info!(
            events = window.len(),
            "publishing the outstanding window again after a failed acknowledgement"
        );
        for outstanding in window.iter_mut() {
            outstanding.ack = self
                .send(
                    outstanding.shard,
                    outstanding.msg_id.as_str(),
                    outstanding.payload.clone(),
                )
                .await?;
            outstanding.sent_at = Instant::now();
        }
        self.queue = window;
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
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
        Ok(())
    }
}
