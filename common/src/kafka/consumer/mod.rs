//! The consumer: the actor ([`actor`]) fed by its reader task ([`reader_task`],
//! [`messages`]), the offsets it may store ([`offsets`]), which partitions it
//! fetches ([`read_gate`]), and its place in the group ([`group`], [`store_mark`]).

pub mod actor;
pub mod group;
pub mod messages;
pub mod offsets;
pub mod read_gate;
pub mod reader_task;
pub mod store_mark;
