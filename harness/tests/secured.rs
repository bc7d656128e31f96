//! Secured brokers, end to end: the services reach a TLS broker, and a TLS
//! broker that requires SASL/SCRAM, through `-X` and `--kafka-config`; clients
//! without what it takes are refused, and no secret is ever logged.

use harness::{assert_exactly_once, count_orders, errors, Broker, Security, ServiceProcess, NOTIFIED};
use std::time::Duration;

const ORDERS: u64 = 200;
const PASSWORD: &str = "pa55-w0rd-never-logged";

/// Runs `ORDERS` orders through the three services started by `start`, and
/// checks each is notified exactly once and no service logged an error.
fn orders_flow(start: impl Fn(&str, &[&str]) -> ServiceProcess) -> Vec<ServiceProcess> {
    let mut notification = start("notification-service", &[]);
    let mut payment = start("payment-service", &[]);
    let mut orders = start("order-service", &["--count", "200", "--rate", "0"]);
    let status = orders.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "order-service exited with {status}");
    notification.wait_until("every order is notified", Duration::from_secs(60), |lines| {
        count_orders(lines, NOTIFIED).len() as u64 >= ORDERS
    });
    payment.stop_gracefully(Duration::from_secs(30));
    notification.stop_gracefully(Duration::from_secs(30));
    assert_exactly_once(&count_orders(&notification.lines(), NOTIFIED), 1001..=1000 + ORDERS, "notified");
    let services = vec![orders, payment, notification];
    for service in &services {
        let lines = service.lines();
        assert!(errors(&lines).is_empty(), "{} logged errors: {:#?}", service.name, errors(&lines));
    }
    services
}

/// Starts payment-service with `args` and `RUST_LOG=rust_log` against `broker` and
/// asserts the broker refuses it: it exits 1 after its short start-up wait, saying why in `cause`.
fn refused(broker: &Broker, args: &[&str], rust_log: &str, cause: &str) -> ServiceProcess {
    let all = [&["--broker-wait-secs", "3"], args].concat();
    let mut payment = ServiceProcess::start_logging("payment-service", &broker.address, &all, rust_log);
    let status = payment.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "payment-service was let in with {args:?}");
    let lines = payment.lines();
    assert!(lines.iter().any(|l| l.contains("cannot reach the Kafka broker")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains(cause)), "no {cause:?} in {lines:#?}");
    payment
}

/// `-X KEY=VALUE` for each property.
fn x_flags(properties: impl IntoIterator<Item = String>) -> Vec<String> {
    properties.into_iter().flat_map(|p| ["-X".to_string(), p]).collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_tls_broker_lets_in_only_clients_that_trust_its_certificate() {
    let broker = Broker::start_secured(Security { tls: true, user: None });
    // notification-service gets the properties as -X flags, the others as --kafka-config.
    let x_flags = x_flags(broker.client_properties());
    orders_flow(|name, args| match name {
        "notification-service" => {
            ServiceProcess::start_at(name, &broker.address, &[&strs(&x_flags)[..], args].concat())
        }
        _ => ServiceProcess::start(name, &broker, args),
    });
    refused(&broker, &[], "info", "BrokerTransportFailure");
    assert!(broker.log().contains("tls handshake failed"), "the broker does not say why it refused");
    refused(&broker, &["-X", "security.protocol=SSL"], "info", "certificate verify failed");
}

#[test]
fn a_sasl_scram_broker_over_tls_lets_in_only_its_user_and_no_secret_is_logged() {
    let user = ("pipeline".to_string(), PASSWORD.to_string());
    let broker = Broker::start_secured(Security { tls: true, user: Some(user) });
    let mut services = orders_flow(|name, args| ServiceProcess::start(name, &broker, args));

    let properties = broker.client_properties();
    let tls_only =
        properties.iter().filter(|p| !p.starts_with("sasl.")).map(|p| p.replace("SASL_SSL", "SSL"));
    services.push(refused(&broker, &strs(&x_flags(tls_only)), "info", "BrokerTransportFailure"));
    assert!(
        broker.log().contains("client sent a request before it authenticated"),
        "the broker does not say why"
    );
    let wrong_password = properties.iter().map(|p| match p.starts_with("sasl.password=") {
        true => "sasl.password=not-the-password".to_string(),
        false => p.clone(),
    });
    // With librdkafka's own debug output on security and configuration: secrets stay masked there too.
    let wrong = x_flags(wrong_password.chain(["debug=security,conf".to_string()]));
    services.push(refused(&broker, &strs(&wrong), "info,librdkafka=debug", "SASL authentication error"));
    let dump = services[services.len() - 1].lines();
    assert!(
        dump.iter().any(|l| l.contains("sasl.password = [redacted]")),
        "no configuration dump: {dump:#?}"
    );

    for service in &services {
        let lines = service.lines();
        for secret in [PASSWORD, "not-the-password"] {
            let leaks: Vec<&String> = lines.iter().filter(|l| l.contains(secret)).collect();
            assert!(leaks.is_empty(), "{} logged a password: {leaks:#?}", service.name);
        }
    }
    let payment_lines = services[1].lines();
    assert!(
        payment_lines.iter().any(|l| l.contains("client properties: ") && l.contains("sasl.password=******")),
        "payment-service does not show its client properties, masked"
    );
}

#[test]
fn bad_client_properties_are_usage_errors_that_never_echo_a_secret() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["-X", "secuirty.protocol=SSL"],
            r#"a -X value is refused by librdkafka: No such configuration property: "secuirty.protocol""#,
        ),
        (&["-X", "sasl.password:hunter2"], "a -X value is not KEY=VALUE"),
        (&["--kafka-config", "/nonexistent/client.properties"], "--kafka-config: cannot read /nonexistent"),
    ];
    for (args, why) in cases {
        let refused = harness::run("payment-service", args);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(why) && !stderr.contains("hunter2"), "{args:?}: {stderr}");
    }
}
