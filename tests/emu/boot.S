/* boot.S — enough of a machine for the AVX-512 kernels: a multiboot entry
 * (32-bit protected mode, from the boot loader), identity-mapped first GiB
 * in 2 MiB pages, long mode, SSE, and XSAVE state enabled for AVX and, where
 * the processor has them, the AVX-512 registers.  Then emu_main(); then the
 * emulator's shutdown port. */
    .set MB_MAGIC, 0x1BADB002
    .set MB_FLAGS, 0x00010003          /* page-aligned modules, memory info, addresses below */

    .section .multiboot, "a"
    .align 4
mb_header:
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
    .long mb_header, _load_start, _load_end, _bss_end, start32

    .section .text32, "ax"
    .code32
    .globl start32
start32:
    cli
    mov $stack_top, %esp
    mov $pd, %edi                      /* 512 × 2 MiB pages: the first GiB */
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                     /* present, writable, 2 MiB */
    mov %eax, (%edi,%ecx,8)
    movl $0, 4(%edi,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jne 1b
    mov $pd + 3, %eax
    mov %eax, pdpt
    mov $pdpt + 3, %eax
    mov %eax, pml4
    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax                     /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx              /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax               /* paging, protection */
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $0x08, $start64

    .code64
start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $stack_top, %rsp
    mov %cr0, %rax
    and $~4, %rax                      /* no x87 emulation */
    or $2, %rax                        /* monitor coprocessor */
    mov %rax, %cr0
    mov %cr4, %rax
    or $((1 << 9) | (1 << 10) | (1 << 18)), %rax   /* OSFXSR, OSXMMEXCPT, OSXSAVE */
    mov %rax, %cr4
    mov $0xD, %eax                     /* XCR0: x87, SSE, AVX, opmask, ZMM, as supported */
    xor %ecx, %ecx
    cpuid
    and $0xE7, %eax
    xor %edx, %edx
    xor %ecx, %ecx
    xsetbv
    call emu_main
    mov $0x8900, %dx                   /* Bochs: "Shutdown" to port 0x8900 ends the run */
    mov $shutdown, %rsi
2:  lodsb
    test %al, %al
    jz 3f
    outb %al, %dx
    jmp 2b
3:  cli
    hlt
    jmp 3b

    .section .rodata
shutdown:
    .asciz "Shutdown"
    .align 8
gdt:
    .quad 0
    .quad 0x00209A0000000000           /* 0x08: 64-bit code */
    .quad 0x0000920000000000           /* 0x10: data */
gdt_ptr:
    .word gdt_ptr - gdt - 1
    .long gdt

    .section .bss
    .align 4096
pml4: .skip 4096
pdpt: .skip 4096
pd:   .skip 4096
    .align 16
    .skip 262144
stack_top:

    .section .note.GNU-stack, "", @progbits
