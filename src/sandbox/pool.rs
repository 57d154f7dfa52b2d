//! Dedicated sandbox threads fed by a bounded queue.
//!
//! Guests run on plain OS threads with large stacks (wasmtime's `max_wasm_stack` must stay below
//! the thread's stack, or a deep recursion would abort the process), never on the async
//! runtime. A job that finds the queue full is refused at once with a retry hint, so a burst of
//! submissions degrades into "busy, retry in N s" instead of unbounded waiting.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use super::Sandbox;

const WORKER_STACK_BYTES: usize = 64 << 20;

type Job = Box<dyn FnOnce(&Sandbox) + Send + 'static>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the grader is busy; retry in {retry_after_secs} s")]
pub struct Busy {
    pub retry_after_secs: u64,
}

pub struct SandboxPool {
    sender: SyncSender<Job>,
}

impl SandboxPool {
    /// `workers` threads; at most `queue` jobs wait beyond those running.
    pub fn new(
        sandbox: Arc<Sandbox>,
        workers: usize,
        queue: usize,
    ) -> std::io::Result<SandboxPool> {
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let sandbox = Arc::clone(&sandbox);
            std::thread::Builder::new()
                .name(format!("sandbox-{index}"))
                .stack_size(WORKER_STACK_BYTES)
                .spawn(move || worker(&receiver, &sandbox))?;
        }
        Ok(SandboxPool { sender })
    }

    /// Queues `job` at once (or refuses it when the queue is full); the receiver yields its
    /// result. Does not block.
    pub fn submit<R, F>(&self, job: F) -> Result<tokio::sync::oneshot::Receiver<R>, Busy>
    where
        R: Send + 'static,
        F: FnOnce(&Sandbox) -> R + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let boxed: Job = Box::new(move |sandbox| {
            let _ = tx.send(job(sandbox));
        });
        match self.sender.try_send(boxed) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(Busy {
                retry_after_secs: 2,
            }),
            Err(TrySendError::Disconnected(_)) => Err(Busy {
                retry_after_secs: 10,
            }),
        }
    }

    /// Queues `job` and waits for its result without blocking the async runtime.
    pub async fn run<R, F>(&self, job: F) -> Result<R, Busy>
    where
        R: Send + 'static,
        F: FnOnce(&Sandbox) -> R + Send + 'static,
    {
        let rx = self.submit(job)?;
        // A worker that panicked drops the sender: report it as busy rather than hang.
        rx.await.map_err(|_| Busy {
            retry_after_secs: 2,
        })
    }
}

fn worker(receiver: &Mutex<Receiver<Job>>, sandbox: &Sandbox) {
    loop {
        let job = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        // A panic inside one job must not take the worker down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(sandbox)));
        if result.is_err() {
            tracing::error!("a sandbox job panicked");
        }
    }
}
