//! Tasks tied to the value that owns them, and tasks that outlive their request.

use std::future::Future;

use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Aborts its task when dropped: a stream's producer when the response goes, a watcher's
/// forwarders and fill when its session with the bus ends.
pub struct AbortOnDrop<T = ()>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a change (a unit-file change, a unit action and its audit record) in a task of
/// its own, so that it finishes (or is undone) even when the request that asked for it
/// goes away: a client that disconnects drops the handler's future, and a change dropped
/// between installing its files and committing its revision would leave files that no
/// revision describes (tests/faults.rs measured it).
pub async fn to_completion<T, F>(
    state: &AppState,
    principal: &Principal,
    change: impl FnOnce(AppState, Principal) -> F,
) -> AppResult<T>
where
    T: Send + 'static,
    F: Future<Output = AppResult<T>> + Send + 'static,
{
    tokio::spawn(change(state.clone(), principal.clone()))
        .await
        .map_err(AppError::internal)?
}
