//! A short chaos run, end to end: the storm plays in full against a few hundred
//! orders (kills, broker restarts, poison, a pause and a cut that make zombies,
//! a slow network, a churn), every invariant holds, and the JSON line carries
//! every figure. Needs root, as the chaos run does (network namespaces).

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
    for key in [
        "emailed_twice",
        "duration_s",
        "p99_latency_ms",
        "paid_twice",
        "payment_event_copies",
        "emails_in_doubt",
        "claims_taken_over",
        "claims_renewed",
        "unseen",
    ] {
        number(key);
    }
    assert_eq!(number("created"), 300.0);
    assert_eq!(number("paid") + number("declined"), 300.0);
    assert_eq!(number("charged_twice"), 0.0);
    assert!(number("emailed") >= 300.0);
    assert_eq!(number("lost"), 0.0);
    assert!(number("poison_injected") >= 9.0, "three batches of at least three");
    assert!(number("dead_lettered") >= number("poison_injected"));
    assert_eq!(number("unseen"), 0.0);
    // Two kills, two broker restarts, a pause, a cut, a slow spell and a churn
    // at least, besides the injected crashes.
    assert!(number("faults_injected") >= 8.0);
    let faults = figures["faults"].as_array().unwrap_or_else(|| panic!("no faults in {last}"));
    for word in ["pause", "cut", "slow", "churn"] {
        let named = |f: &Value| f["fault"].as_str().is_some_and(|f| f.starts_with(&format!("{word}:")));
        assert!(faults.iter().any(named), "no {word} fault in {last}");
    }
}
