//! The producer: the actor ([`actor`]), its deliveries ([`deliveries`]), dead
//! letters ([`dead_letter`]), and which failures to publish are which ([`failure`]).

pub mod actor;
pub mod dead_letter;
pub mod deliveries;
pub mod failure;
