//! The trace server (issue 18, docs/trace.md): it sets the classes of events the kernel
//! records, drains the kernel's per-core rings once per period of its budget, merges
//! them into one stream in time order (`gaon_trace::merge`) and writes the stream
//! (`gaon_trace::stream`) to a file on the host through QEMU's semihosting
//! (`scripts/trace` runs QEMU so), or, with `output = "discard"`, only counts them (to
//! measure what tracing costs). With `stop_after_ms` it stops after that long,
//! writes what is left and exits. It prints on the kernel console (its entry needs
//! `debug = true`). With a `trace` channel it serves its control interface
//! (`idl/trace.idl`: start, stop, classes, flush) between drains, once a period.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
include!(concat!(env!("OUT_DIR"), "/trace.rs"));

#[cfg(target_os = "none")]
mod app {
    use gaon_trace::merge::Merger;
    use gaon_trace::stream::{Extra, Header, Source, extra};
    use libl4::gaon_abi::trace::{self, Record};
    use libl4::mmio::Mmio;
    use libl4::rpc::{Dispatch, Incoming};
    use libl4::semihosting::File;
    use libl4::server::{Handler, Server};
    use libl4::syscall::yield_budget;
    use libl4::time::{counter, counter_hz, us_to_ticks};
    use libl4::{debug_println, start};
    use zerocopy::IntoBytes;

    use crate::trace as ctl;

    libl4::serves_optional!(ctl::INTERFACE);

    /// The file the stream goes to, in QEMU's working directory.
    const OUTPUT: &str = "gaon-trace.bin";
    /// Cores with a ring.
    const CORES: usize = trace::RING_COUNT;
    /// Records waiting per core.
    const QUEUE: usize = 256;
    /// Records written to the host at once (4 KiB).
    const BATCH: usize = 128;
    /// Drains in one period at most.
    const ROUNDS: usize = 16;
    /// `output = "discard"` (the rings grant's word).
    const OUTPUT_DISCARD: u64 = 1;

    /// What the server keeps while it traces.
    struct Tracer {
        rings: Mmio,
        control: libl4::cap::TraceControl,
        /// Where the stream goes (`None`: nowhere, `output = "discard"`).
        out: Option<File>,
        merger: Merger<CORES, QUEUE>,
        /// Per core: the next record to read, and the ring's lost count seen.
        tails: [u64; CORES],
        lost: [u64; CORES],
        /// Records the server itself dropped (out of a ring's time order), to report.
        dropped: [u64; CORES],
        batch: heapless::Vec<Record, BATCH>,
        written: u64,
        /// The classes chosen (recorded while `recording`).
        classes: u64,
        recording: bool,
    }

    impl Handler for Tracer {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            ctl::dispatch(self, msg)
        }
    }

    impl ctl::TraceServer for Tracer {
        fn start(&mut self, _client: u64) -> Result<(), ctl::TraceError> {
            if self.recording {
                return Err(ctl::TraceError::NoChange);
            }
            self.control
                .set_mask(self.classes)
                .map_err(|_| ctl::TraceError::Kernel)?;
            self.recording = true;
            debug_println!("trace: recording classes {:#x} again", self.classes);
            Ok(())
        }

        fn stop(&mut self, _client: u64) -> Result<(), ctl::TraceError> {
            if !self.recording {
                return Err(ctl::TraceError::NoChange);
            }
            self.control
                .set_mask(trace::BOOT_CLASSES.bits())
                .map_err(|_| ctl::TraceError::Kernel)?;
            self.recording = false;
            debug_println!("trace: stopped (thread events only)");
            Ok(())
        }

        fn set_classes(&mut self, _client: u64, classes: u64) -> Result<u64, ctl::TraceError> {
            if classes & !trace::Class::all().bits() != 0 {
                return Err(ctl::TraceError::BadClasses);
            }
            let classes = classes | trace::BOOT_CLASSES.bits();
            if self.recording {
                self.control.set_mask(classes).map_err(|_| ctl::TraceError::Kernel)?;
            }
            Ok(core::mem::replace(&mut self.classes, classes))
        }

        fn flush(&mut self, _client: u64) -> Result<u64, ctl::TraceError> {
            self.round();
            Ok(self.written)
        }
    }

    impl Tracer {
        /// Read core `cpu`'s record `n`.
        fn record(&self, cpu: usize, n: u64) -> Record {
            let off = trace::record_offset(cpu, n) as u64;
            Record::from_words(core::array::from_fn(|i| self.rings.read64(off + 8 * i as u64)))
        }

        /// Take what core `cpu`'s ring has (as much as its queue holds), give the space
        /// back, and say up to when that core is complete. `now` was read before. The
        /// records it took.
        fn drain(&mut self, cpu: usize, now: u64) -> u64 {
            let base = trace::ring_offset(cpu) as u64;
            let head = self.rings.read64(base + trace::HEAD_OFFSET as u64);
            // The records below `head` were written before it (the kernel's release).
            core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
            let start = self.tails[cpu];
            let mut n = start;
            let mut last = None;
            while n < head && self.merger.room(cpu) > 0 {
                let r = self.record(cpu, n);
                // A ring is in time order; were a record not, it goes, counted.
                if self.merger.push(cpu, r).is_ok() {
                    last = Some(r.time);
                } else {
                    self.dropped[cpu] += 1;
                }
                n += 1;
            }
            if n > start {
                if self.control.consume(cpu as u64, n).is_ok() {
                    self.tails[cpu] = n;
                } else {
                    // Someone else gave records back: go on from the kernel's tail.
                    self.tails[cpu] = self.rings.read64(base + trace::TAIL_OFFSET as u64);
                }
            }
            if n == head {
                let lost = self.rings.read64(base + trace::LOST_OFFSET as u64) + self.dropped[cpu];
                if lost > self.lost[cpu] {
                    // Not before what this core already gave the merge.
                    let at = now.max(self.merger.last_time(cpu).unwrap_or(0));
                    let r = extra(at, cpu as u8, Extra::Lost, Source::Server, 0, lost - self.lost[cpu], 0);
                    if self.merger.push(cpu, r).is_ok() {
                        self.lost[cpu] = lost;
                    }
                }
                self.merger.complete_to(cpu, now);
            } else if let Some(t) = last {
                self.merger.complete_to(cpu, t);
            }
            n - start
        }

        /// Queue `r` for the host, writing a full batch.
        fn emit(&mut self, r: Record) {
            if self.batch.push(r).is_err() {
                self.flush_batch();
                let _ = self.batch.push(r);
            }
        }

        fn flush_batch(&mut self) {
            let mut bytes = [0u8; BATCH * trace::RECORD_BYTES];
            let mut len = 0;
            for r in &self.batch {
                bytes[len..len + trace::RECORD_BYTES].copy_from_slice(r.as_bytes());
                len += trace::RECORD_BYTES;
            }
            if self.out.as_mut().is_none_or(|f| f.write(&bytes[..len]).is_ok()) {
                self.written += self.batch.len() as u64;
            }
            self.batch.clear();
        }

        /// One period's work: drain every ring, write what is complete, again while
        /// the rings still had records (at most [`ROUNDS`] times: the budget ends it
        /// first on a busy system, and the next period goes on).
        fn round(&mut self) {
            for _ in 0..ROUNDS {
                // Records stamped before this are in the rings by now (the kernel
                // stamps and publishes a record within one kernel entry).
                let now = counter().saturating_sub(us_to_ticks(100));
                let mut took = 0;
                for cpu in 0..CORES {
                    took += self.drain(cpu, now);
                }
                while let Some(r) = self.merger.take() {
                    self.emit(r);
                }
                self.flush_batch();
                if took == 0 {
                    break;
                }
            }
        }

        /// The end: everything left, in order (the rings drained until empty).
        fn finish(&mut self) {
            for _ in 0..ROUNDS * 64 {
                let now = counter();
                let mut took = 0;
                for cpu in 0..CORES {
                    took += self.drain(cpu, now);
                }
                while let Some(r) = self.merger.take() {
                    self.emit(r);
                }
                if took == 0 {
                    break;
                }
            }
            while let Some(r) = self.merger.flush() {
                self.emit(r);
            }
            self.flush_batch();
        }
    }

    pub fn run() -> u8 {
        let (Ok((control, classes, stop_ms)), Ok(rings)) = (start::trace_control("trace_control"), Mmio::trace_rings())
        else {
            debug_println!(
                "trace: no `trace_control` or `trace_rings`: this server needs `[trace]` in the description"
            );
            return 1;
        };
        let start = counter();
        let discard = start::trace_rings("trace_rings").is_ok_and(|(_, output)| output == OUTPUT_DISCARD);
        let out = if discard {
            None
        } else {
            let Ok(mut f) = File::create(OUTPUT) else {
                debug_println!(
                    "trace: cannot create {OUTPUT} on the host (QEMU needs -semihosting-config enable=on,userspace=on: scripts/trace runs it so)"
                );
                return 1;
            };
            if f.write(Header::new(counter_hz(), CORES as u32, start).as_bytes())
                .is_err()
            {
                debug_println!("trace: cannot write {OUTPUT}");
                return 1;
            }
            Some(f)
        };
        let before = match control.set_mask(classes) {
            Ok(b) => b,
            Err(e) => {
                debug_println!("trace: the kernel refused the classes {classes:#x}: {e:?}");
                return 1;
            }
        };
        debug_println!(
            "trace: recording classes {classes:#x} {}",
            if discard {
                "(drained and counted only)"
            } else {
                "to gaon-trace.bin"
            }
        );
        // From where the kernel's tails are (0 unless someone read before).
        let tails = core::array::from_fn(|cpu| rings.read64((trace::ring_offset(cpu) + trace::TAIL_OFFSET) as u64));
        let mut t = Tracer {
            rings,
            control,
            out,
            merger: Merger::new(),
            tails,
            lost: [0; CORES],
            dropped: [0; CORES],
            batch: heapless::Vec::new(),
            written: 0,
            classes,
            recording: true,
        };
        // The control channel, if the description gives the server one.
        let server = start::serve("trace").ok().map(|e| Server {
            ep: e.0,
            reply: start::REPLY,
            cap_slot: None,
        });
        let end = (stop_ms != 0).then(|| start + us_to_ticks(stop_ms.saturating_mul(1000)));
        loop {
            t.round();
            if let Some(s) = &server
                && let Err(e) = s.poll(&mut t, 8)
            {
                debug_println!("trace: the control channel failed: {e:?}");
            }
            if end.is_some_and(|e| counter() >= e) {
                break;
            }
            yield_budget();
        }
        // Back to what is recorded at boot (the root set the classes before this server
        // ran, so `before` is them too).
        let _ = (before, t.control.set_mask(trace::BOOT_CLASSES.bits()));
        t.finish();
        let lost: u64 = t.lost.iter().sum();
        debug_println!("trace: done: {} records, {lost} lost", t.written);
        if let Some(f) = t.out.take() {
            let _ = f.close();
        }
        0
    }
}

libl4::main!(app::run);
