//! Asking a service's HTTP endpoints (`--metrics-addr`), as Prometheus and an
//! orchestrator would: plain HTTP/1.1 GETs, and the samples of a `/metrics` page.

use crate::ServiceProcess;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The line a service logs once it serves its endpoints.
const SERVING: &str = "serving /metrics, /health and /ready on http://";

/// Where `service` (started with `--metrics-addr HOST:0`) serves: waits for its log line.
pub fn metrics_address(service: &ServiceProcess) -> String {
    service.wait_until("it serves its endpoints", Duration::from_secs(30), |lines| {
        lines.iter().any(|l| l.contains(SERVING))
    });
    let lines = service.lines();
    let line = lines.iter().find(|l| l.contains(SERVING)).expect("waited for it");
    line.split(SERVING)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address")
        .to_string()
}

/// `GET http://{address}{path}`: the status code and the body.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    let exchange = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    };
    let response = exchange().unwrap_or_else(|e| panic!("GET http://{address}{path} failed: {e}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok());
    (status.unwrap_or_else(|| panic!("not an HTTP response: {response:?}")), body.to_string())
}

/// One sample of a Prometheus text exposition: `name{labels} value`.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Scrapes `/metrics` at `address` and returns its samples; panics unless it answers 200.
pub fn scrape(address: &str) -> Vec<Sample> {
    let (status, body) = http_get(address, "/metrics");
    assert_eq!(status, 200, "/metrics answered {status}: {body}");
    body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(sample).collect()
}

fn sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
    let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
    let labels = labels.trim_end_matches('}').split(',').filter(|pair| !pair.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("not a label: {pair:?}"));
        (key.to_string(), value.trim_matches('"').to_string())
    });
    let value = value.parse().unwrap_or_else(|_| panic!("not a number: {line:?}"));
    Sample { name: name.to_string(), labels: labels.collect(), value }
}

/// The sum of the samples named `name` (every label set).
pub fn total(samples: &[Sample], name: &str) -> f64 {
    samples.iter().filter(|s| s.name == name).map(|s| s.value).sum()
}
