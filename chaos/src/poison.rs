//! Poison records: what a careless or hostile producer writes to `order_topic`.
//! Each kind is one way a record can fail to be an order; each record can be
//! found again in the dead-letter topic by its key (or, keyless, its payload).

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Duration;

/// The kinds of poison, by name.
pub const KINDS: [&str; 8] = [
    "empty",
    "not-utf8",
    "not-json",
    "missing-fields",
    "wrong-status",
    "negative-amount",
    "oversized",
    "no-key",
];

/// One poison record written to `order_topic`.
#[derive(Clone, Debug)]
pub struct Poison {
    pub kind: &'static str,
    pub key: Option<String>,
    pub payload: Vec<u8>,
}

/// The `n`-th poison record (numbered across the run), of kind `kind`.
pub fn make(n: usize, kind: &'static str) -> Poison {
    let payload: Vec<u8> = match kind {
        "empty" => Vec::new(),
        "not-utf8" => vec![0xff, 0xfe, 0xfd, n as u8],
        "not-json" => format!("this is not an order #{n}").into_bytes(),
        "missing-fields" => format!(r#"{{"order_id":{}}}"#, 900_000_000 + n).into_bytes(),
        "wrong-status" => format!(
            r#"{{"order_id":{},"user_id":1,"amount":5.0,"status":"payment_successful"}}"#,
            900_000_000 + n
        )
        .into_bytes(),
        "negative-amount" => {
            format!(r#"{{"order_id":{},"user_id":1,"amount":-5.0,"status":"created"}}"#, 900_000_000 + n)
                .into_bytes()
        }
        "oversized" => {
            format!(r#"{{"order_id":{},"pad":"{}"}}"#, 900_000_000 + n, "x".repeat(70_000)).into_bytes()
        }
        _ => format!("keyless garbage #{n}").into_bytes(),
    };
    let key = (kind != "no-key").then(|| format!("poison-{n}"));
    Poison { kind, key, payload }
}

/// Writes `records` to `topic` on `brokers` and waits until the broker has them.
pub fn write(brokers: &str, topic: &str, records: &[Poison]) -> Result<(), String> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .map_err(|e| format!("cannot create the poison producer: {e}"))?;
    for poison in records {
        let mut record = BaseRecord::<String, [u8]>::to(topic).payload(&poison.payload);
        if let Some(key) = &poison.key {
            record = record.key(key);
        }
        producer.send(record).map_err(|(e, _)| format!("cannot queue a poison record: {e}"))?;
    }
    producer.flush(Duration::from_secs(60)).map_err(|e| format!("the poison records were not written: {e}"))
}
