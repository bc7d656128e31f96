//! Which store a group member fences with, told to the group in its client id
//! (`payment-service.store-<id>`): the instances of a group must share one
//! store, or each would decide an order once, both at once, unawares (two
//! folders, two containers, two hosts each with a default SQLite file).
//!
//! The broker keeps each member's client id (and builds its member id from
//! it: `<client id>-<uuid>`), so a consumer reads the store ids of the live
//! members by describing its group: at start, before it joins, and after each
//! assignment. Commit metadata would outlive the members that wrote it, and
//! our broker does not keep it.

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use std::time::Duration;

/// What precedes the store's id in a client id.
const TAG: &str = ".store-";

/// How long describing the group may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The client id of `service`'s consumer, marked with its store's id if it has one.
pub fn client_id(service: &str, store_id: Option<&str>) -> String {
    match store_id {
        Some(id) => format!("{service}{TAG}{id}"),
        None => service.to_string(),
    }
}

/// The store id in a member's client id or member id, if it is marked.
fn store_of(id: &str) -> Option<&str> {
    let (_, rest) = id.split_once(TAG)?;
    let end = rest.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|id| !id.is_empty())
}

/// A live member of the group that fences with another store than this one's.
#[derive(Debug, PartialEq)]
pub struct OtherStore {
    group: String,
    ours: String,
    member: String,
    theirs: String,
}

impl std::fmt::Display for OtherStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let OtherStore { group, ours, member, theirs } = self;
        write!(
            f,
            "the instances of group {group} fence with two stores: this one with store {ours}, member {member} \
             with store {theirs} (each instance logs its store's URL and id at start). Give every instance of \
             the group the same --store: one PostgreSQL database for instances on several hosts, or one \
             SQLite file for those of one host"
        )
    }
}

/// The first live member of `group` whose store is not `ours`, if any.
pub fn other_store<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    group: &str,
    ours: &str,
) -> KafkaResult<Option<OtherStore>> {
    let groups = consumer.fetch_group_list(Some(group), DESCRIBE_TIMEOUT)?;
    let members = groups.groups().iter().filter(|g| g.name() == group).flat_map(|g| g.members());
    Ok(members.into_iter().find_map(|member| {
        let theirs = store_of(member.client_id()).or_else(|| store_of(member.id()))?;
        (theirs != ours).then(|| OtherStore {
            group: group.to_string(),
            ours: ours.to_string(),
            member: member.id().to_string(),
            theirs: theirs.to_string(),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_carries_its_store_and_a_member_id_made_of_it_too() {
        let marked = client_id("payment-service", Some("3f2a9c0d11223344"));
        assert_eq!(marked, "payment-service.store-3f2a9c0d11223344");
        assert_eq!(store_of(&marked), Some("3f2a9c0d11223344"));
        let member = format!("{marked}-568d5aac-b5d6-4af9-b2a3-9d23830e0552");
        assert_eq!(store_of(&member), Some("3f2a9c0d11223344"), "the uuid is not part of the id");
        assert_eq!(store_of(&client_id("payment-service", None)), None);
        assert_eq!(store_of("rdkafka-568d5aac"), None);
    }
}
