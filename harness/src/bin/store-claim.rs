//! Claims the emails of a run of order ids in a store, as notification-service
//! does, and prints each verdict, one a line: for tests that run a store's
//! client under conditions of their own, such as a clock shifted by
//! libfaketime, which librdkafka's timed waits do not survive.
//!
//! Usage: `store-claim URL INSTANCE FIRST_ORDER_ID COUNT`

use common::store::StoreUrl;
use harness::store::{ask, open};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, instance, first, count] = &args[..] else {
        eprintln!("usage: store-claim URL INSTANCE FIRST_ORDER_ID COUNT");
        return ExitCode::from(2);
    };
    let (url, first, count) = match (StoreUrl::parse(url), first.parse::<u64>(), count.parse::<u64>()) {
        (Ok(url), Ok(first), Ok(count)) => (url, first, count),
        _ => {
            eprintln!("store-claim: {args:?}: give a store URL, an instance, and two numbers");
            return ExitCode::from(2);
        }
    };
    let store = open(&url, instance);
    for order_id in first..first + count {
        println!("{:?}", ask(|reply| store.claim_email(order_id, false, reply)));
    }
    ExitCode::SUCCESS
}
