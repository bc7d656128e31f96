//! The benchmark in smoke mode, end to end: it completes and writes every figure.
//! No timing is asserted: this machine's speed is not what the test is about.
//! It runs with `--store postgres`, so the pipeline is measured on SQLite and
//! on PostgreSQL both (a server of its own: Debian's postgresql package, root).

use serde_json::Value;
use std::process::Command;

#[test]
fn smoke_benchmark_completes_and_writes_every_figure() {
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-smoke.json");
    let _ = std::fs::remove_file(&json);
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--smoke")
        .args(["--store", "postgres"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("cannot run the bench binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench --smoke failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("throughput (orders/s)"), "no table printed:\n{stdout}");
    assert!(stdout.contains("against the fair ceiling"), "no fair ceiling in the table:\n{stdout}");
    assert!(
        stdout.contains("pipeline on PostgreSQL (orders/s)"),
        "no PostgreSQL side in the table:\n{stdout}"
    );

    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no {}: {e}", json.display()));
    let figures: Value = serde_json::from_str(&text).expect("the JSON is valid");
    let mut keys = vec![
        "/ratio/throughput_median".to_string(),
        "/ratio/p99".to_string(),
        "/ratio/throughput_median_to_fair_ceiling".to_string(),
        "/runs/0/pipeline_from_logs_per_s".to_string(),
        "/runs/0/fair_ceiling_per_s".to_string(),
        "/fair_ceiling/cpu_ms_per_1000_orders_median".to_string(),
        "/ratio/throughput_median_postgres_to_sqlite".to_string(),
        "/runs/0/pipeline_postgres_per_s".to_string(),
    ];
    for side in ["ceiling", "fair_ceiling", "pipeline", "pipeline_postgres"] {
        keys.extend(["min", "median", "max"].map(|s| format!("/{side}/throughput_per_s/{s}")));
    }
    for side in ["ceiling", "pipeline"] {
        keys.extend(["p50", "p99", "max"].map(|p| format!("/{side}/latency_ms/{p}")));
    }
    for service in ["order-service", "payment-service", "notification-service"] {
        keys.push(format!("/pipeline/peak_rss_mib/{service}"));
        keys.push(format!("/pipeline_postgres/peak_rss_mib/{service}"));
        keys.push(format!("/pipeline_postgres/cpu_ms_per_1000_orders_median/{service}"));
    }
    for restart in 0..2 {
        keys.extend(
            ["first_payment_s", "peak_rss_mib"].map(|f| format!("/restart_over_history/{restart}/{f}")),
        );
    }
    for key in keys {
        let value = figures.pointer(&key).and_then(Value::as_f64);
        assert!(value.is_some_and(|v| v > 0.0), "{key} is {value:?}, not a positive number, in:\n{text}");
    }
    // The store's cost is a difference of two noisy figures: any sign.
    for key in [
        "/measuring_cost/log_lines_disagreement_max",
        "/measuring_cost/bench_cpu_share_of_services_max",
        "/store_cost_per_1000_orders/cpu_ms",
        "/store_cost_per_1000_orders/wall_ms",
    ] {
        assert!(figures.pointer(key).is_some_and(Value::is_number), "{key} missing in:\n{text}");
    }
    for key in [
        "/targets/throughput_at_least_0_8_of_ceiling",
        "/targets/throughput_at_least_0_8_of_fair_ceiling",
        "/targets/p99_at_most_1_5_of_ceiling",
        "/targets/postgres_at_least_0_8_of_sqlite",
        "/targets/postgres_peak_rss_below_64_mib/payment-service",
    ] {
        assert!(figures.pointer(key).is_some_and(Value::is_boolean), "{key} missing in:\n{text}");
    }
}
