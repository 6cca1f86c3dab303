//! Walks over the whole store (counting it at start, eviction's scan) run on a thread of their own
//! at the lowest priority (nice 19, sched(7)): on a machine whose cores are busy serving, a walk
//! over a million files yields to the hits instead of taking a core's fair share while they wait,
//! and still always progresses (the idle class, `SCHED_IDLE`, could starve it on a machine that is
//! never idle, and eviction waits for the count). On a blocking-pool thread the priority would
//! stay with the thread and slow the hits that later run there, so each walk gets a thread.
//! Eviction's removals stay at normal priority: a hold of a digest being removed waits for its
//! unlink, which a preempted low-priority thread would draw out.

use thread_priority::{
    unix::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy, ThreadSchedulePolicy,
    },
    ThreadPriority,
};

/// Runs `work` on a new lowest-priority thread named `name`; `None` if no thread could be started or
/// the work panicked (both logged).
pub async fn run<T: Send + 'static>(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(name.to_string()).spawn(move || {
        lowest_priority();
        let _ = done.send(work());
    });
    if let Err(error) = spawned {
        tracing::warn!(name, %error, "cannot start a thread for a walk over the store");
        return None;
    }
    let result = result.await;
    if result.is_err() {
        tracing::error!(name, "a walk over the store failed (its thread panicked)");
    }
    result.ok()
}

/// Gives the calling thread the lowest priority (nice 19; lowering needs no privilege); a failure
/// only means the walk competes at normal priority.
fn lowest_priority() {
    let normal = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    if let Err(error) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, normal) {
        tracing::debug!(?error, "cannot lower a store walk's scheduling class");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_work_runs_at_nice_19_and_hands_back_its_result() {
        let stat =
            run("pantry-test-walk", || std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default())
                .await
                .expect("the walk ran");
        // proc(5): after the command's closing parenthesis, field 19 (nice) is the 17th
        let fields: Vec<&str> =
            stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
        assert_eq!(fields.get(16), Some(&"19"), "{stat}");
        assert_eq!(run("pantry-test-walk", || 41 + 1).await, Some(42));
    }
}
