//! The pipeline under the storm: the service processes, started with injected
//! crashes, killed and started again as the storm says, and every process that
//! ever ran kept, for its log lines.

use harness::{Broker, Service};
use std::time::Duration;

/// payment-service instances running at once.
pub const PAYMENT_INSTANCES: usize = 2;
/// The share of events whose handling crashes an actor on purpose, in every service.
const CRASH_RATE: &str = "0.01";
/// How long a service may take to stop after Ctrl-C.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What marks an email in notification-service's log, paid or declined.
pub const EMAILED: [&str; 2] = ["✅ Payment Successful for Order ", "❌ Payment Failed for Order "];

pub struct Pipeline {
    seed: u64,
    /// Orders order-service was asked to make.
    count: u64,
    orders: Service,
    /// The running instance of each payment-service (`#1` first).
    payments: Vec<Service>,
    notification: Service,
    /// Processes SIGKILLed by the storm, with the lines they printed.
    pub killed_payments: Vec<Service>,
    pub killed_notifications: Vec<Service>,
}

impl Pipeline {
    /// Starts every service and waits for the first email.
    pub fn start(broker: &Broker, seed: u64, count: u64, rate: f64) -> Pipeline {
        let payments = (1..=PAYMENT_INSTANCES).map(|i| start_payment(broker, seed, i)).collect();
        let notification = start_notification(broker, seed);
        let (count_text, rate, seed_text) = (count.to_string(), format!("{rate:.1}"), seed.to_string());
        let orders = Service::start(
            "order-service",
            broker,
            &["--count", &count_text, "--rate", &rate, "--seed", &seed_text, "--crash-rate", CRASH_RATE]
                .into_iter()
                .chain(["--crash-actor", "any", "--crash-mode", "panic", "--broker-wait-secs", "0"])
                .collect::<Vec<_>>(),
        );
        notification
            .wait_until("the first email", Duration::from_secs(120), |lines| distinct_emails(lines) > 0);
        Pipeline {
            seed,
            count,
            orders,
            payments,
            notification,
            killed_payments: Vec::new(),
            killed_notifications: Vec::new(),
        }
    }

    /// SIGKILLs payment-service `#instance`, and starts it again (same instance
    /// id) after `down`.
    pub fn kill_payment(&mut self, instance: usize, down: Duration, broker: &Broker) {
        self.payments[instance - 1].kill();
        std::thread::sleep(down); // the process stays dead this long
        let fresh = start_payment(broker, self.seed, instance);
        let killed = std::mem::replace(&mut self.payments[instance - 1], fresh);
        self.killed_payments.push(killed);
    }

    /// SIGKILLs notification-service, and starts it again after `down`.
    pub fn kill_notification(&mut self, down: Duration, broker: &Broker) {
        self.notification.kill();
        std::thread::sleep(down); // the process stays dead this long
        let killed = std::mem::replace(&mut self.notification, start_notification(broker, self.seed));
        self.killed_notifications.push(killed);
    }

    /// Waits, at most `timeout`, until order-service has made every order and
    /// every order was emailed. False if that did not happen.
    pub fn settle(&mut self, timeout: Duration) -> bool {
        let count = self.count as usize;
        let earlier = self.killed_notifications.iter().map(|s| s.lines()).collect::<Vec<_>>().concat();
        self.notification
            .wait_for(timeout, |lines| {
                let mut all = earlier.clone();
                all.extend_from_slice(lines);
                distinct_emails(&all) >= count
            })
            .is_ok()
    }

    /// Stops every running service with Ctrl-C; the ones that did not exit 0.
    pub fn stop(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        let running = std::iter::once(&mut self.orders)
            .chain(self.payments.iter_mut())
            .chain(std::iter::once(&mut self.notification));
        for service in running {
            service.interrupt();
            if !service.wait_exit(STOP_TIMEOUT).success() {
                failed.push(format!("{} ({})", service.name, service.pid()));
            }
        }
        failed
    }

    /// Every line every notification-service process printed.
    pub fn notification_lines(&self) -> (Vec<String>, Vec<String>) {
        let killed = self.killed_notifications.iter().flat_map(Service::lines).collect();
        (killed, self.notification.lines())
    }

    /// Injected crashes per service, counted from the log lines of every process.
    pub fn injected_crashes(&self) -> Vec<(&'static str, usize)> {
        let crashes = |services: Vec<&Service>| -> usize {
            services.iter().flat_map(|s| s.lines()).filter(|l| l.contains("(injected fault: ")).count()
        };
        let payments = self.payments.iter().chain(&self.killed_payments).collect();
        let notifications = std::iter::once(&self.notification).chain(&self.killed_notifications).collect();
        vec![
            ("order-service", crashes(vec![&self.orders])),
            ("payment-service", crashes(payments)),
            ("notification-service", crashes(notifications)),
        ]
    }
}

fn start_payment(broker: &Broker, seed: u64, instance: usize) -> Service {
    let (id, seed) = (format!("payment-{instance}"), (seed + instance as u64).to_string());
    // Odd instances crash by panicking, even ones by returning errors.
    let mode = if instance % 2 == 1 { "panic" } else { "error" };
    let args = ["--instance-id", &id, "--decline-rate", "0.1", "--seed", &seed, "--crash-rate", CRASH_RATE];
    let faults = ["--crash-actor", "any", "--crash-mode", mode, "--broker-wait-secs", "0"];
    Service::start("payment-service", broker, &[&args[..], &faults[..]].concat())
}

fn start_notification(broker: &Broker, seed: u64) -> Service {
    let seed = (seed + 100).to_string();
    let args = ["--instance-id", "notification-1", "--seed", &seed, "--crash-rate", CRASH_RATE];
    let faults = ["--crash-actor", "any", "--crash-mode", "error", "--broker-wait-secs", "0"];
    Service::start("notification-service", broker, &[&args[..], &faults[..]].concat())
}

/// How many different orders the `lines` email.
pub fn distinct_emails(lines: &[String]) -> usize {
    EMAILED
        .iter()
        .flat_map(|m| harness::count_orders(lines, m).into_keys())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}
