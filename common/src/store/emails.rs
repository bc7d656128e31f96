//! What notification-service records: a claim on each order's email, then that
//! it was sent; and what became of a claim.

/// What became of a claim on an order's email.
#[derive(Clone, Debug, PartialEq)]
pub enum EmailVerdict {
    /// Nobody else had claimed it, or the claim is this instance's: send it.
    Claimed,
    /// Someone claimed it over [`CLAIM_LEASE_MS`] ago and never recorded it as
    /// sent (they died, froze or are cut off): it may have gone out. Now ours:
    /// send it, counted in doubt.
    TakenOver { claimed_by: String },
    /// Another instance claimed it moments ago and may be sending it: ask again
    /// later, when it is sent or its claim has lapsed.
    Busy { claimed_by: String },
    /// This instance's claim was taken over while it was away (asked again with
    /// `renew`): the other instance sends it, not this one. Ask again later, as
    /// for `Busy`: should that instance die before it sends, its claim lapses
    /// and is taken over, so the email is not lost behind it.
    ClaimedElsewhere { claimed_by: String },
    /// It went out, recorded by `sent_by`: do not send it again.
    AlreadySent { sent_by: String },
}

/// How long a claim on an email holds off other instances: longer than the
/// consumers' session timeout (10 s), so that an instance which lost its
/// partitions while frozen finds, when it wakes, that its claims were taken
/// over only if it was away that long (see `EmailVerdict::ClaimedElsewhere`).
pub const CLAIM_LEASE_MS: i64 = 15_000;
