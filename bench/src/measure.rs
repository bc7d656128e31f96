//! What a run measured: one sample per order (created, done), and the figures
//! made from them: throughput end to end, and latency percentiles.

/// One order's trip: both times in ms since the Unix epoch.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub order_id: u64,
    pub created_ms: u64,
    pub done_ms: u64,
}

/// End-to-end latency figures, in ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The samples without the first `warmup` orders (order ids grow as orders are made).
pub fn after_warmup(mut samples: Vec<Sample>, warmup: u64) -> Vec<Sample> {
    samples.sort_unstable_by_key(|s| s.order_id);
    samples.split_off((warmup as usize).min(samples.len()))
}

/// Writes `samples` as CSV (order_id,created_ms,done_ms), sorted by order id.
pub fn write_csv(path: &std::path::Path, samples: &[Sample]) -> Result<(), String> {
    let mut text = String::from("order_id,created_ms,done_ms\n");
    for s in samples {
        text += &format!("{},{},{}\n", s.order_id, s.created_ms, s.done_ms);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Orders per second from the first order created to the last one done.
pub fn throughput(samples: &[Sample]) -> Result<f64, String> {
    let first = samples.iter().map(|s| s.created_ms).min();
    let last = samples.iter().map(|s| s.done_ms).max();
    let (Some(first), Some(last)) = (first, last) else {
        return Err("no orders were measured".into());
    };
    // At least 1 ms: the clock has ms resolution.
    let span_secs = (last.saturating_sub(first)).max(1) as f64 / 1000.0;
    Ok(samples.len() as f64 / span_secs)
}

/// p50, p99 and max of done − created (nearest-rank percentiles).
pub fn latency(samples: &[Sample]) -> Result<Latency, String> {
    let mut millis: Vec<u64> = samples.iter().map(|s| s.done_ms.saturating_sub(s.created_ms)).collect();
    if millis.is_empty() {
        return Err("no orders were measured".into());
    }
    millis.sort_unstable();
    let rank = |p: f64| {
        let index = ((p * millis.len() as f64).ceil() as usize).clamp(1, millis.len()) - 1;
        millis[index] as f64
    };
    Ok(Latency { p50: rank(0.50), p99: rank(0.99), max: rank(1.0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(latencies: impl IntoIterator<Item = u64>) -> Vec<Sample> {
        latencies
            .into_iter()
            .enumerate()
            .map(|(i, ms)| Sample {
                order_id: i as u64,
                created_ms: 1000 + i as u64,
                done_ms: 1000 + i as u64 + ms,
            })
            .collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let latency = latency(&samples(1..=100)).unwrap();
        assert_eq!(latency, Latency { p50: 50.0, p99: 99.0, max: 100.0 });
    }

    #[test]
    fn warmup_drops_the_first_orders() {
        let mut all = samples([5, 6, 7, 8]);
        all.reverse();
        let kept: Vec<u64> = after_warmup(all, 3).iter().map(|s| s.order_id).collect();
        assert_eq!(kept, [3]);
    }

    #[test]
    fn throughput_spans_first_created_to_last_done() {
        // created at 1000..1999, the last done at 1999 + 1 = 2000: 1000 orders in 1 s
        assert_eq!(throughput(&samples(vec![1; 1000])).unwrap(), 1000.0);
        assert!(throughput(&[]).is_err());
    }
}
