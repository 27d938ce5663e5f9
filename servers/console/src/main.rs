//! The console server: a user-level UART driver (PL011 or Cadence) that offers the
//! `Console` IDL interface (`idl/console.idl`). Output from several clients is shown a
//! line at a time with each client's name as a prefix, the focused client's as it comes
//! (a prompt shows before its newline); input arrives by interrupt (or is polled on
//! every request where the board routes no UART interrupt) and is kept for the client
//! with the focus (see `mux`), which it signals when input waits for it if the client
//! gave it a notification (`notify_input`).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(any(target_os = "none", test))]
mod klog;
#[cfg(any(target_os = "none", test))]
mod mux;
#[cfg(target_os = "none")]
mod uart;

#[cfg(target_os = "none")]
mod app {
    use libl4::cap::{CNode, IrqHandler};
    use libl4::gaon_abi::system::server_slot;
    use libl4::idl::console::{self, ConsoleError, ConsoleServer};
    use libl4::ipc::CPtr;
    use libl4::rpc::{Dispatch, Incoming};
    use libl4::server::{Handler, RecvSlot, Server};
    use libl4::{ObjType, Rights, debug_println, start};

    use crate::klog;
    use crate::mux::{MAX_CLIENTS, Mux, ReadError};
    use crate::uart::Uart;

    /// The `kernel` client: the kernel log's lines (client badges start at 1).
    const KERNEL: u64 = 0;
    /// The notification bit the kernel signals when it wrote to its log.
    const LOG_BIT: u64 = 1 << 62;
    /// Where the console keeps the badged notification cap it binds the log with (the
    /// console has no heap, so no allocator hands this slot out).
    const LOG_NTFN_SLOT: u64 = server_slot::FIRST_FREE;
    /// Where a capability that comes with a request lands (`notify_input`).
    const RECV_SLOT: u64 = server_slot::FIRST_FREE + 1;
    /// Where client `i`'s input notification is kept: `INPUT_NTFN_SLOTS + i`, `i` the
    /// client's index in the `Mux` (so no allocator either).
    const INPUT_NTFN_SLOTS: u64 = server_slot::FIRST_FREE + 2;
    const _: () = assert!(INPUT_NTFN_SLOTS + MAX_CLIENTS as u64 <= server_slot::END);

    /// The kernel log page, read through the window the root server mapped.
    struct LogPage(libl4::mmio::Mmio);
    impl klog::Page for LogPage {
        fn read32(&self, off: usize) -> u32 {
            self.0.read(off as u64)
        }
        fn write32(&self, off: usize, v: u32) {
            self.0.write(off as u64, v);
        }
    }

    libl4::serves!(console::INTERFACE);

    struct Console {
        mux: Mux,
        uart: Uart,
        /// The receive interrupt and its notification bit, if the board gives one.
        irq: Option<(IrqHandler, u64)>,
        /// The kernel log, once bound.
        log: Option<(LogPage, klog::Reader)>,
    }

    impl Console {
        /// Print what the kernel wrote to its log as the `kernel` client's lines.
        fn drain_log(&mut self) {
            let Some((page, reader)) = &mut self.log else { return };
            let uart = &self.uart;
            let mux = &mut self.mux;
            let mut chunk: heapless::String<128> = heapless::String::new();
            let mut flush = |chunk: &mut heapless::String<128>| {
                mux.write(KERNEL, chunk, &mut |s: &str| uart.puts(s));
                chunk.clear();
            };
            let lost = reader.drain(page, &mut |b| {
                let ch = if b.is_ascii() && (b == b'\n' || !b.is_ascii_control()) {
                    char::from(b)
                } else {
                    '?'
                };
                if chunk.push(ch).is_err() {
                    flush(&mut chunk);
                    let _ = chunk.push(ch);
                }
            });
            flush(&mut chunk);
            if lost != 0 {
                let _ = core::fmt::write(&mut chunk, format_args!("({lost} bytes of kernel output lost)\n"));
                flush(&mut chunk);
            }
        }

        /// Take over the kernel's console output, if the description gives the log.
        fn bind_log(&mut self) {
            let Ok(window) = libl4::mmio::Mmio::kernel_log() else {
                return;
            };
            let bound = CNode(start::CNODE)
                .mint(LOG_NTFN_SLOT, start::NOTIFICATION, Rights::all(), LOG_BIT)
                .and_then(|()| libl4::cap::DebugCap(server_slot::DEBUG).log_bind(LOG_NTFN_SLOT));
            match bound {
                Ok(()) => {
                    self.mux.set_name(KERNEL, "kernel");
                    self.log = Some((LogPage(window), klog::Reader::default()));
                }
                Err(e) => debug_println!("console: cannot take the kernel log: {e:?}"),
            }
        }

        /// Move what the UART received into the input buffer, echoing it.
        fn drain(&mut self) {
            let uart = &self.uart;
            while let Some(b) = uart.get() {
                if let Some(echo) = self.mux.input(b, &mut |s: &str| uart.puts(s)) {
                    uart.put(if echo == b'\n' { b'\r' } else { echo });
                    if echo == b'\n' {
                        uart.put(b'\n');
                    }
                }
            }
            self.wake();
        }

        /// Signal the client input waits for, if it asked and has not been told.
        fn wake(&mut self) {
            if let Some(i) = self.mux.take_signal() {
                // Signalling never blocks. It fails only if the client's notification
                // was revoked (the slot is empty), and then nobody is left to tell.
                let _ = libl4::ipc::signal(INPUT_NTFN_SLOTS + i as u64);
            }
        }
    }

    impl ConsoleServer for Console {
        fn write(&mut self, client: u64, text: &str) -> u32 {
            let uart = &self.uart;
            self.mux.write(client, text, &mut |s: &str| uart.puts(s))
        }

        fn read(&mut self, client: u64, max: u32) -> Result<heapless::Vec<u8, 256>, ConsoleError> {
            self.mux.read(client, max as usize).map_err(|e| match e {
                ReadError::NotFocused => ConsoleError::NotFocused,
                ReadError::Empty => ConsoleError::Empty,
            })
        }

        fn set_name(&mut self, client: u64, name: &str) {
            self.mux.set_name(client, name);
        }

        fn focus(&mut self, client: u64) {
            let uart = &self.uart;
            self.mux.focus(client, &mut |s: &str| uart.puts(s));
        }

        fn set_echo(&mut self, client: u64, on: bool) {
            self.mux.set_echo(client, on);
        }

        fn notify_input(&mut self, client: u64, ntfn: CPtr) -> Result<(), ConsoleError> {
            // The CSpace is single-level: the received copy's CPtr is its slot index.
            // Anything refused stays in the receive slot, which the server loop empties.
            let cnode = CNode(start::CNODE);
            let signallable = cnode.identify(ntfn).is_ok_and(|(ty, _, rights)| {
                ty == ObjType::Notification as u64 + 1 && Rights::from_bits_truncate(rights).contains(Rights::WRITE)
            });
            if !signallable {
                return Err(ConsoleError::NotNotification);
            }
            let i = self.mux.notify_input(client).ok_or(ConsoleError::TooManyClients)?;
            let slot = INPUT_NTFN_SLOTS + i as u64;
            // The client's earlier notification, if any, makes way for this one.
            let _ = cnode.delete(slot);
            cnode.move_(slot, ntfn).map_err(|_| ConsoleError::NotNotification)
        }
    }

    impl Handler for Console {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            // Without an interrupt line, input is polled on every request (a read, or
            // any client's write), so the UART's FIFO is emptied as often as the
            // console is used; with one, only the interrupt moves input (so the system
            // test proves the interrupt path).
            if self.irq.is_none() {
                self.drain();
            }
            let answer = console::dispatch(self, msg);
            // A focus or a notification given may be news to a client.
            self.wake();
            answer
        }

        fn notified(&mut self, bits: u64) {
            if bits & LOG_BIT != 0 {
                self.drain_log();
            }
            if let Some((h, bit)) = self.irq
                && bits & bit != 0
            {
                // Clear first, then drain: a byte that arrives after the drain raises
                // the interrupt again instead of waiting unseen in the FIFO.
                self.uart.clear_rx_interrupt();
                self.drain();
                let _ = h.ack();
            }
        }
    }

    pub fn run() -> u8 {
        let Some(uart) = Uart::find() else {
            debug_println!("console: no `pl011` or `cadence` device memory in my description");
            return 1;
        };
        let Ok(ep) = start::serve("console") else {
            debug_println!("console: no `console` channel to serve");
            return 1;
        };
        let irq = start::irq("uart").ok();
        if irq.is_some() {
            uart.enable_rx_interrupt();
        }
        debug_println!(
            "console: {} UART, input by {}",
            uart.kind(),
            if irq.is_some() { "interrupt" } else { "polling on read" }
        );
        let mut c = Console {
            mux: Mux::new(),
            uart,
            irq,
            log: None,
        };
        c.bind_log();
        // Input that arrived before the interrupt was enabled raises none: take it now.
        // From here every byte is kept (`mux`, 512 bytes) until a client reads it.
        c.drain();
        Server {
            ep: ep.0,
            reply: start::REPLY,
            cap_slot: Some(RecvSlot {
                cnode: start::CNODE,
                index: RECV_SLOT,
                cptr: RECV_SLOT,
            }),
        }
        .run(&mut c)
    }
}

libl4::main!(app::run);
