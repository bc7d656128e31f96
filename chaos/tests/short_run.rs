//! A short chaos run, end to end: the storm plays in full against a few hundred
//! orders, every invariant holds, and the JSON line carries every figure.

use serde_json::Value;
use std::process::Command;

#[test]
fn a_short_storm_loses_nothing_and_charges_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["--seed", "11", "--orders", "300", "--json"])
        .output()
        .expect("cannot run the chaos binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "chaos failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("every invariant holds"), "no verdict:\n{stdout}");

    let last = stdout.lines().last().expect("a JSON line last");
    let figures: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"));
    let number = |key: &str| figures[key].as_f64().unwrap_or_else(|| panic!("no {key} in {last}"));
    for key in ["emailed_twice", "duration_s", "p99_latency_ms"] {
        number(key);
    }
    assert_eq!(number("created"), 300.0);
    assert_eq!(number("paid") + number("declined"), 300.0);
    assert_eq!(number("paid_twice"), 0.0);
    assert!(number("emailed") >= 300.0);
    assert_eq!(number("lost"), 0.0);
    assert!(number("poison_injected") >= 9.0, "three batches of at least three");
    assert!(number("dead_lettered") >= number("poison_injected"));
    // Two kills and two broker restarts at least, besides the injected crashes.
    assert!(number("faults_injected") >= 4.0);
}
