//! GDT and TSS. One GDT for all vCPUs: null, 64-bit code (0x08), data (0x10)
//! — the same selectors as the boot GDT — then one TSS per vCPU. Each TSS
//! carries the IST stacks for double fault (IST1) and NMI / machine check
//! (IST2), so those always run on a known-good stack.
//!
//! The x86_64 crate's `GlobalDescriptorTable`/`TaskStateSegment` are used as
//! they are; they need `'static` references, which we get from `spin::Once`
//! and leaked heap allocations made once at boot.

use alloc::boxed::Box;
use alloc::vec;

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

use super::percpu::MAX_VCPUS;

/// IST stack size.
pub const IST_STACK_SIZE: usize = 16 * 1024;
/// IST slot (1-based as in the IDT) for double faults.
pub const IST_DOUBLE_FAULT: u8 = 1;
/// IST slot for NMI and machine check.
pub const IST_NMI_MC: u8 = 2;

const GDT_ENTRIES: usize = 3 + 2 * MAX_VCPUS;

struct Gdt {
    gdt: GlobalDescriptorTable<GDT_ENTRIES>,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: [Option<SegmentSelector>; MAX_VCPUS],
}

static GDT: Once<Gdt> = Once::new();

fn ist_stack() -> VirtAddr {
    let stack = vec![0u8; IST_STACK_SIZE].leak();
    // 16-byte aligned top.
    VirtAddr::from_ptr(stack.as_ptr_range().end).align_down(16u64)
}

/// Builds the GDT with a TSS for each of `nr_vcpus` vCPUs (heap needed).
pub fn init(nr_vcpus: usize) {
    GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::empty();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let mut tss_sel = [None; MAX_VCPUS];
        for sel in tss_sel.iter_mut().take(nr_vcpus.min(MAX_VCPUS)) {
            let mut tss = TaskStateSegment::new();
            tss.interrupt_stack_table[usize::from(IST_DOUBLE_FAULT - 1)] = ist_stack();
            tss.interrupt_stack_table[usize::from(IST_NMI_MC - 1)] = ist_stack();
            let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));
            *sel = Some(gdt.append(Descriptor::tss_segment(tss)));
        }
        Gdt {
            gdt,
            code,
            data,
            tss: tss_sel,
        }
    });
}

/// Loads the GDT, segments and this vCPU's TSS on the running vCPU.
pub fn load(vcpu: u32) {
    let g = GDT.get().expect("gdt::init not called");
    g.gdt.load();
    // SAFETY: the selectors index valid descriptors of the GDT just loaded;
    // the TSS descriptor is used by exactly one vCPU.
    unsafe {
        CS::set_reg(g.code);
        DS::set_reg(g.data);
        ES::set_reg(g.data);
        SS::set_reg(g.data);
        if let Some(sel) = g.tss[vcpu as usize] {
            load_tss(sel);
        }
    }
}
