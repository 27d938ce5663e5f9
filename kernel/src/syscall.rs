//! Syscall entry and user faults. The numbers and the register convention come from
//! `gaon_abi::syscall`; nothing here trusts a register value.

use gaon_abi::{Error, Syscall};

use crate::arch::{cpu, exception::TrapFrame, exit};
use crate::{console, kprintln};

/// ESR_EL2 exception class of an SVC from AArch64.
const EC_SVC64: u64 = 0x15;

/// A synchronous exception from EL0/EL1: a syscall or a fault.
pub fn handle_lower_sync(frame: &mut TrapFrame) {
    let ec = (frame.esr >> 26) & 0x3f;
    if ec == EC_SVC64 {
        let result = dispatch(frame);
        frame.x[0] = match result {
            Ok(()) => 0,
            Err(e) => e as u64,
        };
    } else {
        user_fault(frame);
    }
}

fn dispatch(frame: &mut TrapFrame) -> Result<(), Error> {
    let number = frame.x[gaon_abi::syscall::SYSCALL_NUMBER_REG];
    match Syscall::from_raw(number).ok_or(Error::UnknownSyscall)? {
        Syscall::DebugPutChar => {
            let byte = u8::try_from(frame.x[0]).map_err(|_| Error::InvalidArgument)?;
            console::put_byte(byte);
        }
        Syscall::DebugHalt => {
            let status = u32::try_from(frame.x[0])
                .ok()
                .filter(|&s| s <= 255)
                .ok_or(Error::InvalidArgument)?;
            kprintln!(
                "kernel: halt requested with status {status} after {} ticks",
                cpu::total_ticks()
            );
            exit::exit(status);
        }
        Syscall::DebugTicks => frame.x[1] = cpu::total_ticks(),
        Syscall::Yield => {}
    }
    Ok(())
}

/// A user thread faulted. Until fault endpoints exist (kernel core), the thread is
/// suspended and reported; the kernel keeps running and idles.
fn user_fault(frame: &TrapFrame) -> ! {
    crate::arch::exception::report(frame, "user thread fault; thread suspended (no fault handler)");
    crate::boot::idle()
}
