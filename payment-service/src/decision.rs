//! The payment decision: paid or declined, and why, from the order's id and
//! the service's seed alone, so a redelivered order gets the same answer
//! (`--decline-rate`, `--seed`).

use common::wire::event::{OrderEvent, Status};

/// Why a declined payment was declined (chosen per order, repeatably).
const DECLINE_REASONS: [&str; 3] = ["card declined", "insufficient funds", "card expired"];

/// Decides the payment of `order`. The decision depends only on the order id and
/// the seed, so a redelivered order gets the same answer.
pub fn charge(order: &OrderEvent, decline_rate: f64, seed: u64) -> OrderEvent {
    let draw = splitmix64(order.order_id ^ seed);
    let declined = (draw as f64 / u64::MAX as f64) < decline_rate;
    OrderEvent {
        status: if declined { Status::PaymentFailed } else { Status::PaymentSuccessful },
        reason: declined.then(|| DECLINE_REASONS[(draw % DECLINE_REASONS.len() as u64) as usize].to_string()),
        ..order.clone()
    }
}

/// A fast, well-mixed 64-bit hash (SplitMix64's finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(decline_rate: f64) -> Vec<Status> {
        (1000..3000)
            .map(|order_id| {
                let order = OrderEvent {
                    order_id,
                    user_id: 1,
                    amount: 10.0,
                    status: Status::Created,
                    reason: None,
                    created_at_ms: None,
                };
                charge(&order, decline_rate, 7).status
            })
            .collect()
    }

    #[test]
    fn declines_about_the_asked_share_and_repeatably() {
        let first = decisions(0.25);
        let declined = first.iter().filter(|&&s| s == Status::PaymentFailed).count();
        assert!((400..600).contains(&declined), "{declined} of 2000 declined at 25%");
        assert_eq!(first, decisions(0.25));
        assert!(decisions(0.0).iter().all(|&s| s == Status::PaymentSuccessful));
        assert!(decisions(1.0).iter().all(|&s| s == Status::PaymentFailed));
    }
}
