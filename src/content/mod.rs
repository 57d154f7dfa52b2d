//! Lesson content: loading markdown from `content/`, rendering it once, and reloading it when an
//! instructor edits a file in dev mode.
//!
//! Data flow: files → [`Library::load`] (parse front matter, render markdown, cross-check) →
//! [`ContentStore`] (an atomically swapped `Arc<Library>` read by every request) → pages. A reload
//! publishes a change number on a broadcast channel; the app re-indexes search and tells open
//! browser tabs to refresh.

pub mod highlight;
pub mod lesson;
pub mod library;
pub mod markdown;
pub mod search;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::broadcast;

pub use lesson::{Lesson, Level};
pub use library::{Diagnostic, Library, Track};

pub struct ContentStore {
    dir: PathBuf,
    current: RwLock<Arc<Library>>,
    changes: broadcast::Sender<u64>,
}

impl ContentStore {
    pub fn load(dir: &Path) -> Arc<ContentStore> {
        let library = Library::load(dir);
        log_diagnostics(&library);
        let (changes, _) = broadcast::channel(16);
        Arc::new(ContentStore {
            dir: dir.to_path_buf(),
            current: RwLock::new(Arc::new(library)),
            changes,
        })
    }

    pub fn library(&self) -> Arc<Library> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the content tree again and swaps it in. Readers keep the old library until they
    /// finish their request.
    pub fn reload(&self) -> Arc<Library> {
        let library = Arc::new(Library::load(&self.dir));
        log_diagnostics(&library);
        match self.current.write() {
            Ok(mut guard) => *guard = library.clone(),
            Err(poisoned) => *poisoned.into_inner() = library.clone(),
        }
        // Nobody listening is fine: outside dev mode there may be no subscriber.
        let _ = self.changes.send(library.lessons().count() as u64);
        library
    }

    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Watches the content directory and reloads (debounced) on every change. The returned
    /// watcher must be kept alive for as long as watching should go on.
    pub fn watch(self: &Arc<Self>) -> notify::Result<notify::RecommendedWatcher> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    // A full channel already means "reload pending".
                    let _ = tx.try_send(());
                }
            })?;
        watcher.watch(&self.dir, RecursiveMode::Recursive)?;
        let store = Arc::clone(self);
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Editors write files in several steps; wait for the burst to settle.
                tokio::time::sleep(Duration::from_millis(150)).await;
                while rx.try_recv().is_ok() {}
                let store = Arc::clone(&store);
                let reloaded = tokio::task::spawn_blocking(move || store.reload()).await;
                if let Ok(library) = reloaded {
                    tracing::info!(lessons = library.lessons().count(), "content reloaded");
                }
            }
        });
        Ok(watcher)
    }
}

fn log_diagnostics(library: &Library) {
    for diagnostic in &library.diagnostics {
        tracing::warn!(%diagnostic, "content problem");
    }
}
