//! The library does not carry the command-line program's crates: with the `cli` feature off
//! (`default-features = false`, as the fuzz targets use pantry) none of them is a dependency.

/// Crates only `src/main.rs` and its modules use.
const CLI_ONLY: &[&str] =
    &["anyhow", "clap_complete", "clap_mangen", "indicatif", "tracing-subscriber", "rlimit"];

#[test]
fn the_library_alone_depends_on_no_cli_crate() {
    let tree = |features: &[&str]| {
        let output = std::process::Command::new(env!("CARGO"))
            .args(["tree", "--offline", "--locked", "-e", "normal", "--prefix", "none", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .args(features)
            .output()
            .unwrap();
        assert!(output.status.success(), "cargo tree: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.lines().filter_map(|l| l.split(' ').next().map(str::to_string)).collect::<Vec<_>>()
    };
    let library = tree(&["--no-default-features"]);
    assert!(library.iter().any(|c| c == "hyper"), "the tree was read: {library:?}");
    let carried: Vec<&&str> = CLI_ONLY.iter().filter(|c| library.iter().any(|l| l == *c)).collect();
    assert!(carried.is_empty(), "the library depends on {carried:?}: make them optional under `cli`");
    let program = tree(&[]);
    assert!(
        CLI_ONLY.iter().all(|c| program.iter().any(|l| l == c)),
        "the list above is out of date: {program:?}"
    );
}
