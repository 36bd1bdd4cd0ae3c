//! The wire contracts work across implementations: a round trip in Rust, bytes made by
//! Python's `protobuf` decoded here, and bytes made here decoded by Python. Python runs from
//! the project venv that `make stack` prepares (`.stack/venv`).

use altdata_proto::v1::{AggregateUpdate, ResolutionSource, TransactionBatch, TransactionEvent};
use altdata_proto::Message;
use std::io::Write;
use std::process::{Command, Stdio};

fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.stack/venv/bin/python");
    assert!(
        std::path::Path::new(venv).exists(),
        "{venv} is missing: run `make stack` (it installs protobuf and nats-py there)"
    );
    venv.to_owned()
}

fn descriptor_set() -> tempfile_path::TempPath {
    let root = concat!(env!("CARGO_MANIFEST_DIR"));
    let set =
        protox::compile(["altdata/v1/events.proto"], [root]).unwrap_or_else(|e| panic!("{e}"));
    let path = tempfile_path::TempPath::new("altdata-descriptors.pb");
    std::fs::write(&path.0, set.encode_to_vec()).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// A file removed when dropped.
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl TempPath {
        pub fn new(name: &str) -> TempPath {
            let unique = format!(
                "{}-{}-{name}",
                std::process::id(),
                std::thread::current()
                    .name()
                    .unwrap_or("t")
                    .replace("::", "_")
            );
            TempPath(std::env::temp_dir().join(unique))
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn a_transaction_event_round_trips() {
    let event = TransactionEvent {
        schema_version: 1,
        provider: "p".into(),
        txn_id: "t".into(),
        metric_date: 20_123,
        amount_cents: -99,
        customer_key: u64::MAX,
        merchant_id: 42,
        region: "NY".into(),
        mcc: "5411".into(),
        resolution: ResolutionSource::Rule as i32,
        confidence: 0.5,
        retraction: true,
    };
    let decoded = TransactionEvent::decode(event.encode_to_vec().as_slice())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(decoded, event);
}

#[test]
fn bytes_from_python_protobuf_decode_here() {
    let descriptors = descriptor_set();
    let output = Command::new(python())
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_peer.py"),
            "encode",
        ])
        .arg(&descriptors.0)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = hex_decode(&String::from_utf8_lossy(&output.stdout));
    let batch = TransactionBatch::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((batch.schema_version, batch.events.len()), (1, 1));
    let event = &batch.events[0];
    assert_eq!(event.provider, "pyprov");
    assert_eq!(event.txn_id, "py-42");
    assert_eq!(event.amount_cents, -1234);
    assert_eq!(event.customer_key, (1u64 << 63) + 5);
    assert_eq!(event.merchant_id, 987_654_321);
    assert_eq!(event.resolution, ResolutionSource::Fuzzy as i32);
    assert!((event.confidence - 0.75).abs() < 1e-6);
}

#[test]
fn bytes_from_here_decode_in_python() {
    let descriptors = descriptor_set();
    let update = AggregateUpdate {
        schema_version: 1,
        merchant_id: 7,
        region: "CA".into(),
        metric_date: 20_001,
        total_spend_cents: 123_456,
        transaction_count: 10,
        refund_cents: 500,
        refund_count: 1,
        customers: 9,
        committed_at_ms: 1_790_000_000_000,
        category: "coffee_shop".into(),
        ..Default::default()
    };
    let mut child = Command::new(python())
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_peer.py"),
            "decode",
        ])
        .arg(&descriptors.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let hex: String = update
        .encode_to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(hex.as_bytes()))
        .transpose()
        .unwrap_or_else(|e| panic!("{e}"));
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = String::from_utf8_lossy(&output.stdout);
    // Protobuf's JSON mapping writes 64-bit integers as strings.
    assert!(json.contains("\"total_spend_cents\": \"123456\""), "{json}");
    assert!(json.contains("\"category\": \"coffee_shop\""), "{json}");
}

fn hex_decode(text: &str) -> Vec<u8> {
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}
