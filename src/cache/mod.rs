//! The cache: a content-addressed store (cacache) of blobs and manifests by digest, single-flight
//! fetches that stream to every asker while they arrive, tag records, and access grants.
//!
//! Knows no TLS, CONNECT or sockets; upstream bytes come in as a body stream.

pub mod batch_writer;
pub mod blob;
pub mod blob_meta;
pub mod coalesce;
pub mod content;
pub mod evict;
pub mod flight_view;
pub mod grants;
pub mod hot;
pub mod idle_work;
pub mod in_use;
pub mod index;
pub mod inventory;
pub mod layout;
pub mod pinning;
pub mod range;
pub mod records;
pub mod respond;
pub mod store;
pub mod store_error;
pub mod tally;

pub use coalesce::Flights;
pub use store::Store;
