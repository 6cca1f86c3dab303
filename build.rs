//! Build information for `pantry --version`: the git commit (and whether the tree had changes)
//! and the compiler. A build outside a git checkout says "unknown".

use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        output("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let compiler = output(&rustc, &["--version"]).unwrap_or_else(|| "rustc (unknown version)".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let commit = if dirty { format!("{commit}+changes") } else { commit };
    println!("cargo:rustc-env=PANTRY_BUILD_INFO=commit {commit}, {compiler}, {target}");
    // Again when HEAD moves (a checkout, or a commit: the branch's ref file or packed-refs), the
    // index changes, or the sources do (so "+changes" is never stale). Only files that exist are
    // named: a missing one would run this on every build.
    let branch = output("git", &["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", "index", "packed-refs"].into_iter().map(str::to_string).chain(branch);
    for name in watched {
        if let Some(path) = output("git", &["rev-parse", "--git-path", &name]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build.rs");
}
