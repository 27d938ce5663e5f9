//! The scheduling policy server (issue 17, docs/realtime.md): it manages the vCPUs of
//! the VMs whose `[[vm]]` has a `sched` table with Xen's credit scheduler and paper
//! 000's LL-boost, and enforces the policy only with kernel mechanisms: a scheduling
//! context per vCPU (configured through the SchedControls it holds), priorities, and
//! the timeout faults of the scheduling contexts, which come to its endpoint.
//!
//! The VMMs of those VMs are its clients on the `sched` channel (`idl/sched.idl`): they
//! register their vCPU threads, forward their guests' LL-boost and `SCHED_STATE`
//! hypercalls, and say when they inject a device's interrupt (a wake-up by I/O, for
//! BOOST). Its 10 ms tick is the user timer, through its IRQ handler. What it does with
//! each event is `gaon_sched::manage` (host-tested); this file is the kernel side.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
include!(concat!(env!("OUT_DIR"), "/sched.rs"));

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("gaon-sched-server is a Gaon server; build it for aarch64-unknown-none");
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod app {
    use gaon_sched::Reservation;
    use gaon_sched::credit::{Class, Config, Debit, MAX_BORROW_NS, VcpuId};
    use gaon_sched::manage::{self, Kernel, Manager, Settings, VmParams};
    use libl4::alloc::Heap;
    use libl4::cap::{CNode, IrqHandler, SchedContext, SchedControl, Tcb};
    use libl4::gaon_abi::Fault;
    use libl4::gaon_abi::hypercall::SchedClass;
    use libl4::gaon_abi::system::{
        MAX_SCHED_VMS, SCHED_BALANCE, SCHED_CONFIG_MAGIC, SCHED_CONFIG_VERSION, SCHED_EXACT_DEBIT, SCHED_FIXED,
        SCHED_LL_BOOST, SchedConfig, server_slot,
    };
    use libl4::ipc::CPtr;
    use libl4::rpc::{Dispatch, Incoming};
    use libl4::server::{FAULT_BADGE, Handler, RecvSlot, Server};
    use libl4::time::{counter, counter_hz};
    use libl4::{ObjType, Rights, println, start};
    use zerocopy::FromBytes;

    use crate::sched::{self, SchedError, SchedServer};

    libl4::serves!(sched::INTERFACE);

    /// How often the server reports what each vCPU used (ns): a line per vCPU.
    const REPORT_NS: u64 = 1_000_000_000;

    /// Most cores whose SchedControl it may hold.
    const MAX_CORES: usize = gaon_sched::credit::MAX_CORES;

    /// The kernel objects of each managed vCPU, in the manager's slot order.
    struct Caps {
        me: Tcb,
        /// Per slot: its thread, its scheduling context, its core.
        vcpus: heapless::Vec<(Tcb, SchedContext, u8), { gaon_sched::credit::MAX_VCPUS }>,
        /// SchedControl per core (0: not given).
        controls: [CPtr; MAX_CORES],
        hz: u64,
    }

    impl Caps {
        fn ns(&self, ticks: u64) -> u64 {
            u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(self.hz)).unwrap_or(u64::MAX)
        }

        fn ticks(&self, ns: u64) -> u64 {
            u64::try_from(u128::from(ns) * u128::from(self.hz) / 1_000_000_000).unwrap_or(u64::MAX)
        }

        fn now(&self) -> u64 {
            self.ns(counter())
        }
    }

    impl Kernel for Caps {
        fn set_priority(&mut self, v: VcpuId, priority: u8) -> bool {
            let Some(&(t, _, _)) = self.vcpus.get(v.index()) else {
                return false;
            };
            t.set_priority(u64::from(priority), self.me).is_ok()
        }

        fn configure(&mut self, v: VcpuId, budget_ns: u64, period_ns: u64) -> bool {
            let Some(&(_, sc, core)) = self.vcpus.get(v.index()) else {
                return false;
            };
            let control = SchedControl(self.controls[usize::from(core)]);
            // The kernel takes microseconds, at least 10.
            let us = |ns: u64| (ns / 1000).max(10);
            control
                .configure(sc, us(budget_ns), us(period_ns), u64::from(v.0) + 1)
                .is_ok()
        }

        fn runnable(&mut self, v: VcpuId) -> bool {
            let Some(&(t, _, _)) = self.vcpus.get(v.index()) else {
                return false;
            };
            // `ThreadState::Running`: running or waiting for a CPU.
            t.state().is_ok_and(|(state, _, _)| state == 1)
        }

        fn move_to(&mut self, v: VcpuId, core: u8, budget_ns: u64, period_ns: u64) -> bool {
            if usize::from(core) >= MAX_CORES || self.controls[usize::from(core)] == 0 {
                return false;
            }
            let Some(slot) = self.vcpus.get_mut(v.index()) else {
                return false;
            };
            let old = slot.2;
            slot.2 = core;
            let moved = self.configure(v, budget_ns, period_ns);
            if !moved {
                self.vcpus[v.index()].2 = old;
            }
            moved
        }

        fn usage(&mut self, v: VcpuId) -> Option<(u64, u64)> {
            let &(t, sc, _) = self.vcpus.get(v.index())?;
            // A thread deleted with its VMM leaves this slot empty.
            t.state().ok()?;
            let u = sc.usage().ok()?;
            Some((self.ns(u.consumed_ticks), self.ns(u.charged_at)))
        }
    }

    struct Sched {
        m: Manager,
        k: Caps,
        heap: Heap,
        /// The user timer's handler and its notification bit.
        timer: (IrqHandler, u64),
        /// Where a registered thread's capability arrives.
        recv: RecvSlot,
        /// This server's endpoint (for the timeout faults' badged copies).
        ep: CPtr,
        /// The description's VMs (names for the reports), and the next report's time.
        config: SchedConfig,
        next_report: u64,
    }

    impl Sched {
        /// `sched: usage t_us=T vm=NAME vcpu=N consumed_us=C ll_us=L windows=W`, a line
        /// per vCPU: the CPU time each consumed since it was registered (in LL-boost:
        /// `ll_us`, in `windows` LL-boost windows), as the kernel counted it.
        fn report(&self, now: u64) {
            for (badge, vcpu, u) in self.m.usage() {
                let name = self.vm_name(badge);
                println!(
                    "sched: usage t_us={} vm={name} vcpu={vcpu} consumed_us={} ll_us={} windows={}",
                    now / 1000,
                    u.consumed_ns / 1000,
                    u.ll_ns / 1000,
                    u.windows
                );
            }
        }

        /// The description's name of the VM whose VMM has `badge` (`?` if none).
        fn vm_name(&self, badge: u64) -> &str {
            self.config.vms.iter().find(|v| v.badge == badge).map_or("?", |v| {
                let len = v.name.iter().position(|&b| b == 0).unwrap_or(v.name.len());
                core::str::from_utf8(&v.name[..len]).unwrap_or("?")
            })
        }

        /// Set the timer for the manager's next deadline.
        fn arm(&self) {
            let at = self.k.ticks(self.m.deadline());
            if let Err(e) = self.timer.0.set_timer(Some(at)) {
                println!("sched: cannot set the timer: {e:?}");
            }
        }

        /// Give the thread in the receive slot a scheduling context and this server's
        /// endpoint for its timeout faults; it becomes slot `self.k.vcpus.len()`.
        fn take_thread(&mut self, tcb: CPtr) -> Result<(Tcb, SchedContext, u8), SchedError> {
            let cnode = CNode(start::CNODE);
            let is_tcb = cnode.identify(tcb).is_ok_and(|(ty, _, rights)| {
                ty == ObjType::Tcb as u64 + 1 && Rights::from_bits_truncate(rights) == Rights::all()
            });
            if !is_tcb {
                return Err(SchedError::BadThread);
            }
            let t = Tcb(self.heap.slot().map_err(|_| SchedError::BadThread)?);
            cnode.move_(t.0, tcb).map_err(|_| SchedError::BadThread)?;
            let core = u8::try_from(t.cpu().map_err(|_| SchedError::BadThread)?).unwrap_or(u8::MAX);
            if usize::from(core) >= MAX_CORES || self.k.controls[usize::from(core)] == 0 {
                let _ = cnode.delete(t.0);
                return Err(SchedError::BadThread);
            }
            let mut set_up = || -> Result<SchedContext, libl4::Error> {
                let sc = SchedContext(self.heap.alloc(ObjType::SchedContext, 0)?);
                let badged = self.heap.slot()?;
                let slot = self.k.vcpus.len() as u64;
                cnode.mint(badged, self.ep, Rights::all(), FAULT_BADGE | (slot + 1))?;
                t.set_timeout_endpoint(badged)?;
                sc.bind(t)?;
                Ok(sc)
            };
            match set_up() {
                Ok(sc) => Ok((t, sc, core)),
                Err(e) => {
                    println!("sched: cannot set up a thread: {e:?}");
                    let _ = cnode.delete(t.0);
                    Err(SchedError::BadThread)
                }
            }
        }
    }

    const fn error(e: manage::Error) -> SchedError {
        match e {
            manage::Error::NoSuchVcpu => SchedError::NoSuchVcpu,
            manage::Error::Registered => SchedError::Registered,
            manage::Error::NotRegistered => SchedError::NotRegistered,
            manage::Error::Denied => SchedError::Denied,
            manage::Error::TooEarly => SchedError::TooEarly,
            manage::Error::Refused => SchedError::BadThread,
        }
    }

    impl SchedServer for Sched {
        fn add_vcpu(&mut self, client: u64, vcpu: u8, tcb: CPtr) -> Result<(), SchedError> {
            if !self.m.exists(client, vcpu) {
                return Err(SchedError::NoSuchVcpu);
            }
            if self.m.find(client, vcpu).is_some() {
                return Err(SchedError::Registered);
            }
            if self.k.vcpus.len() != self.m.slots() || self.k.vcpus.is_full() {
                return Err(SchedError::BadThread);
            }
            let caps = self.take_thread(tcb)?;
            let _ = self.k.vcpus.push(caps);
            let now = self.k.now();
            let r = self.m.add(&mut self.k, client, vcpu, caps.2, now);
            // A slot is taken only by a thread the manager kept (even one whose setup
            // failed, forgotten): keep the kernel objects in step.
            self.k.vcpus.truncate(self.m.slots());
            self.arm();
            r.map(|_| ()).map_err(error)
        }

        fn ll_enter(&mut self, client: u64, vcpu: u8) -> Result<(), SchedError> {
            let now = self.k.now();
            let r = self.m.ll_enter(&mut self.k, client, vcpu, now).map_err(error);
            self.arm();
            r
        }

        fn ll_leave(&mut self, client: u64, vcpu: u8) -> Result<(), SchedError> {
            let now = self.k.now();
            let r = self.m.ll_leave(&mut self.k, client, vcpu, now).map_err(error);
            self.arm();
            r
        }

        fn state(&mut self, client: u64, vcpu: u8) -> Result<[u64; 4], SchedError> {
            let now = self.k.now();
            let st = self.m.state(client, vcpu, now).map_err(error)?;
            // The interface's class numbers are gaon_abi's, whatever the policy's order.
            let class = match st.class {
                Class::Parked => SchedClass::Parked,
                Class::Over => SchedClass::Over,
                Class::Under => SchedClass::Under,
                Class::Boost => SchedClass::Boost,
                Class::LlBoost => SchedClass::LlBoost,
            };
            // When it may enter again, in counter ticks (the VMM converts to its guest's).
            let retry = if st.retry_at == 0 { 0 } else { self.k.ticks(st.retry_at) };
            Ok([class as u64, st.credit_ns.cast_unsigned(), st.ll_left_ns, retry])
        }

        fn io_wake(&mut self, client: u64, vcpu: u8) {
            let now = self.k.now();
            self.m.io_wake(&mut self.k, client, vcpu, now);
        }
    }

    impl Handler for Sched {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            sched::dispatch(self, msg)
        }

        fn notified(&mut self, bits: u64) {
            if bits & self.timer.1 != 0 {
                let _ = self.timer.0.ack();
                let now = self.k.now();
                self.m.timer(&mut self.k, now);
                if let Some(mv) = self.m.take_move() {
                    let (badge, vcpu, ll) = self.m.describe(mv.vcpu).unwrap_or((0, 0, false));
                    println!(
                        "sched: moved vCPU slot {} (vm={} vcpu={vcpu} {}) from core {} to core {}",
                        mv.vcpu.0,
                        self.vm_name(badge),
                        if ll { "ll-boost" } else { "credit" },
                        mv.from.0,
                        mv.to.0
                    );
                }
                if now >= self.next_report {
                    self.report(now);
                    self.next_report = now - (now - self.next_report) % REPORT_NS + REPORT_NS;
                }
                self.arm();
            }
        }

        fn fault(&mut self, badge: u64, fault: Fault) -> Option<u64> {
            // A managed vCPU's scheduling context ran out of budget (in LL-boost: SBT
            // of its window is spent). Answered with an empty message, it goes on when
            // the kernel refills it or the manager gives it its credit budget.
            if let Fault::Timeout { .. } = fault {
                let slot = ((badge & !FAULT_BADGE) as usize).wrapping_sub(1);
                if slot < self.k.vcpus.len() {
                    let now = self.k.now();
                    self.m.timeout(&mut self.k, VcpuId(slot as u8), now);
                    self.arm();
                }
            }
            None
        }
    }

    /// The `sched-config` module, checked.
    fn config() -> Result<SchedConfig, &'static str> {
        let bytes = start::module("sched-config").map_err(|_| "no sched-config module")?;
        let c = SchedConfig::read_from_bytes(bytes).map_err(|_| "the sched-config module is no SchedConfig")?;
        if c.magic != SCHED_CONFIG_MAGIC || c.version != SCHED_CONFIG_VERSION {
            return Err("the sched-config module is of another layout");
        }
        Ok(c)
    }

    /// The managed VMs of `c`.
    fn vms(c: &SchedConfig) -> heapless::Vec<VmParams, { MAX_SCHED_VMS }> {
        let mut out = heapless::Vec::new();
        for v in c.vms.iter().take((c.vm_count as usize).min(MAX_SCHED_VMS)) {
            let ll = (v.sbt_us != 0).then(|| Reservation::new(v.sbt_us * 1000, v.usbt_us * 1000));
            let _ = out.push(VmParams {
                badge: v.badge,
                vcpus: u8::try_from(v.vcpus).unwrap_or(0),
                core: u8::try_from(v.core).unwrap_or(0),
                weight: u16::try_from(v.weight).unwrap_or(u16::MAX),
                cap_pct: u8::try_from(v.cap_pct).unwrap_or(100),
                ll,
            });
        }
        out
    }

    pub fn run() -> u8 {
        let c = match config() {
            Ok(c) => c,
            Err(e) => {
                println!("sched: {e}");
                return 1;
            }
        };
        let Ok(ep) = start::serve("sched") else {
            println!("sched: no sched channel");
            return 1;
        };
        let Ok(timer) = start::irq("timer") else {
            println!("sched: no user timer (grant `timer`)");
            return 1;
        };
        let Ok(mut heap) = Heap::from_start() else {
            println!("sched: no heap");
            return 1;
        };
        let mut controls = [0; MAX_CORES];
        let mut cores = 0;
        for (i, slot) in controls.iter_mut().enumerate() {
            let mut name: heapless::String<24> = heapless::String::new();
            let _ = core::fmt::write(&mut name, format_args!("sched_control.{i}"));
            if let Ok(Some((cap, _))) = start::sched_control(&name) {
                *slot = cap;
                cores = i + 1;
            }
        }
        let Ok(recv) = heap.recv_slot() else {
            println!("sched: no slot to receive threads in");
            return 1;
        };
        let debit = if c.flags & SCHED_EXACT_DEBIT != 0 {
            Debit::Exact
        } else {
            Debit::Tick
        };
        let settings = Settings {
            top: u8::try_from(c.top_priority).unwrap_or(0),
            // The description may keep the server to the first cores.
            cores: if c.cores == 0 {
                cores as u8
            } else {
                (c.cores as usize).min(cores) as u8
            },
            ll_boost: c.flags & SCHED_LL_BOOST != 0,
            fixed: c.flags & SCHED_FIXED != 0,
            balance: c.flags & SCHED_BALANCE != 0,
            config: Config {
                borrow_ns: (c.borrow_us * 1000).min(MAX_BORROW_NS),
                debit,
            },
        };
        let k = Caps {
            me: Tcb(server_slot::TCB),
            vcpus: heapless::Vec::new(),
            controls,
            hz: counter_hz(),
        };
        let vms = vms(&c);
        let now = k.now();
        let m = Manager::new(settings, &vms, now);
        println!(
            "sched: {} VM(s) on {cores} core(s), policy {}, priorities {}..={}, {:?} debit, borrowing {} us, LL-boost {}, balancing {}",
            vms.len(),
            if settings.fixed {
                "fixed (measuring only)"
            } else {
                "credit"
            },
            settings.top.saturating_sub(3),
            settings.top,
            debit,
            settings.config.borrow_ns / 1000,
            if settings.ll_boost { "on" } else { "off" },
            if settings.balance { "on" } else { "off" }
        );
        let mut s = Sched {
            m,
            k,
            heap,
            timer,
            recv,
            ep: ep.0,
            config: c,
            next_report: now + REPORT_NS,
        };
        s.arm();
        Server {
            ep: ep.0,
            reply: start::REPLY,
            cap_slot: Some(s.recv),
        }
        .run(&mut s)
    }
}

#[cfg(target_os = "none")]
libl4::main!(app::run);
