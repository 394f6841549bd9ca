//! CPU and memory limits of app instances, and the epoch ticker that drives the CPU limit.
//!
//! Invariants:
//! - Each event (and each instantiation) runs under a budget of `deadline_ticks` epoch ticks
//!   of running time; the epoch callback yields to the executor on every tick, so a spinning
//!   app never holds an executor thread for more than one tick at a time, and it traps with
//!   `Trap::Interrupt` once the budget is spent.
//! - The memory limiter caps the sum of all linear memories of one store at
//!   `max_memory_bytes` and records that the cap was hit, so that the resulting trap is
//!   reported as out-of-memory rather than as an ordinary trap.
//! - The ticker thread stops when the `Ticker` is dropped (the runtime and every instance
//!   hold it through an `Arc`, so deadlines keep advancing while any instance lives).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Engine, ResourceLimiter, UpdateDeadline};

/// Most tables an instance may hold entries for, summed; Rust components need a few
/// hundred function-table entries.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Per-store memory and table cap that remembers whether the app hit it.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max_memory_bytes: usize,
    used_memory_bytes: usize,
    last_growth: usize,
    exceeded: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(max_memory_bytes: usize) -> Self {
        MemoryLimiter {
            max_memory_bytes,
            used_memory_bytes: 0,
            last_growth: 0,
            exceeded: false,
        }
    }

    /// True once a memory growth was refused because of the cap.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.used_memory_bytes.saturating_add(growth);
        if total > self.max_memory_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        self.used_memory_bytes = total;
        self.last_growth = growth;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The growth we allowed did not happen (the memory's own maximum, or the OS).
        self.used_memory_bytes = self.used_memory_bytes.saturating_sub(self.last_growth);
        self.last_growth = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// The running-time budget of the event in progress, in epoch ticks.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    ticks_left: u64,
}

impl Deadline {
    /// Starts a new budget; the caller also sets the store's epoch deadline to one tick.
    pub(crate) fn reset(&mut self, ticks: u64) {
        self.ticks_left = ticks;
    }

    /// Called from the epoch callback once per tick of running time.
    pub(crate) fn on_tick(&mut self) -> UpdateDeadline {
        self.ticks_left = self.ticks_left.saturating_sub(1);
        if self.ticks_left == 0 {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        }
    }
}

/// Counters of app failures, for metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) instances: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) traps: AtomicU64,
    pub(crate) deadlines: AtomicU64,
    pub(crate) out_of_memory: AtomicU64,
}

/// A snapshot of the runtime's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuntimeStats {
    /// Instances created since the runtime started.
    pub instances: u64,
    /// Events delivered into wasm since the runtime started.
    pub events: u64,
    /// Events (or instantiations) that ended in a trap other than the two below.
    pub traps: u64,
    /// Events that ran past their CPU deadline.
    pub deadlines: u64,
    /// Events that tried to grow memory past the cap.
    pub out_of_memory: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> RuntimeStats {
        RuntimeStats {
            instances: self.instances.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
            deadlines: self.deadlines.load(Ordering::Relaxed),
            out_of_memory: self.out_of_memory.load(Ordering::Relaxed),
        }
    }
}

/// A plain thread that increments the engine's epoch every `tick`.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pbx-plugin-epoch".into())
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cap_is_summed_over_memories_and_remembered() {
        let mut l = MemoryLimiter::new(10 * 65536);
        assert!(l.memory_growing(0, 6 * 65536, None).unwrap_or(false));
        assert!(l.memory_growing(0, 4 * 65536, None).unwrap_or(false));
        assert!(!l.exceeded());
        assert!(!l.memory_growing(4 * 65536, 5 * 65536, None).unwrap_or(true));
        assert!(l.exceeded());
    }

    #[test]
    fn deadline_interrupts_after_its_ticks() {
        let mut d = Deadline::default();
        d.reset(3);
        assert!(matches!(d.on_tick(), UpdateDeadline::Yield(1)));
        assert!(matches!(d.on_tick(), UpdateDeadline::Yield(1)));
        assert!(matches!(d.on_tick(), UpdateDeadline::Interrupt));
    }
}
