//! Log lines that say who spoke: `<time> <LEVEL> <service> <actor>: <message>`.
//!
//! Actors log with their name as the log target (`target: "PaymentActor"`), so
//! `RUST_LOG=PaymentActor=debug` narrows the output to one actor. Default level: info.

use std::io::Write;

/// Sets up env_logger for `service`; call once, first thing in `main`.
pub fn init(service: &'static str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            let level = record.level();
            let style = buf.default_level_style(level);
            writeln!(
                buf,
                "{} {style}{level:<5}{style:#} {service} {}: {}",
                buf.timestamp_millis(),
                record.target(),
                record.args()
            )
        })
        .init();
}
