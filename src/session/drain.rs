//! Emptying the kernel's buffers while a session runs, on one design for every command: the
//! session's loop calls [`Drain::drain`] between checks of its stop conditions and
//! [`Drain::finish`] once the probes are detached, each handing every record to the command's
//! [`crate::session::Consumer`].
//!
//! A ring buffer is emptied by a consumer thread blocked in epoll on it ([`RingDrain`]). The
//! BPF side wakes it only once the ring is past a watermark (`ringbuf_flags` in
//! src/bpf/go_runtime.bpf.h): no wake-up per event, yet a burst never waits for a timer. The
//! thread copies records out in batches and hands them to the session's thread, which
//! decodes; so decoding never holds the ring full.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use libbpf_rs::{MapHandle, RingBufferBuilder};

/// Hands one record to the session's consumer.
pub type Handle<'h> = dyn FnMut(&[u8]) -> Result<()> + 'h;

/// What a session does between checks of its stop conditions.
pub trait Drain {
    /// Hands what the kernel delivered to `handle`, waiting at most `timeout` for something to
    /// arrive.
    fn drain(&mut self, timeout: Duration, handle: &mut Handle<'_>) -> Result<()>;
    /// Hands everything still in the kernel's buffers to `handle`; the probes are detached.
    fn finish(&mut self, handle: &mut Handle<'_>) -> Result<()>;
}

/// The drain of programs that aggregate in maps: nothing to empty, so it only waits.
pub struct Sleep;

impl Drain for Sleep {
    fn drain(&mut self, timeout: Duration, _: &mut Handle<'_>) -> Result<()> {
        std::thread::sleep(timeout);
        Ok(())
    }

    fn finish(&mut self, _: &mut Handle<'_>) -> Result<()> {
        Ok(())
    }
}

/// How long the consumer thread waits in epoll before reading a ring the BPF side did not
/// wake it for (the ring is below its watermark: events arrive slowly).
const QUIET_POLL: Duration = Duration::from_millis(10);
/// Batches in flight from the consumer to the session's thread. When decoding falls this far
/// behind, the consumer waits and the ring fills; the BPF side counts what does not fit.
const BATCHES_IN_FLIGHT: usize = 64;

/// The ring fill, in bytes, past which the BPF side wakes the consumer: a quarter of the
/// ring, so that the consumer starts while three quarters are still free for the burst.
pub fn wakeup_watermark(ring_bytes: u32) -> u64 {
    u64::from(ring_bytes / 4)
}

/// A ring buffer emptied by a consumer thread; the handle sees every record, in order, on the
/// session's thread.
pub struct RingDrain {
    batches: Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
    consumer: Option<JoinHandle<Result<()>>>,
}

impl RingDrain {
    /// Starts the consumer thread on ring buffer map `ring`.
    pub fn start<T: std::fmt::Debug>(ring: &libbpf_rs::MapImpl<'_, T>) -> Result<Self> {
        let ring = MapHandle::try_from(ring).context("opening the ring buffer")?;
        let (sender, batches) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let consumer = std::thread::Builder::new()
            .name("gotrace-ring".to_owned())
            .spawn(move || consume(&ring, &stopping, &sender))
            .context("starting the ring buffer consumer")?;
        Ok(RingDrain {
            batches,
            stop,
            consumer: Some(consumer),
        })
    }
}

/// Hands every record of `batch` (each framed by its length) to `handle`.
fn handle_batch(batch: &[u8], handle: &mut Handle<'_>) -> Result<()> {
    let mut rest = batch;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_ne_bytes(*len) as usize;
        let Some((record, tail)) = tail.split_at_checked(len) else {
            break;
        };
        handle(record)?;
        rest = tail;
    }
    Ok(())
}

impl Drain for RingDrain {
    fn drain(&mut self, timeout: Duration, handle: &mut Handle<'_>) -> Result<()> {
        let first = match self.batches.recv_timeout(timeout) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            // The consumer ended early: finish() says why.
            Err(RecvTimeoutError::Disconnected) => return self.finish(handle),
        };
        handle_batch(&first, handle)?;
        while let Ok(batch) = self.batches.try_recv() {
            handle_batch(&batch, handle)?;
        }
        Ok(())
    }

    fn finish(&mut self, handle: &mut Handle<'_>) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        // Until the consumer hangs up: its last batches hold the ring's last records.
        while let Ok(batch) = self.batches.recv() {
            handle_batch(&batch, handle)?;
        }
        match self.consumer.take() {
            Some(consumer) => consumer
                .join()
                .map_err(|_| anyhow!("the ring buffer consumer panicked"))?,
            None => Ok(()),
        }
    }
}

/// The consumer thread: waits in epoll, copies out every record, sends the batch; after
/// `stop`, one last pass reads what the ring still holds.
fn consume(ring: &MapHandle, stop: &AtomicBool, batches: &SyncSender<Vec<u8>>) -> Result<()> {
    block_stop_signals();
    let batch = Rc::new(RefCell::new(Vec::<u8>::new()));
    let filler = Rc::clone(&batch);
    let mut builder = RingBufferBuilder::new();
    builder.add(ring, move |record: &[u8]| {
        let mut batch = filler.borrow_mut();
        // A record is at most the ring's size (< 4 GiB).
        batch.extend_from_slice(&(record.len() as u32).to_ne_bytes());
        batch.extend_from_slice(record);
        0
    })?;
    let buffer = builder.build()?;
    loop {
        let last = stop.load(Ordering::SeqCst);
        match buffer.poll(QUIET_POLL) {
            // A signal for another thread can still interrupt epoll: only a wake-up.
            Err(err) if err.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            polled => polled?,
        }
        buffer.consume()?;
        let full = std::mem::take(&mut *batch.borrow_mut());
        if !full.is_empty() && batches.send(full).is_err() {
            return Ok(());
        }
        if last {
            return Ok(());
        }
    }
}

/// Keeps SIGINT and SIGTERM away from this thread: the session's thread handles them (its
/// lifecycle stops the session); here they would only interrupt epoll.
fn block_stop_signals() {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local sigset_t; pthread_sigmask only
    // changes this thread's mask and reads the set we pass.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
