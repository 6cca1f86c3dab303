//! Registry API knowledge: pure parsing and rules, no I/O. Imports nothing else from pantry.

pub mod digest;
pub mod manifest;
pub mod name;
pub mod policy;
pub mod reference;
pub mod route;
pub mod tags;
