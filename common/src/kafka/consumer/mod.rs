//! The consumer: the actor ([`actor`]) fed by its reader task ([`reader_task`],
//! [`messages`]), the one ledger of its events ([`offsets`], per partition
//! [`partition_offsets`], each with its [`stall_watch`]), which partitions it
//! fetches ([`read_gate`]), and its place in the group ([`group`],
//! [`hand_over`], [`store_mark`]).

pub mod actor;
pub mod group;
pub mod hand_over;
pub mod messages;
pub mod offsets;
pub mod partition_offsets;
pub mod read_gate;
pub mod reader_task;
pub mod stall_watch;
pub mod store_mark;
