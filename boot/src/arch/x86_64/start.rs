//! PVH entry: the `XEN_ELFNOTE_PHYS32_ENTRY` note, the 32-bit entry point,
//! the switch to long mode on identity-mapped 2 MiB pages covering the first
//! 4 GiB, and the jump into Rust (`boot_main` in `crate::runtime`).
//!
//! Machine state on entry (Xen's PVH ABI): 32-bit protected mode, paging off,
//! flat CS/DS/ES/SS, `%ebx` = guest-physical address of `hvm_start_info`,
//! interrupts off, no usable stack.

use core::arch::global_asm;

/// Size of the boot (vCPU 0) stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

extern "C" {
    /// The 32-bit PVH entry point (in the assembly below).
    pub fn pvh_start32() -> !;
    /// 64-bit entry for secondary vCPUs started with `VCPUOP_initialise`.
    pub fn ap_start64() -> !;
}

// The loader reads the entry point from this note (libelf accepts an 8-byte
// value). `pvh` gets the note name, type and 4-byte alignment right.
pvh::xen_elfnote_phys32_entry!(pvh_start32);

global_asm!(
    r#"
    .section .text.boot, "ax", @progbits
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    mov esi, ebx                    /* start_info paddr, kept in esi */

    /* Zero .bss (the loader zero-fills it too; do not rely on that). */
    mov edi, offset __bss_start
    mov ecx, offset __bss_end
    sub ecx, edi
    shr ecx, 2
    xor eax, eax
    rep stosd

    /* PML4[0] -> PDPT; PDPT[0..4] -> 4 page directories. */
    mov eax, offset boot_pdpt
    or eax, 3
    mov dword ptr [boot_pml4], eax
    mov edi, offset boot_pdpt
    mov eax, offset boot_pd
    or eax, 3
    mov ecx, 4
2:
    mov dword ptr [edi], eax
    add eax, 4096
    add edi, 8
    loop 2b

    /* 2048 PDEs of 2 MiB: identity map of [0, 4 GiB), present|rw|PS. */
    mov edi, offset boot_pd
    mov eax, 0x83
    mov ecx, 2048
3:
    mov dword ptr [edi], eax
    mov dword ptr [edi + 4], 0
    add eax, 0x200000
    add edi, 8
    loop 3b

    lgdt [boot_gdt_ptr]

    mov eax, cr4
    or eax, 0x20                    /* PAE */
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080             /* EFER */
    rdmsr
    or eax, 0x100                   /* LME */
    wrmsr
    mov eax, cr0
    or eax, 0x80010001              /* PG | WP | PE */
    mov cr0, eax

    /* Far return into the 64-bit code segment (Xen gives us no stack). */
    mov esp, offset boot_stack_top
    push 0x08
    mov eax, offset boot_long_mode
    push eax
    retf

    .code64
boot_long_mode:
    mov eax, 0x10
    mov ds, eax
    mov es, eax
    mov ss, eax
    xor eax, eax
    mov fs, eax
    mov gs, eax
    mov rsp, offset boot_stack_top
    xor ebp, ebp
    mov edi, esi
    call {boot_main}
5:
    hlt
    jmp 5b

    .globl ap_start64
ap_start64:
    /* rsp (16-byte aligned stack top) and rdi (vCPU id) come from
       VCPUOP_initialise; segments are flat 64-bit ones Xen made up. */
    xor ebp, ebp
    call {ap_main}
6:
    hlt
    jmp 6b

    .section .rodata.boot, "a", @progbits
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff        /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot, "aw", @nobits
    .balign 4096
    .globl boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
    .balign 16
boot_stack:
    .skip {stack_size}
    .globl boot_stack_top
boot_stack_top:

    .text
    "#,
    boot_main = sym crate::runtime::boot_main,
    ap_main = sym crate::arch::x86_64::smp::ap_main,
    stack_size = const BOOT_STACK_SIZE,
);
