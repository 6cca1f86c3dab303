//! docs/RELIABILITY.md is written by the tests that inject the faults: each such test describes
//! what it observed (what the client saw, what was stored, what happened next, what was lost) and
//! [`record`]s it. Normally the row must already be in the document, word for word, so the table
//! can never claim more than the suite shows; `PANTRY_BLESS=1 cargo test` rewrites the rows from
//! the observations instead. A row that loses anything fails the test whatever the mode.

use std::{
    io::{Read, Seek, Write},
    path::PathBuf,
    time::Duration,
};

pub const HEADER: &str = "\
# Reliability

What pantry does under each fault the test suite injects, and what was lost (which must be
nothing). Every row is written from what a test observed; `cargo test` fails when a row here no
longer matches, and `PANTRY_BLESS=1 cargo test` rewrites the rows. The test that injects a fault
names it in a `fault: \"...\"` field (search tests/ for the fault's name).

| Area | Fault | What the client saw | What was stored | Afterwards | Lost |
|---|---|---|---|---|---|
";

/// One observed fault.
pub struct Outcome<'a> {
    /// `client`, `disk`, `process` or `upstream`.
    pub area: &'a str,
    pub fault: &'a str,
    pub client: String,
    pub stored: String,
    pub after: String,
    /// Everything lost or leaked; a row with anything here fails.
    pub lost: Vec<String>,
}

pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/RELIABILITY.md")
}

/// The table rows of a RELIABILITY.md text.
pub fn rows(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Area ")).collect()
}

/// The fault a row describes.
pub fn fault_of(row: &str) -> &str {
    row.split(" | ").nth(1).unwrap_or_default()
}

/// Checks (or, with `PANTRY_BLESS=1`, writes) the row for `outcome`; fails if anything was lost.
pub fn record(outcome: Outcome) {
    let lost = if outcome.lost.is_empty() { "nothing".to_string() } else { outcome.lost.join("; ") };
    let row = format!(
        "| {} | {} | {} | {} | {} | {} |",
        outcome.area, outcome.fault, outcome.client, outcome.stored, outcome.after, lost
    );
    assert!(outcome.lost.is_empty(), "{}: lost {lost}", outcome.fault);
    if std::env::var("PANTRY_BLESS").is_ok_and(|v| v == "1") {
        bless(&row, outcome.fault);
        return;
    }
    let text = std::fs::read_to_string(path()).unwrap_or_default();
    let current = rows(&text).into_iter().find(|r| fault_of(r) == outcome.fault);
    assert_eq!(
        current,
        Some(row.as_str()),
        "docs/RELIABILITY.md does not say what the suite observed for {:?}; rerun with PANTRY_BLESS=1",
        outcome.fault
    );
}

/// Replaces or adds the row for `fault`; rows stay sorted. Tests in other threads wait their turn
/// (cargo runs one test binary at a time, so a lock within the process is enough).
fn bless(row: &str, fault: &str) {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path()).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let mut table: Vec<&str> = rows(&text).into_iter().filter(|r| fault_of(r) != fault).collect();
    table.push(row);
    table.sort();
    let mut out = HEADER.to_string();
    for row in table {
        out.push_str(row);
        out.push('\n');
    }
    file.set_len(0).unwrap();
    file.rewind().unwrap();
    file.write_all(out.as_bytes()).unwrap();
}

/// A duration as the table states it: rounded up to the next whole second.
pub fn within(bound: Duration) -> String {
    let secs = bound.as_secs() + u64::from(bound.subsec_nanos() > 0);
    format!("{secs} s")
}
