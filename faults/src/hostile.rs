//! The hostile provider: files written to hurt ingest, dropped into the landing zone as one
//! fault (`provider=hostile/`): NUL bytes and other control characters in every field, card
//! numbers (plain, spaced, dashed; in descriptors, a transaction id, a city, an amount), a
//! gzip bomb (one field of hundreds of MiB in a few hundred kB), a file without the columns,
//! bytes that are no gzip, and names no object path can hold (a newline, invalid UTF-8).
//!
//! What they must come to is known in advance ([`Expected`]) and added to the generator's
//! ground truth, so the run's checks count them like every other row; [`check`] adds that no
//! card number reaches a table, an event or ingest's log, and that ingest's peak memory stayed
//! bounded.

use crate::checks::{Check, StreamContents};
use crate::harness::Harness;
use crate::pipeline::Role;
use anyhow::Context;
use chrono::NaiveDate;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Peak resident memory ingest must stay under, whatever a file holds.
const MAX_INGEST_PEAK_BYTES: u64 = 300 * 1024 * 1024;

/// Card numbers the files carry, as printed and as digits: none may be stored or published.
pub const PANS: &[&str] = &[
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4222222222222",
    "5555555555554444",
    "6011000990139424",
    "6011 0009 9013 9424",
    "4000000000000000006",
];

/// What the hostile files must come to, on top of the generator's files.
#[derive(Debug, Default, Clone, Copy)]
pub struct Expected {
    pub rows: i64,
    pub valid_rows: i64,
    pub rejected: i64,
    pub valid_net_cents: i64,
    /// Files that end `done`, and `failed`.
    pub done_files: usize,
    pub failed_files: usize,
}

/// The staged files and what they must come to.
pub struct Hostile {
    staged: PathBuf,
    pub expected: Expected,
}

const HEADER: &str =
    "txn_id,posted_at,card_id,descriptor,amount,currency,mcc,city,state,postal_code\n";

/// Writes the hostile files into `dir`, dated `day`, with a bomb of `bomb_mib` MiB.
pub fn stage(dir: &Path, day: NaiveDate, bomb_mib: usize) -> anyhow::Result<Hostile> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &[u8], bytes: &[u8]| {
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(name)), bytes)
            .with_context(|| format!("staging {}", String::from_utf8_lossy(name)))
    };
    // Valid after cleaning: 4.50 + 7.00 + 3.25 + 2.00; a NUL in a transaction id is rejected.
    let nul = format!(
        "{HEADER}h-n1,{day} 10:00:00,hc1,STARBUCKS\0 SEATTLE WA,4.50,USD,5814,,WA,\n\
         h-n2,{day} 10:01:00,hc2,ZQXV\0CORNER\u{7f}SHOP\u{9b},7.00,USD,,,CA,\n\
         h-n\03,{day} 10:02:00,hc3,STARBUCKS,1.00,USD,5814,,CA,\n\
         h-n4,{day} 10:03:00\0,hc4,TARGET 00012345,3.25,USD,5310,,MN,\n\
         h-n5,{day} 10:04:00,hc5\u{1},TARGET 00012345,2.00,USD,5310,SEA\0TTLE,WA,9\u{1}8101\n"
    );
    write(b"nul.csv", nul.as_bytes())?;
    // Valid: 9.99 + 4.50 + 20.00 + 3.00; two rejected (a card number in the city, one as
    // the amount).
    let pans = format!(
        "{HEADER}h-p1,{day} 10:00:00,hc6,ZQXV PAYMENT 4111 1111 1111 1111,9.99,USD,,,CA,\n\
         h-p2,{day} 10:01:00,hc7,STARBUCKS 4111-1111-1111-1111 SEATTLE WA,4.50,USD,5814,,WA,\n\
         4222222222222,{day} 10:02:00,hc8,TARGET 00012345,20.00,USD,5310,,MN,\n\
         h-p4,{day} 10:03:00,hc9,ACME WIDGETS 5555555555554444,3.00,USD,,,CA,\n\
         h-p5,{day} 10:04:00,hc10,STARBUCKS,bad,USD,5814,6011 0009 9013 9424,CA,\n\
         h-p6,{day} 10:05:00,hc11,STARBUCKS,4000000000000000006,USD,5814,,CA,\n"
    );
    write(b"pans.csv", pans.as_bytes())?;
    write(b"bomb.csv.gz", &bomb(day, bomb_mib)?)?;
    // Failed files: no columns; bytes that are no gzip.
    write(b"noheader.csv", b"foo,bar\n1,2\n")?;
    write(b"garbage.csv.gz", &[0x5a; 4096])?;
    // Names no object path can hold: never listed, so never counted.
    write(b"bad\nname.csv", pans.as_bytes())?;
    write(b"\xff\xfe.csv", pans.as_bytes())?;
    Ok(Hostile {
        staged: dir.to_path_buf(),
        expected: Expected {
            rows: 5 + 6 + 5,
            valid_rows: 4 + 4 + 4,
            rejected: 1 + 2 + 1,
            valid_net_cents: 1675 + 3749 + 2600,
            done_files: 3,
            failed_files: 2,
        },
    })
}

/// Two rows, one row whose descriptor is `mib` MiB of `A`, two rows; gzip members one after
/// the other (a gzip reader reads them as one stream), the megabyte member compressed once
/// and repeated, so writing 400 MiB costs nothing.
fn bomb(day: NaiveDate, mib: usize) -> anyhow::Result<Vec<u8>> {
    let member = |bytes: &[u8]| -> anyhow::Result<Vec<u8>> {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(bytes)?;
        Ok(gzip.finish()?)
    };
    let mut out = member(
        format!(
            "{HEADER}h-b1,{day} 10:00:00,hc12,TARGET 00012345,5.00,USD,5310,,MN,\n\
             h-b2,{day} 10:01:00,hc13,TARGET 00012345,6.00,USD,5310,,MN,\n\
             h-bomb,{day} 10:02:00,hc14,"
        )
        .as_bytes(),
    )?;
    let megabyte = member(&vec![b'A'; 1 << 20])?;
    for _ in 0..mib {
        out.extend_from_slice(&megabyte);
    }
    out.extend(member(
        format!(
            ",1.00,USD,5814,,CA,\n\
             h-b3,{day} 10:03:00,hc15,TARGET 00012345,7.00,USD,5310,,MN,\n\
             h-b4,{day} 10:04:00,hc16,TARGET 00012345,8.00,USD,5310,,MN,\n"
        )
        .as_bytes(),
    )?);
    Ok(out)
}

impl Hostile {
    /// Moves every staged file into `landing/provider=hostile/`.
    pub fn drop_into(&self, landing: &Path) -> anyhow::Result<usize> {
        let target = landing.join("provider=hostile");
        std::fs::create_dir_all(&target)?;
        let mut moved = 0;
        for entry in std::fs::read_dir(&self.staged)? {
            let entry = entry?;
            std::fs::rename(entry.path(), target.join(entry.file_name()))?;
            moved += 1;
        }
        Ok(moved)
    }
}

/// No card number in any table, any event or Msg-Id, or ingest's log; ingest's peak memory
/// under [`MAX_INGEST_PEAK_BYTES`].
pub async fn check(harness: &Harness, stream: &StreamContents) -> anyhow::Result<Vec<Check>> {
    let db = harness.db().await?;
    let tables = db
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind = 'r'",
            &[],
        )
        .await?;
    let mut found = Vec::new();
    for table in &tables {
        let name: String = table.get(0);
        let hits: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM \"{name}\" t WHERE t::text LIKE ANY($1)"),
                &[&PANS.iter().map(|p| format!("%{p}%")).collect::<Vec<_>>()],
            )
            .await
            .with_context(|| format!("searching {name}"))?
            .get(0);
        if hits > 0 {
            found.push(format!("{name}: {hits} rows"));
        }
    }
    let in_stream = stream
        .txn_ids
        .iter()
        .filter(|id| PANS.iter().any(|pan| id.contains(pan)))
        .count();
    let log = std::fs::read(harness.pipeline.log(Role::Ingest)).unwrap_or_default();
    let in_log = PANS
        .iter()
        .filter(|pan| log.windows(pan.len()).any(|w| w == pan.as_bytes()))
        .count();
    let mut checks = vec![Check::new(
        "no card number in any table, event or log",
        found.is_empty() && in_stream == 0 && in_log == 0,
        format!(
            "{} tables searched for {} card numbers: found in [{}]; transaction ids in the stream holding one: {in_stream}; in ingest's log: {in_log}",
            tables.len(),
            PANS.len(),
            found.join(", ")
        ),
    )];
    let peak = harness
        .pipeline
        .pid(Role::Ingest)
        .and_then(peak_resident_bytes);
    checks.push(Check::new(
        "ingest's peak memory stays bounded (a gzip bomb included)",
        peak.is_some_and(|p| p < MAX_INGEST_PEAK_BYTES),
        format!(
            "ingest's peak resident set (VmHWM, since its last start) {} MiB; limit {} MiB",
            peak.map_or("unknown".to_owned(), |p| (p >> 20).to_string()),
            MAX_INGEST_PEAK_BYTES >> 20
        ),
    ));
    Ok(checks)
}

/// `VmHWM` of a process: its peak resident set, in bytes.
fn peak_resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
