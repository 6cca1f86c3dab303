//! Accepting clients: the listener (connection limit, graceful shutdown), the per-connection handler
//! that tells proxy requests from admin requests, and the admin pages.

pub mod admin;
pub mod api;
pub mod handler;
pub mod listener;
pub mod page;
pub mod status;

pub use listener::Listener;
