//! docs/RELIABILITY.md stays honest: its header is the one the suite writes, and every row names a
//! fault that some test still injects (the rows themselves are checked by those tests).

mod common;

use common::reliability::{fault_of, path, rows, HEADER};

#[test]
fn every_row_of_the_reliability_report_belongs_to_a_test() {
    let text = std::fs::read_to_string(path()).expect("docs/RELIABILITY.md exists");
    assert!(text.starts_with(HEADER), "the header is the suite's; rerun with PANTRY_BLESS=1");
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let sources: String = std::fs::read_dir(tests)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|file| file.extension().is_some_and(|e| e == "rs"))
        .map(|file| std::fs::read_to_string(file).unwrap())
        .collect();
    let table = rows(&text);
    assert!(table.len() >= 20, "the report lists {} faults", table.len());
    for row in table {
        let fault = fault_of(row);
        assert!(sources.contains(&format!("\"{fault}\"")), "no test injects {fault:?} any more: {row}");
        assert!(row.ends_with("| nothing |"), "a row that lost something: {row}");
    }
}
