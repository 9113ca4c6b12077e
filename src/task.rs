//! Tasks tied to the value that owns them.

/// Aborts its task when dropped: a stream's producer when the response goes, a watcher's
/// forwarders and fill when its session with the bus ends.
pub struct AbortOnDrop<T = ()>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
