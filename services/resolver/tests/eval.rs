//! Accuracy of the resolver against the embedded catalogue with no aliases or rules, on four
//! sets, plus the cache and throughput checks.
//!
//! The sets:
//! - **real, calibration half** (`eval/real/calibration.csv`): real descriptors from public
//!   repositories (`eval/real/SOURCES.md`). Tune on this half only; its failing rows are printed.
//! - **real, test half** (`eval/real/test.csv`): other sources, never looked at row by row.
//!   Only aggregates are printed, and the goals are asserted on it.
//! - **generated**: what our own generator (`altdata-generate`) prints, joined with its truth
//!   (`_truth/transactions.csv`), so that coverage on generated data is measured here too.
//! - **hand-written** (`eval/labelled.csv`): realistic descriptors written when the resolver was
//!   first calibrated.
//!
//! Definitions, the same for every set:
//! - a row's **expected merchant** is the catalogue merchant of its `brand_id` label. A product
//!   whose company is the catalogue's brand is labelled with the company (TurboTax → Intuit).
//!   Where a real row names a brand without a `brand_id` (the brand was not in the catalogue
//!   when the row was labelled), a catalogue merchant whose name is exactly the labelled brand
//!   name is the expected merchant: that is how a brand added to the catalogue later counts;
//! - **precision**: of all rows resolved `auto`, the share resolved to the expected merchant
//!   (an `auto` on a row without one is wrong);
//! - **coverage**: of the rows with an expected merchant, the share resolved `auto` to it;
//! - **not wrongly assigned**: of the rows without an expected merchant (brands outside the
//!   catalogue, local shops, and non-purchases such as transfers and payments), the share not
//!   resolved `auto`;
//! - **category guess**: of the rows of a brand outside the catalogue that carry a category
//!   label, the share where [`Resolution::unattributed_category`] is that category (right) or
//!   another one (wrong); the rest stay uncategorised;
//! - **catalogue reach** (real sets): of the rows with a brand, the share whose brand is in the
//!   catalogue.

use altdata_domain::catalogue::Catalogue;
use altdata_domain::Category;
use altdata_resolver::{Decision, Resolution, Resolver};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

const LABELLED: &str = include_str!("../eval/labelled.csv");
const REAL_CALIBRATION: &str = include_str!("../eval/real/calibration.csv");
const REAL_TEST: &str = include_str!("../eval/real/test.csv");

/// Goals, asserted on the test half of the real descriptors.
const GOAL_PRECISION: f64 = 0.98;
/// The coverage goal is not met yet (measured 0.817): the test asserts the measured level as a
/// floor, so a regression fails, and prints the goal's verdict.
const GOAL_COVERAGE: f64 = 0.92;
const COVERAGE_FLOOR: f64 = 0.81;
const GOAL_NOT_WRONGLY_ASSIGNED: f64 = 0.95;
/// Goal for coverage of generated descriptors.
const GOAL_GENERATED_COVERAGE: f64 = 0.97;

/// One labelled descriptor.
struct Row {
    descriptor: String,
    mcc: String,
    /// The catalogue merchant the row is, when its brand is in the catalogue.
    expected: Option<i64>,
    /// The label as written, for messages (brand id, or brand name, or empty).
    label: String,
    /// The row is a purchase from a brand, in the catalogue or not (real sets only).
    has_brand: bool,
    /// The category of a brand outside the catalogue, when labelled.
    category: Option<Category>,
}

struct Setup {
    catalogue: Catalogue,
    resolver: Resolver,
    by_brand: HashMap<String, i64>,
}

fn setup() -> Setup {
    let catalogue = Catalogue::embedded().unwrap_or_else(|e| panic!("catalogue: {e}"));
    let by_brand = catalogue
        .merchants
        .iter()
        .map(|m| (m.brand_id.clone(), m.id))
        .collect();
    let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
    Setup {
        catalogue,
        resolver,
        by_brand,
    }
}

/// `eval/labelled.csv`: `descriptor,mcc,expected_brand_id`, empty brand for "a person should
/// decide".
fn hand_written_rows(setup: &Setup) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(LABELLED.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.unwrap_or_else(|e| panic!("labelled.csv: {e}"));
        let brand = record.get(2).unwrap_or("").trim().to_owned();
        let expected = (!brand.is_empty()).then(|| {
            *setup
                .by_brand
                .get(brand.as_str())
                .unwrap_or_else(|| panic!("labelled.csv: unknown brand {brand:?}"))
        });
        rows.push(Row {
            descriptor: record.get(0).unwrap_or("").to_owned(),
            mcc: record.get(1).unwrap_or("").to_owned(),
            expected,
            has_brand: expected.is_some(),
            label: brand,
            category: None,
        });
    }
    rows
}

/// What loading a half of the real set found out about its labels.
#[derive(Default)]
struct LabelNotes {
    /// Rows whose `brand_id` is not in the catalogue (a renamed or removed brand).
    unknown_brand_ids: Vec<String>,
    /// Rows whose brand was outside the catalogue when labelled and is in it now, by name.
    matched_by_name: Vec<(String, String)>,
}

/// A real half: `descriptor,mcc,brand,brand_id,category,source,source_path,licence`.
fn real_rows(setup: &Setup, text: &str) -> (Vec<Row>, LabelNotes) {
    let by_name = catalogue_by_name(&setup.catalogue);
    let mut notes = LabelNotes::default();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        // A csv error names a position, never a row's text.
        let record = record.unwrap_or_else(|e| panic!("real set: {e}"));
        let field = |index: usize| record.get(index).unwrap_or("").trim().to_owned();
        let (brand, brand_id) = (field(2), field(3));
        let expected = if !brand_id.is_empty() {
            let found = setup.by_brand.get(brand_id.as_str()).copied();
            if found.is_none() {
                notes.unknown_brand_ids.push(brand_id.clone());
            }
            found
        } else if !brand.is_empty() {
            let found = by_name.get(&name_key(&brand)).copied().flatten();
            if let Some(id) = found {
                let name = setup
                    .resolver
                    .merchant(id)
                    .map_or_else(String::new, |m| m.name.clone());
                notes.matched_by_name.push((brand.clone(), name));
            }
            found
        } else {
            None
        };
        let category = Category::parse(&field(4)).filter(|_| expected.is_none());
        rows.push(Row {
            descriptor: record.get(0).unwrap_or("").to_owned(),
            mcc: field(1),
            expected,
            label: if brand_id.is_empty() { brand } else { brand_id },
            has_brand: !field(2).is_empty(),
            category,
        });
    }
    (rows, notes)
}

/// Catalogue merchants by the key of their name; `None` where two merchants share a key.
fn catalogue_by_name(catalogue: &Catalogue) -> HashMap<String, Option<i64>> {
    let mut by_name: HashMap<String, Option<i64>> = HashMap::new();
    for merchant in &catalogue.merchants {
        by_name
            .entry(name_key(&merchant.name))
            .and_modify(|id| *id = None)
            .or_insert(Some(merchant.id));
    }
    by_name
}

/// A brand name's letters and digits, lower case, without a leading "the".
fn name_key(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    let lower = lower.strip_prefix("the ").unwrap_or(&lower);
    lower.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Counts for one set.
#[derive(Default)]
struct Tally {
    rows: usize,
    auto: usize,
    auto_right: usize,
    /// Rows with an expected merchant, and those resolved `auto` to it.
    expected: usize,
    covered: usize,
    /// Rows without an expected merchant, and those not resolved `auto`.
    outside: usize,
    outside_left_alone: usize,
    /// Rows of a brand (real sets), and those whose brand is in the catalogue.
    with_brand: usize,
    in_catalogue: usize,
    /// Rows with a category label and no catalogue brand, and the guesses right and wrong.
    categorised: usize,
    category_right: usize,
    category_wrong: usize,
    /// Automatic decisions by confidence band (0.90-0.93, 0.93-0.97, 0.97-1.00): (all, right).
    bands: [(usize, usize); 3],
}

impl Tally {
    fn precision(&self) -> f64 {
        ratio(self.auto_right, self.auto)
    }

    fn coverage(&self) -> f64 {
        ratio(self.covered, self.expected)
    }

    fn not_wrongly_assigned(&self) -> f64 {
        ratio(self.outside_left_alone, self.outside)
    }

    fn category_right(&self) -> f64 {
        ratio(self.category_right, self.categorised)
    }

    fn category_wrong(&self) -> f64 {
        ratio(self.category_wrong, self.categorised)
    }

    fn reach(&self) -> f64 {
        ratio(self.in_catalogue, self.with_brand)
    }

    fn report(&self, name: &str, real: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== {name}: {} rows", self.rows);
        let line = |out: &mut String, what: &str, value: f64, part: usize, whole: usize| {
            let _ = writeln!(out, "   {what:<44} {value:.4} ({part}/{whole})");
        };
        line(
            &mut out,
            "precision of auto",
            self.precision(),
            self.auto_right,
            self.auto,
        );
        line(
            &mut out,
            "coverage of catalogue brands",
            self.coverage(),
            self.covered,
            self.expected,
        );
        line(
            &mut out,
            "others not auto-assigned to a wrong brand",
            self.not_wrongly_assigned(),
            self.outside_left_alone,
            self.outside,
        );
        if self.categorised > 0 {
            line(
                &mut out,
                "category of brands outside: right",
                self.category_right(),
                self.category_right,
                self.categorised,
            );
            line(
                &mut out,
                "category of brands outside: wrong",
                self.category_wrong(),
                self.category_wrong,
                self.categorised,
            );
        }
        if real {
            line(
                &mut out,
                "catalogue reach (rows with a brand)",
                self.reach(),
                self.in_catalogue,
                self.with_brand,
            );
        }
        for (band, (count, right)) in ["0.90-0.93", "0.93-0.97", "0.97-1.00"]
            .iter()
            .zip(self.bands)
        {
            let _ = writeln!(out, "   auto confidence {band}: {right}/{count} right");
        }
        out
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    part as f64 / whole.max(1) as f64
}

/// How rows are reported one by one: every failure, some, or none (the test half).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failures {
    All,
    AtMost(usize),
    None,
}

/// Resolves every row and counts; failing rows go to the returned text as allowed.
fn evaluate(resolver: &Resolver, rows: &[Row], failures: Failures) -> (Tally, String) {
    let mut tally = Tally::default();
    let mut listed = String::new();
    let mut shown = 0usize;
    let mut show = |line: String| {
        let allowed = match failures {
            Failures::All => true,
            Failures::AtMost(limit) => shown < limit,
            Failures::None => false,
        };
        if allowed {
            shown += 1;
            listed.push_str(&line);
            listed.push('\n');
        }
    };
    let name = |id: i64| {
        resolver
            .merchant(id)
            .map_or_else(|| "?".to_owned(), |m| m.name.clone())
    };
    for row in rows {
        let resolution = resolver.resolve(&row.descriptor, &row.mcc);
        tally.rows += 1;
        if row.has_brand {
            tally.with_brand += 1;
            if row.expected.is_some() {
                tally.in_catalogue += 1;
            }
        }
        match row.expected {
            Some(_) => tally.expected += 1,
            None => tally.outside += 1,
        }
        match &resolution.decision {
            Decision::Auto {
                merchant_id,
                confidence,
                ..
            } => {
                let right = row.expected == Some(*merchant_id);
                tally.auto += 1;
                let band = if *confidence >= 0.97 {
                    2
                } else if *confidence >= 0.93 {
                    1
                } else {
                    0
                };
                tally.bands[band].0 += 1;
                if right {
                    tally.auto_right += 1;
                    tally.covered += 1;
                    tally.bands[band].1 += 1;
                } else {
                    show(format!(
                        "WRONG AUTO  {:<50} -> {} ({confidence:.3}) expected {:?} [{}]",
                        row.descriptor,
                        name(*merchant_id),
                        row.label,
                        resolution.normalized
                    ));
                }
            }
            Decision::Review { candidates, .. } => {
                if row.expected.is_some() {
                    let top = candidates.first().map_or("-".to_owned(), |c| {
                        format!("{} {:.3} ({})", c.name, c.score, c.why)
                    });
                    show(format!(
                        "MISSED      {:<50} expected {} [{}] top {top}",
                        row.descriptor, row.label, resolution.normalized
                    ));
                } else {
                    tally.outside_left_alone += 1;
                }
            }
        }
        if let Some(category) = row.category {
            tally.categorised += 1;
            match guessed(&resolution) {
                Some((guess, _)) if guess == category => tally.category_right += 1,
                Some((guess, why)) => {
                    tally.category_wrong += 1;
                    show(format!(
                        "CATEGORY    {:<50} {guess} ({why}) expected {category} [{}] mcc {}",
                        row.descriptor, resolution.normalized, row.mcc
                    ));
                }
                None => show(format!(
                    "NO CATEGORY {:<50} expected {category} [{}] mcc {}",
                    row.descriptor, resolution.normalized, row.mcc
                )),
            }
        }
    }
    (tally, listed)
}

fn guessed(resolution: &Resolution) -> Option<(Category, &'static str)> {
    resolution
        .unattributed_category()
        .map(|guess| (guess.category, guess.why))
}

#[test]
fn real_descriptors_calibration_half() {
    let setup = setup();
    let (rows, notes) = real_rows(&setup, REAL_CALIBRATION);
    assert!(
        notes.unknown_brand_ids.is_empty(),
        "calibration labels name brand ids the catalogue lacks: {:?}",
        notes.unknown_brand_ids
    );
    let (tally, failures) = evaluate(&setup.resolver, &rows, Failures::All);
    let mut out = failures;
    for (brand, name) in &notes.matched_by_name {
        let _ = writeln!(
            out,
            "BY NAME     label {brand:?} is catalogue merchant {name:?}"
        );
    }
    out.push_str(&tally.report("real descriptors, calibration half", true));
    println!("{out}");
    assert!(rows.len() >= 790, "the calibration half shrank");
}

#[test]
fn real_descriptors_test_half() {
    let setup = setup();
    let (rows, notes) = real_rows(&setup, REAL_TEST);
    // Aggregates only: no row of this half is ever printed.
    assert!(
        notes.unknown_brand_ids.is_empty(),
        "{} test labels name brand ids the catalogue lacks",
        notes.unknown_brand_ids.len()
    );
    let (tally, _) = evaluate(&setup.resolver, &rows, Failures::None);
    let mut out = tally.report("real descriptors, test half (aggregates only)", true);
    let _ = writeln!(
        out,
        "   rows whose brand joined the catalogue after labelling: {}",
        notes.matched_by_name.len()
    );
    println!("{out}");
    assert!(rows.len() >= 600, "the test half shrank");
    assert!(
        tally.precision() >= GOAL_PRECISION,
        "test half: precision {:.4} < {GOAL_PRECISION}",
        tally.precision()
    );
    println!(
        "test half: coverage {:.4} against the goal {GOAL_COVERAGE}: {}",
        tally.coverage(),
        if tally.coverage() >= GOAL_COVERAGE {
            "met"
        } else {
            "NOT MET"
        }
    );
    assert!(
        tally.coverage() >= COVERAGE_FLOOR,
        "test half: coverage {:.4} fell below its floor {COVERAGE_FLOOR}",
        tally.coverage()
    );
    assert!(
        tally.not_wrongly_assigned() >= GOAL_NOT_WRONGLY_ASSIGNED,
        "test half: not wrongly assigned {:.4} < {GOAL_NOT_WRONGLY_ASSIGNED}",
        tally.not_wrongly_assigned()
    );
}

/// Seed, days and cards of the generated set: about 9,000 rows.
const GENERATED_SEED: u64 = 20_251_101;
const GENERATED_DAYS: u32 = 2;
const GENERATED_CARDS: u64 = 2_500;

#[test]
fn generated_descriptors() {
    let setup = setup();
    let rows = generated_rows(&setup);
    let locals = rows.iter().filter(|r| r.expected.is_none()).count();
    let (tally, failures) = evaluate(&setup.resolver, &rows, Failures::AtMost(60));
    let mut out = failures;
    out.push_str(&tally.report(
        &format!(
            "generated descriptors (seed {GENERATED_SEED}, {} brand rows, {locals} local rows)",
            rows.len() - locals
        ),
        false,
    ));
    println!("{out}");
    assert!(rows.len() >= 5_000, "the generated set is too small");
    assert!(
        tally.coverage() >= GOAL_GENERATED_COVERAGE,
        "generated: coverage {:.4} < {GOAL_GENERATED_COVERAGE}",
        tally.coverage()
    );
}

/// Runs the generator into a scratch directory and joins each valid row's descriptor and MCC
/// with its true brand (`_truth/transactions.csv`; empty for local shops).
fn generated_rows(setup: &Setup) -> Vec<Row> {
    let dir = ScratchDir::new("generated");
    let mut config = altdata_generate::GenerateConfig::new(dir.path().to_string_lossy());
    config.days = GENERATED_DAYS;
    config.cards = GENERATED_CARDS;
    config.seed = GENERATED_SEED;
    config.truth_detail = true;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let shutdown = altdata_common::Shutdown::new();
    runtime
        .block_on(altdata_generate::run(&config, &setup.catalogue, &shutdown))
        .unwrap_or_else(|e| panic!("generate: {e}"));

    let truth_path = dir.path().join("_truth/transactions.csv");
    let mut truth: HashMap<String, String> = HashMap::new();
    let mut reader =
        csv::Reader::from_path(&truth_path).unwrap_or_else(|e| panic!("{truth_path:?}: {e}"));
    for record in reader.records() {
        let record = record.unwrap_or_else(|e| panic!("{truth_path:?}: {e}"));
        truth.insert(
            record.get(1).unwrap_or("").to_owned(),
            record.get(2).unwrap_or("").to_owned(),
        );
    }

    let provider_dir = dir.path().join(format!("provider={}", config.provider));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&provider_dir)
        .unwrap_or_else(|e| panic!("{provider_dir:?}: {e}"))
        .flatten()
        .map(|entry| entry.path())
        .collect();
    files.sort();
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for file in files {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&file)
            .unwrap_or_else(|e| panic!("{file:?}: {e}"));
        for record in reader.records() {
            let Ok(record) = record else { continue };
            let txn_id = record.get(0).unwrap_or("");
            // Valid unique rows only: the truth lists each once.
            let Some(brand) = truth.get(txn_id) else {
                continue;
            };
            if !seen.insert(txn_id.to_owned()) {
                continue;
            }
            let expected = (!brand.is_empty()).then(|| {
                *setup
                    .by_brand
                    .get(brand.as_str())
                    .unwrap_or_else(|| panic!("generated: unknown brand {brand:?}"))
            });
            rows.push(Row {
                descriptor: record.get(3).unwrap_or("").to_owned(),
                mcc: record.get(6).unwrap_or("").to_owned(),
                expected,
                label: brand.clone(),
                has_brand: expected.is_some(),
                category: None,
            });
        }
    }
    rows
}

/// A scratch directory removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> ScratchDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        ScratchDir(std::env::temp_dir().join(format!(
            "altdata-resolver-eval-{name}-{}-{nanos}",
            std::process::id()
        )))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn hand_written_descriptors_resolve_precisely() {
    let setup = setup();
    let rows = hand_written_rows(&setup);
    let (tally, failures) = evaluate(&setup.resolver, &rows, Failures::All);
    let mut out = failures;
    out.push_str(&tally.report("hand-written descriptors (eval/labelled.csv)", false));
    println!("{out}");
    assert!(rows.len() >= 460, "the labelled set shrank");
    assert!(
        tally.precision() >= 0.98,
        "precision {:.4}",
        tally.precision()
    );
    assert!(tally.coverage() >= 0.90, "coverage {:.4}", tally.coverage());
    assert!(
        tally.not_wrongly_assigned() >= 0.90,
        "review rate {:.4}",
        tally.not_wrongly_assigned()
    );
}

#[test]
fn the_cache_changes_no_resolution() {
    // Store numbers and cities vary, so raw strings miss the first level of the cache while
    // their normalised forms repeat and hit the second (decisions): both must give exactly
    // what the resolver gives uncached.
    let setup = setup();
    let mut rows = hand_written_rows(&setup);
    rows.extend(real_rows(&setup, REAL_CALIBRATION).0);
    let resolver = &setup.resolver;
    let cities = ["SEATTLE WA", "AUSTIN TX", "", "NEW YORK NY"];
    let mut cache = altdata_resolver::ResolutionCache::new(100_000);
    for n in 0..4 * rows.len() {
        let row = &rows[n % rows.len()];
        let descriptor = format!(
            "{} #{} {}",
            row.descriptor,
            1000 + n,
            cities[n % cities.len()]
        );
        let cached = cache.get_or_resolve(resolver, &descriptor, &row.mcc);
        assert_eq!(
            *cached,
            resolver.resolve(&descriptor, &row.mcc),
            "{descriptor:?}"
        );
    }
    assert_eq!(cache.hits(), 0, "every raw string was distinct");
}

#[test]
fn cold_resolution_throughput() {
    let setup = setup();
    let rows = hand_written_rows(&setup);
    // Distinct descriptors: the labelled ones with varying store numbers and cities, so that no
    // two strings are equal (the resolver keeps no cache of its own).
    let cities = [
        "SEATTLE WA",
        "AUSTIN TX",
        "SMALLVILLE KS",
        "",
        "DENVER CO",
        "NEW YORK NY",
    ];
    let mut descriptors = Vec::new();
    for n in 0..20_000usize {
        let row = &rows[n % rows.len()];
        descriptors.push((
            format!(
                "{} #{} {}",
                row.descriptor,
                1000 + n,
                cities[n % cities.len()]
            ),
            row.mcc.clone(),
        ));
    }
    let started = Instant::now();
    let cpu_started = thread_cpu_nanos();
    let mut auto = 0usize;
    for (descriptor, mcc) in &descriptors {
        if setup
            .resolver
            .resolve(descriptor, mcc)
            .merchant_id()
            .is_some()
        {
            auto += 1;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    // Time on the CPU, so a busy machine (parallel builds) does not skew the figure.
    let cpu = match (cpu_started, thread_cpu_nanos()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => wall,
    };
    let rate = descriptors.len() as f64 / cpu.max(1e-9);
    println!(
        "cold resolution: {} distinct descriptors, {cpu:.3}s on the CPU ({wall:.3}s wall) = {rate:.0}/s on one core ({auto} auto){}",
        descriptors.len(),
        if cfg!(debug_assertions) { " [debug build; use --release for the real figure]" } else { "" }
    );
    if !cfg!(debug_assertions) {
        assert!(rate >= 50_000.0, "throughput {rate:.0}/s");
    }
}

/// Nanoseconds this thread has run on a CPU (Linux), if the kernel says.
fn thread_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
