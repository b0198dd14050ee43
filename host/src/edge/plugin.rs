//! A plugin: one compiled module, N VMs like Envoy's workers, and what they share.
//! A VM that traps is thrown away and replaced for the next request (fail closed for
//! the request that hit it); shared data survives, as in Envoy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use wasmtime::{Linker, Module};

use super::shared::{Metrics, SharedData, SharedQueues};
use super::state::{HostState, PluginShared};
use super::vm::Vm;
use super::{engine, EdgeError, PluginSpec, VmLimits};

struct Slot {
    vm: Option<Vm>,
    /// Bumped whenever the VM is replaced, so contexts of a dead VM are never finished
    /// on its successor.
    generation: u64,
    last_tick: Instant,
}

pub(crate) struct Plugin {
    pub(crate) shared: Arc<PluginShared>,
    module: Module,
    linker: Linker<HostState>,
    limits: VmLimits,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.shared.name)
            .field("vms", &self.slots.len())
            .finish()
    }
}

impl Plugin {
    /// Compiles the module and starts every VM; any VM refusing its configuration fails
    /// the whole plugin (the host then refuses to start).
    pub(crate) fn load(
        engine: &wasmtime::Engine,
        spec: &PluginSpec,
        vms: usize,
        limits: VmLimits,
    ) -> Result<Self, EdgeError> {
        let module = engine::load_module(engine, &spec.name, &spec.module)?;
        let linker = engine::linker(engine)?;
        let shared = Arc::new(PluginShared {
            name: spec.name.clone(),
            configuration: spec.configuration.clone(),
            data: SharedData::default(),
            queues: SharedQueues::default(),
            metrics: Metrics::default(),
            upstream: spec.upstream.clone(),
        });
        let mut slots = Vec::with_capacity(vms);
        for _ in 0..vms.max(1) {
            let vm = Vm::new(&module, &linker, shared.clone(), &limits)?;
            slots.push(Mutex::new(Slot {
                vm: Some(vm),
                generation: 0,
                last_tick: Instant::now(),
            }));
        }
        Ok(Self {
            shared,
            module,
            linker,
            limits,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// Picks a VM (round robin).
    pub(crate) fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()
    }

    /// Runs `f` on VM `index` (starting a fresh VM if the last one failed); returns its
    /// result and the VM's generation.
    pub(crate) fn with_vm<R>(
        &self,
        index: usize,
        f: impl FnOnce(&mut Vm) -> Result<R, EdgeError>,
    ) -> Result<(R, u64), EdgeError> {
        let mut slot = self.slots[index].lock();
        if slot.vm.is_none() {
            slot.vm = Some(Vm::new(&self.module, &self.linker, self.shared.clone(), &self.limits)?);
        }
        let generation = slot.generation;
        self.run(&mut slot, index, f).map(|r| (r, generation))
    }

    /// Runs `f` only if VM `index` is still the one of `generation`; `None` when that VM
    /// was replaced (its contexts died with it).
    pub(crate) fn with_same_vm<R>(
        &self,
        index: usize,
        generation: u64,
        f: impl FnOnce(&mut Vm) -> Result<R, EdgeError>,
    ) -> Option<Result<R, EdgeError>> {
        let mut slot = self.slots[index].lock();
        if slot.generation != generation || slot.vm.is_none() {
            return None;
        }
        Some(self.run(&mut slot, index, f))
    }

    /// Throws VM `index` away as a trap does; the next request starts a fresh one.
    pub(crate) fn replace_vm(&self, index: usize) {
        if let Some(slot) = self.slots.get(index) {
            let mut slot = slot.lock();
            slot.vm = None;
            slot.generation += 1;
        }
    }

    /// Runs `f` on the slot's VM; any error (trap, deadline) throws the VM away.
    fn run<R>(
        &self,
        slot: &mut Slot,
        index: usize,
        f: impl FnOnce(&mut Vm) -> Result<R, EdgeError>,
    ) -> Result<R, EdgeError> {
        let vm = slot
            .vm
            .as_mut()
            .ok_or_else(|| EdgeError::Engine("no VM in slot".into()))?;
        let result = f(vm);
        if let Err(e) = &result {
            tracing::error!(plugin = %self.shared.name, vm = index, "wasm VM failed, replacing it: {e}");
            slot.vm = None;
            slot.generation += 1;
        }
        result
    }

    /// Delivers due `on_tick` calls.
    pub(crate) fn tick(&self) {
        for (index, slot) in self.slots.iter().enumerate() {
            let mut slot = slot.lock();
            let due = slot.vm.as_ref().is_some_and(|vm| {
                let period = vm.tick_period_ms();
                period > 0 && slot.last_tick.elapsed().as_millis() >= u128::from(period)
            });
            if due {
                slot.last_tick = Instant::now();
                let _ = self.run(&mut slot, index, Vm::tick);
            }
        }
    }

    /// Live HTTP contexts over all VMs.
    pub(crate) fn live_contexts(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.lock().vm.as_ref().map_or(0, Vm::live_contexts))
            .sum()
    }
}
