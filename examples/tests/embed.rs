//! Runs the `embed` example program (the README's and the crate docs' quick start) on the
//! memory store and on PostgreSQL, and checks what it reports.

use std::process::Command;

/// Runs the program with `args`; its standard output, after checking it succeeded.
fn run_embed(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_embed"))
        .args(args)
        .output()
        .expect("the embed program starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "embed failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn assert_whole_loop(stdout: &str) {
    for line in [
        "uploaded sensor-fw 1.2 (262144 bytes)",
        "released 2, notices 2",
        "sensor-0: Some(Updated)",
        "tick: released 2",
        "tick: released 8",
        "campaign FINISHED: 10 of 10 updated",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{stdout}"
        );
    }
}

#[test]
fn the_quick_start_runs_on_the_memory_store() {
    assert_whole_loop(&run_embed(&[]));
}

#[tokio::test]
async fn the_quick_start_runs_on_postgresql() {
    let db = ota_store_postgres::testing::fresh_database().await;
    let stdout = run_embed(&[&db.url, &db.schema]);
    assert_whole_loop(&stdout);
    db.drop_schema().await;
}

#[test]
fn bad_arguments_are_refused_with_the_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_embed"))
        .args(["only-one"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: embed"));
}
