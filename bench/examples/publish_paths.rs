//! Client and server CPU per message of two ways to publish to JetStream with a window of
//! 4,096 outstanding acks: async-nats' `send_publish` (a future per message) and what ingest
//! does (`services/ingest/src/publish.rs`: core publish with a reply subject, every ack on one
//! wildcard subscription). Each runs twice, alternating, on a stream of its own.
//!
//! `NATS_URL=... NATS_PID=$(pgrep -f 'nats-server.*14222') N=1000000 \
//!  cargo run --release -p altdata-bench --example publish_paths`

use anyhow::{anyhow, Context};
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: usize = 4_096;

/// User + system CPU seconds of a process (`self` for this one).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces: utime and stime are 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main(worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("NATS_URL").context("NATS_URL")?;
    let nats_pid = std::env::var("NATS_PID").context("NATS_PID (nats-server's pid)")?;
    let messages: u64 = std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let client = async_nats::connect(&url).await?;
    let js = jetstream::context::ContextBuilder::new()
        .max_ack_inflight(1 << 22)
        .build(client.clone());
    let payload = Bytes::from(vec![7u8; 62]);
    for way in [
        "send_publish",
        "one ack subscription",
        "send_publish",
        "one ack subscription",
    ] {
        let tag = format!("publishpaths{}", rand::random::<u32>());
        js.create_stream(stream::Config {
            name: tag.to_uppercase(),
            subjects: vec![format!("{tag}.>")],
            max_bytes: 1 << 30,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
        let subjects: Vec<async_nats::Subject> =
            (0..16).map(|s| format!("{tag}.{s}").into()).collect();
        let (client_before, server_before) = (cpu_seconds("self"), cpu_seconds(&nats_pid));
        let started = Instant::now();
        if way == "send_publish" {
            let mut window = VecDeque::with_capacity(WINDOW);
            for i in 0..messages {
                if window.len() >= WINDOW {
                    let ack: jetstream::context::PublishAckFuture =
                        window.pop_front().ok_or_else(|| anyhow!("empty window"))?;
                    ack.await?;
                }
                let message = jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(format!("provider:{i}"));
                window.push_back(
                    js.send_publish(subjects[(i % 16) as usize].clone(), message)
                        .await?,
                );
            }
            while let Some(ack) = window.pop_front() {
                ack.await?;
            }
        } else {
            let inbox = client.new_inbox();
            let mut acks = client.subscribe(format!("{inbox}.*")).await?;
            let mut outstanding = 0usize;
            for i in 0..messages {
                if outstanding >= WINDOW {
                    acks.next().await.ok_or_else(|| anyhow!("acks ended"))?;
                    outstanding -= 1;
                }
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", format!("provider:{i}").as_str());
                client
                    .publish_with_reply_and_headers(
                        subjects[(i % 16) as usize].clone(),
                        format!("{inbox}.{i}"),
                        headers,
                        payload.clone(),
                    )
                    .await?;
                outstanding += 1;
            }
            for _ in 0..outstanding {
                acks.next().await.ok_or_else(|| anyhow!("acks ended"))?;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{way:>20}: {:>7.0} msg/s, client {:.2} CPU s, nats-server {:.2} CPU s",
            messages as f64 / seconds,
            cpu_seconds("self") - client_before,
            cpu_seconds(&nats_pid) - server_before
        );
        js.delete_stream(tag.to_uppercase()).await?;
    }
    Ok(())
}
