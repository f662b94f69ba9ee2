//! Probe-site decoding of one function per stack-check prologue shape, on bytes copied from
//! real Go binaries. Every expected value was read off GNU objdump's (amd64, 386) or
//! `go tool objdump`'s (arm64) listing of the same function, quoted above each case.
//! The last tests use small hand-assembled functions for rules real code rarely exercises.

use gotrace::gobin::code::disasm::{
    decode_function, DecodedFunction, EntryCheck, EntrySite, ProbeInsn, TailCall,
};
use gotrace::gobin::code::site_class::{site_class, SiteClass};
use gotrace::gobin::Arch;
use proptest::prelude::*;

/// One function copied from a real binary, with what objdump says about it.
struct Case {
    what: &'static str,
    arch: Arch,
    entry: u64,
    /// The function's bytes in hex.
    code: &'static str,
    entry_probe: u64,
    probe_insn: ProbeInsn,
    /// The stack check's last branch, when it is a `jbe` the kernel emulates and the entry
    /// probe is single-stepped: (vaddr, length), the flag-checked entry site.
    flag_checked: Option<(u64, u8)>,
    ret_sites: &'static [u64],
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("test data is hex"))
        .collect()
}

fn real_functions() -> Vec<Case> {
    vec![
        // 543180: cmp 0x10(%r14),%rsp
        // 543184: jbe 543198 <flag.commandLineUsage+0x18>
        // 543186: push %rbp
        // 543197: ret
        // 543198: call 4a2680 <runtime.morestack_noctxt.abi0>
        Case {
            what: "amd64 register ABI, small frame: CMPQ SP, 16(R14); JBE (Go 1.27 compile, flag.commandLineUsage)",
            arch: Arch::Amd64,
            entry: 0x543180,
            code: "493b66107612554889e5488b1557646101488b02ffd05dc3e8e3f4f5ffebe1",
            entry_probe: 0x543186,
            probe_insn: ProbeInsn { class: SiteClass::Emulated, len: 1 },
            flag_checked: None,
            ret_sites: &[0x543197],
        },
        // 491880: lea -0x30(%rsp),%r12
        // 491885: cmp 0x10(%r14),%r12
        // 491889: jbe 491933 <runtime.(*mLockProfile).captureStack.func1+0xb3>
        // 49188f: push %rbp
        // 491932: ret
        // 491933: call 4a25e0 <runtime.morestack.abi0>
        Case {
            what: "amd64 register ABI, medium frame: LEAQ -N(SP), R12; CMPQ R12, 16(R14); JBE (Go 1.27 compile)",
            arch: Arch::Amd64,
            entry: 0x491880,
            code: concat!(
                "4c8d6424d04d3b66100f86a4000000554889e54881eca8000000488b4a10488b72184c8b4a204c89",
                "8c24a00000004c8b4a284c898c24900000004c8b4a304c898c2498000000488b5a08488d44243044",
                "0f1138440f117810440f117820440f117830440f117840440f11785031ff41b80a000000e8e711ff",
                "ff488b942498000000488b4a08488b7a10488b7218488d442430488b9c2490000000e8211fffff48",
                "8b9424a00000004889024881c4a80000005dc3e8a80c0100e943ffffff",
            ),
            entry_probe: 0x49188f,
            probe_insn: ProbeInsn { class: SiteClass::Emulated, len: 1 },
            flag_checked: None,
            ret_sites: &[0x491932],
        },
        // 5d0c60: mov %rsp,%r12
        // 5d0c63: sub $0x1bc0,%r12
        // 5d0c6a: jb 5d0d31 <cmd/internal/goobj.init.0+0xd1>
        // 5d0c70: cmp 0x10(%r14),%r12
        // 5d0c74: jbe 5d0d31 <cmd/internal/goobj.init.0+0xd1>
        // 5d0c7a: push %rbp
        // 5d0d30: ret
        // 5d0d31: call 4a2680 <runtime.morestack_noctxt.abi0>
        Case {
            what: "amd64 register ABI, huge frame: MOVQ SP, R12; SUBQ $N, R12; JCS; CMPQ R12, 16(R14); JBE (Go 1.27 compile)",
            arch: Arch::Amd64,
            entry: 0x5d0c60,
            code: concat!(
                "4989e44981ecc01b00000f82c10000004d3b66100f86b7000000554889e54881ec381c0000488d05",
                "14464401bb2b01000031c9e86896ecff833d0156770100907413488b157f017301e87232edff4989",
                "03498953084889056c017301488d7c2428488d3558155f01b981030000f348a5488d54242831c0eb",
                "47488944242048899424301c0000488b0a488b7a08488b1d34017301488d05a54544010f1f440000",
                "e8fbc9e3ff488b542420488910488bb424301c00004883c618488d42014889f2483d2b0100007cb1",
                "4881c4381c00005dc3e84a19edffe925ffffff",
            ),
            entry_probe: 0x5d0c7a,
            probe_insn: ProbeInsn { class: SiteClass::Emulated, len: 1 },
            flag_checked: None,
            ret_sites: &[0x5d0d30],
        },
        // 4812c0: cmp 0x10(%r14),%rsp
        // 4812c4: jbe 481322 <main.smallFrame+0x62>
        // 4812c6: sub $0x48,%rsp
        // 481321: ret
        // 481327: call 45aea0 <runtime.morestack_noctxt.abi0>
        Case {
            what: "amd64 register ABI without frame-pointer PUSH: probe on SUBQ (Go 1.19 sample, main.smallFrame)",
            arch: Arch::Amd64,
            entry: 0x4812c0,
            code: concat!(
                "493b6610765c4883ec4848896c2440488d6c24404889442418440f117c2420440f117c243031c9eb",
                "1f48894c24104889cbe8aaffffff488b4c2410488944cc2048ffc1488b4424184883f9047cdb488b",
                "4424204803442438488b6c24404883c448c34889442408e8749bfdff488b442408eb8dcccccccccc",
                "cccccccccccccccc",
            ),
            entry_probe: 0x4812c6,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 4 },
            flag_checked: Some((0x4812c4, 2)),
            ret_sites: &[0x481321],
        },
        // 42d4c0: mov %fs:0xfffffffffffffff8,%rcx
        // 42d4c9: cmp 0x10(%rcx),%rsp
        // 42d4cd: jbe 42d4e9 <internal/poll.runtime_pollServerInit+0x29>
        // 42d4cf: sub $0x8,%rsp
        // 42d4e8: ret
        // 42d4e9: call 4624c0 <runtime.morestack_noctxt>
        Case {
            what: "amd64 stack ABI, small frame: MOVQ FS:-8, CX; CMPQ SP, 16(CX); JBE (Go 1.14 esbuild 0.3.9)",
            arch: Arch::Amd64,
            entry: 0x42d4c0,
            code: concat!(
                "64488b0c25f8ffffff483b6110761a4883ec0848892c24488d2c24e810000000488b2c244883c408",
                "c3e8d24f0300ebd0",
            ),
            entry_probe: 0x42d4cf,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 4 },
            flag_checked: Some((0x42d4cd, 2)),
            ret_sites: &[0x42d4e8],
        },
        // 5f5870: mov %fs:0xfffffffffffffff8,%rcx
        // 5f5879: lea -0x28(%rsp),%rax
        // 5f587e: cmp 0x10(%rcx),%rax
        // 5f5882: jbe 5f5924 <crypto/tls.marshalCertificate.func1.2.2+0xb4>
        // 5f5888: sub $0xa8,%rsp
        // 5f5923: ret
        // 5f5924: call 462420 <runtime.morestack>
        Case {
            what: "amd64 stack ABI, medium frame: MOVQ FS:-8, CX; LEAQ -N(SP), AX; CMPQ AX, 16(CX); JBE (Go 1.14 esbuild 0.3.9)",
            arch: Arch::Amd64,
            entry: 0x5f5870,
            code: concat!(
                "64488b0c25f8ffffff488d4424d8483b41100f869c0000004881eca80000004889ac24a000000048",
                "8dac24a0000000488d7c24200f57c048896c24f0488d6c24f0e894f5e6ff488b6d00488d05cffeff",
                "ff4889442420488b42084889442428488d7210488d7c243048896c24f0488d6c24f0e8b7f8e6ff48",
                "8b6d00488b8424b00000004889042448c744240802000000c644241000488d4424204889442418e8",
                "dcc0f9ff488bac24a00000004881c4a8000000c3e8f7cae6ffe942ffffff",
            ),
            entry_probe: 0x5f5888,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 7 },
            flag_checked: Some((0x5f5882, 6)),
            ret_sites: &[0x5f5923],
        },
        // 464960: mov %fs:0xfffffffffffffff8,%rcx
        // 464969: mov 0x10(%rcx),%rsi
        // 46496d: cmp $0xfffffffffffffade,%rsi
        // 464974: je 4649c9 <debugCall4096+0x69>
        // 464976: lea 0x380(%rsp),%rax
        // 46497e: sub %rsi,%rax
        // 464981: cmp $0x1308,%rax
        // 464987: jbe 4649c9 <debugCall4096+0x69>
        // 464989: sub $0x1008,%rsp
        // 4649c8: ret
        // 4649c9: call 4624c0 <runtime.morestack_noctxt>
        Case {
            what: "amd64 stack ABI, huge frame: CMPQ 16(CX), $StackPreempt; JEQ; ...; CMPQ AX, $N; JLS (Go 1.14 esbuild 0.3.9)",
            arch: Arch::Amd64,
            entry: 0x464960,
            code: concat!(
                "64488b0c25f8ffffff488b71104881fedefaffff7453488d8424800300004829f0483d0813000076",
                "404881ec081000004889ac2400100000488dac2400100000488b59204885db752748c7c000000000",
                "cc48c7c001000000cc488bac24001000004881c408100000c3e8f2daffffeb90488dbc2410100000",
                "48393b75cc488923ebc7",
            ),
            entry_probe: 0x464989,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 7 },
            flag_checked: Some((0x464987, 2)),
            ret_sites: &[0x4649c8],
        },
        // 804adb0: mov %gs:0x0,%ecx
        // 804adb7: mov -0x4(%ecx),%ecx
        // 804adbd: cmp 0x8(%ecx),%esp
        // 804adc0: jbe 804adc8 <runtime.memequal0+0x18>
        // 804adc2: movb $0x1,0xc(%esp)
        // 804adc7: ret
        // 804adc8: call 80a6c10 <runtime.morestack_noctxt>
        Case {
            what: "386, small frame: MOVL GS:0, CX; MOVL -4(CX), CX; CMPL SP, 8(CX); JLS (Go 1.19 sample)",
            arch: Arch::I386,
            entry: 0x804adb0,
            code: "658b0d000000008b89fcffffff3b61087606c644240c01c3e843be0500ebe1cc",
            entry_probe: 0x804adc2,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 5 },
            flag_checked: Some((0x804adc0, 2)),
            ret_sites: &[0x804adc7],
        },
        // 80cb450: mov %gs:0x0,%ecx
        // 80cb457: mov -0x4(%ecx),%ecx
        // 80cb45d: lea -0x390(%esp),%eax
        // 80cb464: cmp 0x8(%ecx),%eax
        // 80cb467: jbe 80cb508 <main.mediumFrame+0xb8>
        // 80cb46d: sub $0x410,%esp
        // 80cb4ee: ret
        // 80cb508: call 80a6c10 <runtime.morestack_noctxt>
        Case {
            what: "386, medium frame: LEAL -N(SP), AX; CMPL AX, 8(CX); JLS (Go 1.19 sample)",
            arch: Arch::I386,
            entry: 0x80cb450,
            code: concat!(
                "658b0d000000008b89fcffffff8d842470fcffff3b41080f869b00000081ec100400008d7c2410b9",
                "0001000031c0f3ab31c0eb0789448c108d41013d000100007d298944240c8b8c2414040000890c24",
                "89442404e8e7feffff8b4424088b4c240c81f90001000072cbeb408b84241404000089c2c1f81fc1",
                "e8188d1c10c1fb08c1e30829da81fa0001000073128b4494108984241804000081c410040000c389",
                "d0b900010000e875cafdff89c8b900010000e869cafdff90e803b7fdffe93effffff",
            ),
            entry_probe: 0x80cb46d,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 6 },
            flag_checked: Some((0x80cb467, 6)),
            ret_sites: &[0x80cb4ee],
        },
        // 80cb520: mov %gs:0x0,%ecx
        // 80cb527: mov -0x4(%ecx),%ecx
        // 80cb52d: mov %esp,%eax
        // 80cb52f: sub $0xff90,%eax
        // 80cb534: jb 80cb5de <main.hugeFrame+0xbe>
        // 80cb53a: cmp 0x8(%ecx),%eax
        // 80cb53d: jbe 80cb5de <main.hugeFrame+0xbe>
        // 80cb543: sub $0x10010,%esp
        // 80cb5c4: ret
        // 80cb5de: call 80a6c10 <runtime.morestack_noctxt>
        Case {
            what: "386, huge frame: MOVL SP, AX; SUBL $N, AX; JCS; CMPL AX, 8(CX); JLS (Go 1.19 sample)",
            arch: Arch::I386,
            entry: 0x80cb520,
            code: concat!(
                "658b0d000000008b89fcffffff89e02d90ff00000f82a40000003b41080f869b00000081ec100001",
                "008d7c2410b90040000031c0f3ab31c0eb0789448c108d41013d004000007d298944240c8b8c2414",
                "000100890c2489442404e811feffff8b4424088b4c240c81f90040000072cbeb408b842414000100",
                "89c2c1f81fc1e8128d1c10c1fb0ec1e30e29da81fa0040000073128b4494108984241800010081c4",
                "10000100c389d0b900400000e89fc9fdff89c8b900400000e893c9fdff90e82db6fdffe938ffffff",
            ),
            entry_probe: 0x80cb543,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 6 },
            flag_checked: Some((0x80cb53d, 6)),
            ret_sites: &[0x80cb5c4],
        },
        // 208a0: MOVD 16(R28), R16
        // 208a4: CMP R16, RSP
        // 208a8: BLS 9(PC)
        // 208ac: MOVD.W R30, -48(RSP)
        // 208c8: RET
        // 208d4: CALL runtime.morestack_noctxt.abi0(SB)
        Case {
            what: "arm64, small frame: MOVD 16(R28), R16; CMP R16, RSP; BLS (Go 1.27 gofmt)",
            arch: Arch::Arm64,
            entry: 0x208a0,
            code: concat!(
                "900b40f9ff6330eb29010054fe0f1df8fd831ff8fd2300d1e2037cb2f5cbff97fd835ff8fe0743f8",
                "c0035fd6e08700a9e3031eaaa3ba0194e08740a9f1ffff17",
            ),
            entry_probe: 0x208ac,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 4 },
            flag_checked: None,
            ret_sites: &[0x208c8],
        },
        // 8ecb0: MOVD 16(R28), R16
        // 8ecb4: SUB $16, RSP, R17
        // 8ecb8: CMP R16, R17
        // 8ecbc: BLS 11(PC)
        // 8ecc0: MOVD.W R30, -144(RSP)
        // 8ece4: RET
        // 8ecec: CALL runtime.morestack_noctxt.abi0(SB)
        Case {
            what: "arm64, medium frame: SUB $N, RSP, R17; CMP R16, R17; BLS (Go 1.27 gofmt)",
            arch: Arch::Arm64,
            entry: 0x8ecb0,
            code: concat!(
                "900b40f9f14300d13f0210eb69010054fe0f17f8fd831ff8fd2300d1f4031faa000020d4f40340b2",
                "000020d4fd230291ff430291c0035fd6e3031eaa9d010094f0ffff17000000000000000000000000",
            ),
            entry_probe: 0x8ecc0,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 4 },
            flag_checked: None,
            ret_sites: &[0x8ece4],
        },
        // 8eea0: MOVD 16(R28), R16
        // 8eea4: MOVD $8080, R27
        // 8eea8: SUBS R27, RSP, R17
        // 8eeac: BCC 17(PC)
        // 8eeb0: CMP R16, R17
        // 8eeb4: BLS 15(PC)
        // 8eeb8: MOVD $8208, R27
        // 8eeec: RET
        // 8eef4: CALL runtime.morestack_noctxt.abi0(SB)
        Case {
            what: "arm64, huge frame: MOVD $N, R27; SUBS R27, RSP, R17; BCC; CMP R16, R17; BLS (Go 1.27 gofmt)",
            arch: Arch::Arm64,
            entry: 0x8eea0,
            code: concat!(
                "900b40f91bf283d2f1633beb230200543f0210ebe90100541b0284d2f4633bcb9dfa3fa99f020091",
                "fd2300d1f4031faa000020d4f40340b2000020d41b0184d2fd633b8b1b0284d2ff633b8bc0035fd6",
                "e3031eaa1b010094eaffff1700000000",
            ),
            entry_probe: 0x8eeb8,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 4 },
            flag_checked: None,
            ret_sites: &[0x8eeec],
        },
        // a2220: ADD R1, R0, R0
        // a2224: RET
        Case {
            what: "arm64, frameless leaf without stack check, zero padding included (Go 1.27 sample)",
            arch: Arch::Arm64,
            entry: 0xa2220,
            code: "0000018bc0035fd60000000000000000",
            entry_probe: 0xa2220,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 4 },
            flag_checked: None,
            ret_sites: &[0xa2224],
        },
        // 49a080: add %rbx,%rax
        // 49a083: ret
        Case {
            what: "amd64, frameless leaf without stack check, INT3 padding included (Go 1.27 sample)",
            arch: Arch::Amd64,
            entry: 0x49a080,
            code: "4801d8c3cccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
            entry_probe: 0x49a080,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 3 },
            flag_checked: None,
            ret_sites: &[0x49a083],
        },
        // 49a540: push %rbp
        // 49a558: ret
        Case {
            what: "amd64, NOSPLIT function that calls: no stack check (Go 1.27 sample)",
            arch: Arch::Amd64,
            entry: 0x49a540,
            code: "554889e54883ec104889c3e830fbffff4801c04883c4105dc3",
            entry_probe: 0x49a540,
            probe_insn: ProbeInsn { class: SiteClass::Emulated, len: 1 },
            flag_checked: None,
            ret_sites: &[0x49a558],
        },
        // 49a460: cmp 0x10(%r14),%rsp
        // 49a464: jbe 49a4a6 <main.neverReturns+0x46>
        // 49a466: push %rbp
        // 49a4b0: call 47cba0 <runtime.morestack_noctxt.abi0>
        Case {
            what: "amd64, ends in a panic: no RET; its panic block falls through into the morestack block (Go 1.27 sample)",
            arch: Arch::Amd64,
            entry: 0x49a460,
            code: concat!(
                "493b66107640554889e54883ec2848894424384889d9488d3d831b0000be010000004889c331c0e8",
                "b455fcffe8efd4fdff4889c3488d05b5270c000f1f440000e85be5fdff90488944240848895c2410",
                "e8eb26feff488b442408488b5c241090eb9ecccccccccccccccccccccccccccccccccccccccccccc",
                "cccccccccccccccc",
            ),
            entry_probe: 0x49a466,
            probe_insn: ProbeInsn { class: SiteClass::Emulated, len: 1 },
            flag_checked: None,
            ret_sites: &[],
        },
        // 80e5250: mov %gs:0x0,%ecx
        // 80e5257: mov -0x4(%ecx),%ecx
        // 80e525d: cmp 0x8(%ecx),%esp
        // 80e5260: jbe 80e5297 <main.spin+0x47>
        // 80e5262: sub $0x10,%esp
        // 80e5297: call 80ca750 <runtime.morestack_noctxt>
        Case {
            what: "386, endless loop: no RET (Go 1.27 sample)",
            arch: Arch::I386,
            entry: 0x80e5250,
            code: concat!(
                "658b0d000000008b89fcffffff3b6108763583ec10c7042401000000c744240402000000e837fbff",
                "ff8b4424088944240c8b4424148904248d44240c89442404e86b78f7ffebcee8b454feffebb2",
            ),
            entry_probe: 0x80e5262,
            probe_insn: ProbeInsn { class: SiteClass::SingleStep, len: 3 },
            flag_checked: Some((0x80e5260, 2)),
            ret_sites: &[],
        },
    ]
}

#[test]
fn real_prologue_shapes() {
    for case in real_functions() {
        let decoded = decode_function(case.arch, &unhex(case.code), case.entry)
            .unwrap_or_else(|e| panic!("{}: {e:#}", case.what));
        let entry = match case.flag_checked {
            Some((addr, len)) => EntrySite {
                addr,
                insn: ProbeInsn {
                    class: SiteClass::Emulated,
                    len,
                },
                check: EntryCheck::NotTakenJbe,
            },
            None => EntrySite {
                addr: case.entry_probe,
                insn: case.probe_insn,
                check: EntryCheck::None,
            },
        };
        // RET is single-stepped on x86 and simulated on arm64.
        let ret_class = match case.arch {
            Arch::Arm64 => SiteClass::Emulated,
            Arch::Amd64 | Arch::I386 => SiteClass::SingleStep,
        };
        assert_eq!(
            decoded,
            DecodedFunction {
                entry_probe: case.entry_probe,
                entry_probe_insn: case.probe_insn,
                entry,
                ret_sites: case.ret_sites.to_vec(),
                ret_classes: vec![ret_class; case.ret_sites.len()],
                tail_calls: Vec::new(),
            },
            "{}",
            case.what
        );
    }
}

/// amd64 `CMPQ SP, 16(R14); JBE block; RET; [more]; block: CALL; JMP entry`, assembled by
/// hand: `more` is spliced between the RET and the morestack block.
fn amd64_with_block_after(more: &[u8], jbe_offset: u8) -> Vec<u8> {
    let mut code = vec![0x49, 0x3b, 0x66, 0x10, 0x76, jbe_offset, 0xc3];
    code.extend_from_slice(more);
    code.extend_from_slice(&[0xe8, 0, 0, 0, 0]); // CALL (morestack)
    let back = -(code.len() as i8 + 2);
    code.extend_from_slice(&[0xeb, back as u8]); // JMP entry
    code
}

#[test]
fn branch_to_block_calling_once_then_jumping_to_entry_is_the_stack_check() {
    let code = amd64_with_block_after(&[], 1);
    let decoded = decode_function(Arch::Amd64, &code, 0x1000).unwrap();
    assert_eq!(decoded.entry_probe, 0x1006);
    assert_eq!(decoded.ret_sites, vec![0x1006]);
}

#[test]
fn single_stepped_probe_after_the_check_moves_to_the_jbe() {
    // The probe after the check is the RET (single-stepped): the JBE at 0x1004 is chosen.
    let code = amd64_with_block_after(&[], 1);
    let decoded = decode_function(Arch::Amd64, &code, 0x1000).unwrap();
    let expected = EntrySite {
        addr: 0x1004,
        insn: ProbeInsn {
            class: SiteClass::Emulated,
            len: 2,
        },
        check: EntryCheck::NotTakenJbe,
    };
    assert_eq!(decoded.entry, expected);
}

#[test]
fn branch_back_into_the_prologue_keeps_the_probe_after_the_check() {
    // A JMP back to the JBE (0x1004) would make the JBE fire twice per call. Layout: CMPQ
    // (0x1000), JBE (0x1004), RET (0x1006), JMP (0x1007, two bytes, to 0x1004), block.
    let code = amd64_with_block_after(&[0xeb, 0xfb], 3);
    let decoded = decode_function(Arch::Amd64, &code, 0x1000).unwrap();
    assert_eq!(decoded.entry_probe, 0x1006);
    assert_eq!(decoded.entry.addr, 0x1006);
    assert_eq!(decoded.entry.check, EntryCheck::None);
}

#[test]
fn jbe_after_a_stack_pointer_write_is_not_flag_checked() {
    // SUBQ $8, SP; CMPQ SP, 16(R14); JBE block; RET; block: CALL; JMP entry. At the JBE the
    // stack pointer is no longer the caller's.
    let mut code = vec![0x48, 0x83, 0xec, 0x08];
    let check = amd64_with_block_after(&[], 1);
    code.extend_from_slice(&check[..check.len() - 1]);
    code.push((-(code.len() as i8 + 1)) as u8);
    let decoded = decode_function(Arch::Amd64, &code, 0x1000).unwrap();
    assert_eq!(decoded.entry_probe, 0x100a);
    assert_eq!(decoded.entry.addr, 0x100a);
    assert_eq!(decoded.entry.check, EntryCheck::None);
}

#[test]
fn jumps_out_of_the_function_are_tail_calls() {
    // JMP rel8 inside (to the RET), RET, JMP rel32 to 0x2100, JMP rel8 back before the entry.
    let code = [0xeb, 0x00, 0xc3, 0xe9, 0xf8, 0x00, 0x00, 0x00, 0xeb, 0x80];
    let decoded = decode_function(Arch::Amd64, &code, 0x2000).unwrap();
    let expected = vec![
        TailCall {
            site: 0x2003,
            target: 0x2100,
        },
        TailCall {
            site: 0x2008,
            target: 0x1f8a,
        },
    ];
    assert_eq!(decoded.tail_calls, expected);
    assert_eq!(decoded.ret_sites, vec![0x2002]);
}

/// Instructions and the kernel's handling of a uprobe on them, read off
/// `arch_uprobe_analyze_insn` (Linux arch/x86/kernel/uprobes.c) and, for arm64,
/// `arm_probe_decode_insn` (arch/arm64/kernel/probes/decode-insn.c).
const CLASSES: &[(&str, Arch, &[u8], SiteClass)] = &[
    ("push %rbp", Arch::Amd64, &[0x55], SiteClass::Emulated),
    ("push %r12", Arch::Amd64, &[0x41, 0x54], SiteClass::Emulated),
    (
        "rex.w push %rbp",
        Arch::Amd64,
        &[0x48, 0x55],
        SiteClass::SingleStep,
    ),
    (
        "pushw %bp",
        Arch::Amd64,
        &[0x66, 0x55],
        SiteClass::SingleStep,
    ),
    ("push %ebp", Arch::I386, &[0x55], SiteClass::Emulated),
    ("push $1", Arch::Amd64, &[0x6a, 0x01], SiteClass::SingleStep),
    ("pop %rbp", Arch::Amd64, &[0x5d], SiteClass::SingleStep),
    ("jbe rel8", Arch::Amd64, &[0x76, 0x10], SiteClass::Emulated),
    (
        "jbe rel32",
        Arch::I386,
        &[0x0f, 0x86, 1, 0, 0, 0],
        SiteClass::Emulated,
    ),
    (
        "jbe rel16 (66)",
        Arch::I386,
        &[0x66, 0x0f, 0x86, 1, 0],
        SiteClass::SingleStep,
    ),
    (
        "jmp rel32",
        Arch::Amd64,
        &[0xe9, 1, 0, 0, 0],
        SiteClass::Emulated,
    ),
    ("jmp rel8", Arch::Amd64, &[0xeb, 1], SiteClass::Emulated),
    (
        "call rel32",
        Arch::Amd64,
        &[0xe8, 1, 0, 0, 0],
        SiteClass::Emulated,
    ),
    (
        "call *%rax",
        Arch::Amd64,
        &[0xff, 0xd0],
        SiteClass::SingleStep,
    ),
    ("nop", Arch::Amd64, &[0x90], SiteClass::Emulated),
    ("pause", Arch::Amd64, &[0xf3, 0x90], SiteClass::SingleStep),
    (
        "xchg %r8,%rax",
        Arch::Amd64,
        &[0x49, 0x90],
        SiteClass::SingleStep,
    ),
    (
        "nopl 0x0(%rax,%rax,1)",
        Arch::Amd64,
        &[0x0f, 0x1f, 0x44, 0, 0],
        SiteClass::Emulated,
    ),
    ("ret", Arch::Amd64, &[0xc3], SiteClass::SingleStep),
    ("ret $8", Arch::I386, &[0xc2, 8, 0], SiteClass::SingleStep),
    (
        "sub $0x18,%rsp",
        Arch::Amd64,
        &[0x48, 0x83, 0xec, 0x18],
        SiteClass::SingleStep,
    ),
    (
        "cmp 0x10(%r14),%rsp",
        Arch::Amd64,
        &[0x49, 0x3b, 0x66, 0x10],
        SiteClass::SingleStep,
    ),
    (
        "RET",
        Arch::Arm64,
        &[0xc0, 0x03, 0x5f, 0xd6],
        SiteClass::Emulated,
    ),
    (
        "BLS",
        Arch::Arm64,
        &[0x29, 0x01, 0x00, 0x54],
        SiteClass::Emulated,
    ),
    (
        "BL",
        Arch::Arm64,
        &[0x9d, 0x01, 0x00, 0x94],
        SiteClass::Emulated,
    ),
    (
        "MOVD.W R30, -48(RSP)",
        Arch::Arm64,
        &[0xfe, 0x0f, 0x1d, 0xf8],
        SiteClass::SingleStep,
    ),
];

#[test]
fn site_classes_follow_the_kernel_rules() {
    for &(what, arch, insn, class) in CLASSES {
        assert_eq!(site_class(arch, insn), class, "{what} ({arch:?})");
    }
}

#[test]
fn branch_to_panic_block_falling_into_morestack_is_not_the_stack_check() {
    // The JBE targets a CALL (say, to gopanic) that falls through into the morestack block:
    // two calls before the jump back.
    let code = amd64_with_block_after(&[0xe8, 0, 0, 0, 0], 1);
    let decoded = decode_function(Arch::Amd64, &code, 0x1000).unwrap();
    assert_eq!(decoded.entry_probe, 0x1000);
}

#[test]
fn branch_to_block_jumping_elsewhere_is_not_the_stack_check() {
    // CMPQ SP, 16(R14); JBE +1; RET; CALL; JMP +0 (to the next instruction, not the entry); INT3
    let code = [
        0x49, 0x3b, 0x66, 0x10, 0x76, 0x01, 0xc3, 0xe8, 0, 0, 0, 0, 0xeb, 0x00, 0xcc,
    ];
    let decoded = decode_function(Arch::Amd64, &code, 0x1000).unwrap();
    assert_eq!(decoded.entry_probe, 0x1000);
}

#[test]
fn stack_check_after_a_memory_store_is_not_a_prologue() {
    // MOVQ AX, 8(SP) first: a stack check only loads, compares and subtracts.
    let mut code = vec![0x48, 0x89, 0x44, 0x24, 0x08];
    let check = amd64_with_block_after(&[], 1);
    code.extend_from_slice(&check[..check.len() - 1]);
    code.push((-(code.len() as i8 + 1)) as u8);
    let decoded = decode_function(Arch::Amd64, &code, 0x1000).unwrap();
    assert_eq!(decoded.entry_probe, 0x1000);
}

#[test]
fn ret_imm16_counts_and_far_ret_does_not() {
    // RET $8; RETF; RET
    let code = [0xc2, 0x08, 0x00, 0xcb, 0xc3];
    for arch in [Arch::Amd64, Arch::I386] {
        let decoded = decode_function(arch, &code, 0x2000).unwrap();
        assert_eq!(decoded.ret_sites, vec![0x2000, 0x2004], "{arch:?}");
    }
}

#[test]
fn ret_bytes_inside_an_instruction_are_not_rets() {
    // MOVL $0xc3c3c3c3, AX; RET
    let code = [0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3];
    let decoded = decode_function(Arch::Amd64, &code, 0x2000).unwrap();
    assert_eq!(decoded.ret_sites, vec![0x2005]);
}

#[test]
fn bitness_follows_the_arch() {
    // PUSHL ES; RET: valid in 32-bit mode, undecodable in 64-bit mode.
    let code = [0x06, 0xc3];
    let decoded = decode_function(Arch::I386, &code, 0x3000).unwrap();
    assert_eq!(decoded.ret_sites, vec![0x3001]);
    let err = decode_function(Arch::Amd64, &code, 0x3000).unwrap_err();
    assert!(err.to_string().contains("0x3000"), "{err}");
}

#[test]
fn arm64_ret_with_register_counts_and_br_does_not() {
    // RET (R1); BR (R1); RET
    let words: [u32; 3] = [0xd65f_0020, 0xd61f_0020, 0xd65f_03c0];
    let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let decoded = decode_function(Arch::Arm64, &code, 0x4000).unwrap();
    assert_eq!(decoded.ret_sites, vec![0x4000, 0x4008]);
}

#[test]
fn bad_input_is_an_error_naming_the_address() {
    let cases: [(Arch, &[u8], u64, &str); 5] = [
        (Arch::Amd64, &[], 0x5000, "0x5000"),
        // NOP; then a CALL cut off by the function's end.
        (
            Arch::Amd64,
            &[0x90, 0xe8, 0x00, 0x00],
            0x5000,
            "0x5001 (cut off",
        ),
        // NOP; then an undefined opcode, then NOPs.
        (
            Arch::I386,
            &[0x90, 0x0f, 0x0a, 0x90, 0x90],
            0x5000,
            "0x5001 (invalid",
        ),
        (
            Arch::Arm64,
            &[0xc0, 0x03, 0x5f, 0xd6, 0x00, 0x00],
            0x5000,
            "0x5000",
        ),
        (Arch::Arm64, &[0xc0, 0x03, 0x5f, 0xd6], 0x5002, "0x5002"),
    ];
    for (arch, code, entry, address) in cases {
        let err = decode_function(arch, code, entry).unwrap_err().to_string();
        assert!(err.contains(address), "{arch:?} {code:02x?}: {err}");
    }
}

proptest! {
    /// Arbitrary bytes never panic; whatever decodes stays inside the function.
    #[test]
    fn arbitrary_bytes_never_panic(
        arch in prop::sample::select(vec![Arch::Amd64, Arch::I386, Arch::Arm64]),
        code in prop::collection::vec(any::<u8>(), 0..200),
        entry in any::<u64>(),
    ) {
        if let Ok(decoded) = decode_function(arch, &code, entry) {
            let inside = |addr: u64| addr.wrapping_sub(entry) < code.len() as u64;
            prop_assert!(inside(decoded.entry_probe));
            prop_assert!(inside(decoded.entry.addr));
            prop_assert!(decoded.ret_sites.iter().all(|&addr| inside(addr)));
            prop_assert_eq!(decoded.ret_classes.len(), decoded.ret_sites.len());
            prop_assert!(decoded
                .tail_calls
                .iter()
                .all(|call| inside(call.site) && !inside(call.target)));
            prop_assert!(decoded.ret_sites.windows(2).all(|pair| pair[0] < pair[1]));
        }
    }
}
