//! The fetches in flight as the status page shows them: digest, origin, progress, clients.

use super::coalesce::{FlightState, Flights};

/// A running fetch as the status page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FlightView {
    /// The digest.
    pub digest: String,
    /// Where it comes from.
    pub origin: String,
    /// The repository it was asked for (`origin/name`).
    pub repository: String,
    /// Bytes received (and verified-safe to send) so far.
    pub received: u64,
    /// Its size, when upstream announced one.
    pub size: Option<u64>,
    /// Clients reading it now.
    pub clients: usize,
    /// Seconds since it started.
    pub seconds: f64,
}

impl Flights {
    /// The running fetches, oldest first.
    pub fn views(&self) -> Vec<FlightView> {
        let mut views: Vec<FlightView> = self
            .active
            .entries()
            .iter()
            .map(|flight| {
                let (received, size) = match &*flight.state.borrow() {
                    FlightState::Streaming { spool, sendable } => (*sendable, spool.size),
                    FlightState::Done { size, .. } => (*size, Some(*size)),
                    _ => (0, None),
                };
                FlightView {
                    digest: flight.digest.to_string(),
                    origin: flight.origin.clone(),
                    repository: flight.repository.clone(),
                    received,
                    size,
                    clients: flight.state.receiver_count(),
                    seconds: flight.started.elapsed().as_secs_f64(),
                }
            })
            .collect();
        views.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        views
    }
}
