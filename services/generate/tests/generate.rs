//! End-to-end checks of `altdata generate`: determinism, truth equal to a re-parse of the
//! files, plausible noise frequencies, and every kind of broken row.

use altdata_common::Shutdown;
use altdata_domain::catalogue::Catalogue;
use altdata_domain::{parse_dollars_to_cents, Region};
use altdata_generate::{run, GenerateConfig, GenerateReport, Summary};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

const SMALL_CATALOGUE: &str = "id,name,category,brand_id,ticker_symbol,match_names,mcc
1,Starbucks,coffee_shop,starbucks,SBUX,sbux|starbucks card,5814
2,Dunkin',coffee_shop,dunkin,,dunkin donuts,5814
3,Peet's Coffee,coffee_shop,peets_coffee,,peets,5814
4,McDonald's,fast_food,mcdonalds,MCD,mcd|mcdonalds,5814
5,Taco Bell,fast_food,taco_bell,YUM,tacobell.com,5814
6,Chipotle,fast_food,chipotle,CMG,chipotle mexican grill,5814
7,Olive Garden,restaurant,olive_garden,DRI,,5812
8,DoorDash,restaurant,doordash,DASH,dd *doordash|doordash*,5812
9,Kroger,grocery,kroger,KR,krogers,5411
10,Trader Joe's,grocery,trader_joes,,trader joes,5411
11,Shell,gas_station,shell,SHEL,shell oil,5541
12,Chevron,gas_station,chevron,CVX,,5541
13,Uber,rideshare,uber,UBER,uber *trip|uber trip,4121
14,Lyft,rideshare,lyft,LYFT,lyft *ride,4121
15,Netflix,streaming,netflix,NFLX,netflix.com,4899
16,Spotify,streaming,spotify,SPOT,spotify usa,5815
17,Amazon,ecommerce,amazon,AMZN,amzn mktp us|amazon.com,5942
18,Etsy,ecommerce,etsy,ETSY,etsy.com,5999
19,CVS Pharmacy,pharmacy,cvs_pharmacy,CVS,cvs,5912
20,Walmart,general_merchandise,walmart,WMT,wal-mart|wm supercenter,5311
21,Target,general_merchandise,target,TGT,target.com,5311
22,Delta Air Lines,airline,delta_air_lines,DAL,delta air,4511
23,Marriott,hotel,marriott,MAR,marriott.com,7011
24,PG&E,utility,pg_e,PCG,pge,4900
25,Verizon,telecom,verizon,VZ,verizon wireless|vzwrlss,4814
26,Apple,software,apple,AAPL,apple.com/bill|apl*itunes,5818
27,Google,software,google,GOOGL,google *,5818
28,Old Navy,apparel,old_navy,GPS,,5651
29,The Home Depot,home_improvement,home_depot,HD,home depot,5200
30,AMC Theatres,entertainment,amc_theatres,AMC,amc,7832
31,MTA,transit,mta,,mta*nyct,4111
32,Great Clips,other,great_clips,,,7230
";

fn small_catalogue() -> Catalogue {
    Catalogue::parse(SMALL_CATALOGUE).unwrap_or_else(|e| panic!("test catalogue: {e}"))
}

/// A scratch directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "altdata-generate-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(out: &Path, days: u32, cards: u64) -> GenerateConfig {
    GenerateConfig {
        days,
        cards,
        seed: 7,
        start: NaiveDate::from_ymd_opt(2025, 11, 24).unwrap_or_default(),
        out: out.to_string_lossy().into_owned(),
        gzip: false,
        provider: "acme".to_owned(),
        progress: false,
        truth_detail: true,
        resends: 0,
        panel_growth: 0.0,
        panel_growth_day: None,
    }
}

async fn generate(config: &GenerateConfig, catalogue: &Catalogue) -> GenerateReport {
    match run(config, catalogue, &Shutdown::new()).await {
        Ok(report) => report,
        Err(error) => panic!("generate failed: {error}"),
    }
}

fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
                files.insert(relative, bytes);
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_config_gives_byte_identical_files() {
    let catalogue = small_catalogue();
    let (a, b) = (TempDir::new("det-a"), TempDir::new("det-b"));
    for gzip in [false, true] {
        let mut first = config(a.path(), 4, 600);
        first.gzip = gzip;
        let mut second = config(b.path(), 4, 600);
        second.gzip = gzip;
        generate(&first, &catalogue).await;
        generate(&second, &catalogue).await;
    }
    let left = files_under(a.path());
    let right = files_under(b.path());
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        right.keys().collect::<Vec<_>>()
    );
    assert!(left.contains_key("provider=acme/2025-11-24.csv"));
    assert!(left.contains_key("provider=acme/2025-11-24.csv.gz"));
    assert!(left.contains_key("_truth/ground_truth.csv"));
    assert!(left.contains_key("_truth/summary.json"));
    assert!(left.contains_key("_truth/transactions.csv"));
    for (name, bytes) in &left {
        assert!(
            right.get(name) == Some(bytes),
            "{name} differs between runs"
        );
    }

    let other_seed = TempDir::new("det-c");
    let mut different = config(other_seed.path(), 4, 600);
    different.seed = 8;
    generate(&different, &catalogue).await;
    let other = files_under(other_seed.path());
    assert_ne!(
        other.get("provider=acme/2025-11-24.csv"),
        left.get("provider=acme/2025-11-24.csv")
    );
}

/// One parsed row of a provider file.
struct Row {
    fields: Vec<String>,
    line: String,
    file: String,
}

fn read_rows(root: &Path, provider: &str) -> Vec<Row> {
    let dir = root.join(format!("provider={provider}"));
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir:?}: {e}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut rows = Vec::new();
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = reader.headers().cloned().unwrap_or_default();
        assert_eq!(
            header.iter().collect::<Vec<_>>(),
            [
                "txn_id",
                "posted_at",
                "card_id",
                "descriptor",
                "amount",
                "currency",
                "mcc",
                "city",
                "state",
                "postal_code"
            ]
        );
        for record in reader.records() {
            let record = record.unwrap_or_else(|e| panic!("csv in {path:?}: {e}"));
            let start = record
                .position()
                .map(|p| p.byte() as usize)
                .unwrap_or_default();
            let line = text[start..].lines().next().unwrap_or_default().to_owned();
            rows.push(Row {
                fields: record.iter().map(str::to_owned).collect(),
                line,
                file: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            });
        }
    }
    rows
}

/// Why a row is invalid, judged the way ingest is expected to judge it.
fn invalid_reason(fields: &[String]) -> Option<&'static str> {
    if fields.len() != 10 {
        return Some("column_count");
    }
    if fields[0].is_empty() {
        return Some("empty_txn_id");
    }
    if parse_posted_date(&fields[1]).is_none() {
        return Some("bad_date");
    }
    if parse_dollars_to_cents(&fields[4]).is_err() {
        return Some("bad_amount");
    }
    if fields[5] != "USD" {
        return Some("currency");
    }
    if !fields[8].is_empty() && Region::parse(&fields[8]).is_none() {
        return Some("unknown_state");
    }
    if fields[3].len() > 256 {
        return Some("descriptor_too_long");
    }
    None
}

fn parse_posted_date(text: &str) -> Option<NaiveDate> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(at.date_naive());
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|at| at.date())
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Totals {
    gross: i64,
    refund: i64,
    sales: u64,
    refunds: u64,
    cards: HashSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truth_equals_a_reparse_of_the_valid_rows() {
    let catalogue = small_catalogue();
    let dir = TempDir::new("truth");
    let config = config(dir.path(), 6, 2_500);
    let report = generate(&config, &catalogue).await;
    let rows = read_rows(dir.path(), "acme");
    assert_eq!(rows.len() as u64, report.rows);

    // txn_id -> brand_id (empty for local merchants), for every valid unique row.
    let detail_text =
        std::fs::read_to_string(dir.path().join("_truth/transactions.csv")).unwrap_or_default();
    let mut detail: HashMap<String, String> = HashMap::new();
    for line in detail_text.lines().skip(1) {
        let parts: Vec<&str> = line.split(',').collect();
        assert_eq!(parts.len(), 4, "{line}");
        assert!(
            altdata_domain::Category::parse(parts[3]).is_some(),
            "{line}: the sale's category"
        );
        assert_eq!(parts[0], "acme");
        assert!(
            detail
                .insert(parts[1].to_owned(), parts[2].to_owned())
                .is_none(),
            "txn {} twice",
            parts[1]
        );
    }

    let mut seen: HashMap<String, (String, String)> = HashMap::new();
    let mut broken: BTreeMap<&str, u64> = BTreeMap::new();
    let mut duplicates = 0u64;
    let mut cross_file_duplicates = 0u64;
    let mut local = 0u64;
    let mut local_net = 0i64;
    let mut valid_net = 0i64;
    let mut truth: BTreeMap<(String, String, String), Totals> = BTreeMap::new();
    for row in &rows {
        if let Some(reason) = invalid_reason(&row.fields) {
            *broken.entry(reason).or_default() += 1;
            continue;
        }
        let txn_id = &row.fields[0];
        if let Some((line, file)) = seen.get(txn_id) {
            assert_eq!(
                line, &row.line,
                "a repeated txn_id must repeat the whole row"
            );
            duplicates += 1;
            if file != &row.file {
                cross_file_duplicates += 1;
            }
            continue;
        }
        seen.insert(txn_id.clone(), (row.line.clone(), row.file.clone()));
        let cents = parse_dollars_to_cents(&row.fields[4]).unwrap_or_default();
        valid_net += cents;
        let brand = detail
            .get(txn_id)
            .unwrap_or_else(|| panic!("{txn_id} missing from transactions.csv"));
        if brand.is_empty() {
            local += 1;
            local_net += cents;
            continue;
        }
        let state = if row.fields[8].is_empty() {
            "XX".to_owned()
        } else {
            row.fields[8].clone()
        };
        let date = parse_posted_date(&row.fields[1])
            .map(|d| d.to_string())
            .unwrap_or_default();
        let totals = truth.entry((brand.clone(), state, date)).or_default();
        if cents >= 0 {
            totals.gross += cents;
            totals.sales += 1;
        } else {
            totals.refund -= cents;
            totals.refunds += 1;
        }
        totals.cards.insert(row.fields[2].clone());
    }
    assert_eq!(
        seen.len(),
        detail.len(),
        "transactions.csv lists exactly the valid unique rows"
    );
    assert!(
        cross_file_duplicates >= 2,
        "one day repeats rows of the previous day's file"
    );

    let summary_text =
        std::fs::read_to_string(dir.path().join("_truth/summary.json")).unwrap_or_default();
    let summary: Summary =
        serde_json::from_str(&summary_text).unwrap_or_else(|e| panic!("summary: {e}"));
    assert_eq!(summary.valid_rows, seen.len() as u64);
    assert_eq!(summary.duplicate_rows, duplicates);
    assert_eq!(summary.broken_rows, broken.values().sum::<u64>());
    for (reason, count) in &broken {
        assert_eq!(
            summary.broken_by_reason.get(*reason),
            Some(count),
            "{reason}"
        );
    }
    assert_eq!(summary.local_rows, local);
    assert_eq!(summary.local_net_cents, local_net);
    assert_eq!(summary.valid_net_cents, valid_net);
    assert_eq!(summary.rows, report.rows);
    assert_eq!(summary.files.len(), 6);
    assert_eq!(report.valid_rows, summary.valid_rows);

    let truth_text =
        std::fs::read_to_string(dir.path().join("_truth/ground_truth.csv")).unwrap_or_default();
    let mut lines = truth_text.lines();
    assert_eq!(
        lines.next(),
        Some("brand_id,merchant_id,state,date,gross_cents,refund_cents,sale_count,refund_count,distinct_cards")
    );
    let ids: HashMap<&str, i64> = catalogue
        .merchants
        .iter()
        .map(|m| (m.brand_id.as_str(), m.id))
        .collect();
    let mut written = 0;
    for line in lines {
        let parts: Vec<&str> = line.split(',').collect();
        assert_eq!(parts.len(), 9, "{line}");
        assert_eq!(
            ids.get(parts[0]).map(|id| id.to_string()).as_deref(),
            Some(parts[1]),
            "{line}"
        );
        let key = (
            parts[0].to_owned(),
            parts[2].to_owned(),
            parts[3].to_owned(),
        );
        let expected = truth
            .get(&key)
            .unwrap_or_else(|| panic!("truth row {line} not in the files"));
        let number = |i: usize| parts[i].parse::<i64>().unwrap_or(-1);
        assert_eq!(number(4), expected.gross, "{line}");
        assert_eq!(number(5), expected.refund, "{line}");
        assert_eq!(number(6), expected.sales as i64, "{line}");
        assert_eq!(number(7), expected.refunds as i64, "{line}");
        assert_eq!(number(8), expected.cards.len() as i64, "{line}");
        written += 1;
    }
    assert_eq!(
        written,
        truth.len(),
        "every (brand, region, date) of the files is in the truth"
    );
    let brand_net: i64 = truth.values().map(|t| t.gross - t.refund).sum();
    assert_eq!(brand_net, summary.brand_net_cents);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broken_reason_appears_and_is_counted() {
    let catalogue = small_catalogue();
    let dir = TempDir::new("broken");
    let mut config = config(dir.path(), 3, 6_000);
    config.truth_detail = false;
    let report = generate(&config, &catalogue).await;
    let summary_text =
        std::fs::read_to_string(dir.path().join("_truth/summary.json")).unwrap_or_default();
    let summary: Summary =
        serde_json::from_str(&summary_text).unwrap_or_else(|e| panic!("summary: {e}"));
    for reason in [
        "column_count",
        "bad_amount",
        "bad_date",
        "currency",
        "empty_txn_id",
        "unknown_state",
        "descriptor_too_long",
    ] {
        assert!(
            summary.broken_by_reason.get(reason).copied().unwrap_or(0) >= 1,
            "no {reason} rows"
        );
    }
    let share = report.broken_rows as f64 / report.rows as f64;
    assert!((0.0004..0.003).contains(&share), "broken share {share}");
    let rows = read_rows(dir.path(), "acme");
    let judged = rows
        .iter()
        .filter(|r| invalid_reason(&r.fields).is_some())
        .count() as u64;
    assert_eq!(judged, report.broken_rows);
    assert!(rows.iter().any(|r| r.fields.len() == 9) && rows.iter().any(|r| r.fields.len() == 11));
    assert!(rows
        .iter()
        .any(|r| r.fields.get(4).is_some_and(|a| a.contains(','))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_frequencies_are_plausible_on_the_embedded_catalogue() {
    let catalogue = Catalogue::embedded().unwrap_or_else(|e| panic!("embedded catalogue: {e}"));
    if catalogue.merchants.len() < 100 {
        eprintln!("embedded catalogue is a placeholder; skipping frequency checks");
        return;
    }
    let dir = TempDir::new("noise");
    let config = config(dir.path(), 7, 5_000);
    let report = generate(&config, &catalogue).await;
    eprintln!(
        "embedded catalogue: {} rows in {:?} ({:.0} rows/s in a debug build)",
        report.rows,
        report.elapsed,
        report.rows_per_second()
    );
    let rows = read_rows(dir.path(), "acme");
    let detail_text =
        std::fs::read_to_string(dir.path().join("_truth/transactions.csv")).unwrap_or_default();
    let detail: HashMap<&str, &str> = detail_text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut parts = l.split(',');
            Some((parts.nth(1)?, parts.next()?))
        })
        .collect();
    let names: HashMap<&str, &str> = catalogue
        .merchants
        .iter()
        .map(|m| (m.brand_id.as_str(), m.name.as_str()))
        .collect();

    let valid: Vec<&Row> = rows
        .iter()
        .filter(|r| invalid_reason(&r.fields).is_none())
        .collect();
    let n = valid.len() as f64;
    let share =
        |predicate: &dyn Fn(&Row) -> bool| valid.iter().filter(|r| predicate(r)).count() as f64 / n;
    let descriptor = |r: &Row| r.fields[3].clone();
    let upper = share(&|r| !descriptor(r).chars().any(|c| c.is_ascii_lowercase()));
    let lower = share(&|r| !descriptor(r).chars().any(|c| c.is_ascii_uppercase()));
    let wrapped = share(&|r| {
        let d = descriptor(r).to_ascii_uppercase();
        [
            "SQ *", "TST*", "PAYPAL *", "PP*", "PWP ", "IN *", "SP ", "FSP*", "TCKTWEB*",
        ]
        .iter()
        .any(|p| d.contains(p))
    });
    let star = share(&|r| descriptor(r).contains('*'));
    let hash_number = share(&|r| descriptor(r).contains('#'));
    let doubled = share(&|r| descriptor(r).contains("  "));
    let length_22 = share(&|r| descriptor(r).len() == 22);
    let refunds = share(&|r| r.fields[4].starts_with('-'));
    let plain_time = share(&|r| r.fields[1].len() == 19);
    let late = share(&|r| !r.file.starts_with(&r.fields[1][..10]));
    let empty_mcc = share(&|r| r.fields[6].is_empty());
    let empty_state = share(&|r| r.fields[8].is_empty());
    let local = share(&|r| {
        detail
            .get(r.fields[0].as_str())
            .is_some_and(|b| b.is_empty())
    });
    let recognisable = {
        let brand_rows: Vec<(&Row, &str)> = valid
            .iter()
            .filter_map(|r| {
                let brand = detail.get(r.fields[0].as_str()).filter(|b| !b.is_empty())?;
                Some((*r, *names.get(brand)?))
            })
            .collect();
        let hits = brand_rows
            .iter()
            .filter(|(r, name)| {
                let d: String = r.fields[3]
                    .to_ascii_uppercase()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect();
                let first: String = name
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(6)
                    .collect();
                !first.is_empty() && d.contains(&first)
            })
            .count();
        hits as f64 / brand_rows.len() as f64
    };
    let lengths: Vec<usize> = valid.iter().map(|r| r.fields[3].len()).collect();
    let mut sorted = lengths.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    eprintln!(
        "rows {} upper {upper:.3} lower {lower:.3} wrapped {wrapped:.3} star {star:.3} hash {hash_number:.3} \
         doubled {doubled:.3} len22 {length_22:.3} refunds {refunds:.3} plain_time {plain_time:.3} late {late:.3} \
         empty_mcc {empty_mcc:.3} empty_state {empty_state:.3} local {local:.3} recognisable {recognisable:.3} median_len {median}",
        valid.len()
    );
    for row in valid.iter().step_by(valid.len() / 40) {
        eprintln!("  {}", row.fields[3]);
    }
    assert!((0.40..0.60).contains(&upper), "upper {upper}");
    assert!((0.04..0.13).contains(&lower), "lower {lower}");
    assert!((0.05..0.25).contains(&wrapped), "wrapped {wrapped}");
    assert!((0.08..0.35).contains(&star), "star {star}");
    assert!((0.08..0.45).contains(&hash_number), "hash {hash_number}");
    assert!((0.01..0.10).contains(&doubled), "doubled {doubled}");
    assert!((0.04..0.25).contains(&length_22), "length 22 {length_22}");
    assert!((0.01..0.035).contains(&refunds), "refunds {refunds}");
    assert!(
        (0.05..0.25).contains(&plain_time),
        "plain time {plain_time}"
    );
    assert!((0.004..0.03).contains(&late), "late {late}");
    assert!((0.02..0.12).contains(&empty_mcc), "empty mcc {empty_mcc}");
    assert!(
        (0.01..0.2).contains(&empty_state),
        "empty state {empty_state}"
    );
    assert!((0.05..0.11).contains(&local), "local {local}");
    assert!(recognisable > 0.8, "recognisable {recognisable}");
    assert!((15..60).contains(&median), "median length {median}");
    let duplicate_share = report.duplicate_rows as f64 / report.rows as f64;
    assert!(
        (0.002..0.01).contains(&duplicate_share),
        "duplicates {duplicate_share}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_run_without_truth() {
    let catalogue = small_catalogue();
    let dir = TempDir::new("shutdown");
    let shutdown = Shutdown::new();
    shutdown.trigger();
    let result = run(&config(dir.path(), 3, 100), &catalogue, &shutdown).await;
    assert!(matches!(
        result,
        Err(altdata_generate::GenerateError::Cancelled)
    ));
    assert!(!dir.path().join("_truth/summary.json").exists());
}

#[tokio::test]
async fn bad_configs_are_rejected_with_every_problem() {
    let catalogue = small_catalogue();
    let mut bad = GenerateConfig::new("/tmp/unused");
    bad.days = 0;
    bad.cards = 0;
    bad.provider = "a/b".to_owned();
    let error = run(&bad, &catalogue, &Shutdown::new())
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("days") && error.contains("cards") && error.contains("provider"),
        "{error}"
    );
}
