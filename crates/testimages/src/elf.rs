//! Minimal Linux ELF64 executables for tests of code that inspects binaries (`airlock image`):
//! one `PT_LOAD` segment whose code calls `exit(0)`, for x86-64 or AArch64, optionally with a
//! `PT_INTERP` naming a dynamic loader. The x86-64 one without an interpreter really runs.

/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 0x3e;
/// `e_machine` of AArch64.
pub const EM_AARCH64: u16 = 0xb7;

const EHDR: usize = 64;
const PHDR: usize = 56;
const BASE: u64 = 0x40_0000;

/// An executable for `machine` ([`EM_X86_64`] or [`EM_AARCH64`]; any other number gets the
/// x86-64 code), dynamically linked against `interp` when it is given.
pub fn executable(machine: u16, interp: Option<&str>) -> Vec<u8> {
    let code: &[u8] = if machine == EM_AARCH64 {
        // mov x8, #93 (exit); mov x0, #0; svc #0
        &[
            0xa8, 0x0b, 0x80, 0xd2, 0x00, 0x00, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
        ]
    } else {
        // mov eax, 60 (exit); xor edi, edi; syscall
        &[0xb8, 0x3c, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05]
    };
    let phnum = if interp.is_some() { 2 } else { 1 };
    let interp_off = EHDR + phnum * PHDR;
    let interp_bytes: Vec<u8> = interp
        .map(|i| [i.as_bytes(), b"\0"].concat())
        .unwrap_or_default();
    let code_off = interp_off + interp_bytes.len();
    let total = (code_off + code.len()) as u64;

    let mut f = Vec::with_capacity(total as usize);
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]); // 64-bit, little-endian, v1, SysV
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&machine.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&(BASE + code_off as u64).to_le_bytes()); // e_entry
    f.extend_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&(EHDR as u16).to_le_bytes());
    f.extend_from_slice(&(PHDR as u16).to_le_bytes());
    f.extend_from_slice(&(phnum as u16).to_le_bytes());
    f.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    let mut phdr = |p_type: u32, flags: u32, off: u64, size: u64| {
        f.extend_from_slice(&p_type.to_le_bytes());
        f.extend_from_slice(&flags.to_le_bytes());
        f.extend_from_slice(&off.to_le_bytes());
        f.extend_from_slice(&(BASE + off).to_le_bytes()); // p_vaddr
        f.extend_from_slice(&(BASE + off).to_le_bytes()); // p_paddr
        f.extend_from_slice(&size.to_le_bytes()); // p_filesz
        f.extend_from_slice(&size.to_le_bytes()); // p_memsz
        f.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    };
    if interp.is_some() {
        phdr(3, 4, interp_off as u64, interp_bytes.len() as u64); // PT_INTERP, R
    }
    phdr(1, 5, 0, total); // PT_LOAD, R+X, the whole file
    f.extend_from_slice(&interp_bytes);
    f.extend_from_slice(code);
    f
}
