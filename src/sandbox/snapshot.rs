//! A pre-initialised QuickJS image, Wizer-style.
//!
//! Initialising QuickJS (`_initialize`, `qjs_init2`, limits, the print host function, the
//! prelude) costs most of a fresh run. We do it once in a throw-away instance, then write a new
//! module whose data segments are that instance's memory and whose `__stack_pointer` starts
//! where it ended, so every later instance starts already initialised — copy-on-write from the
//! pooling allocator instead of re-running the init code. QuickJS keeps all of its state in
//! linear memory (the runtime and context pointers are C statics), which is what makes this
//! sound; the module's only global is the stack pointer.

use std::convert::Infallible;

use wasm_encoder::reencode::{Error, Reencode, utils};
use wasm_encoder::{ConstExpr, DataSection, GlobalSection, MemorySection, MemoryType};

/// Zero runs shorter than this are kept inside a segment rather than splitting it.
const MERGE_GAP: usize = 64;

struct Snapshotter<'a> {
    memory: &'a [u8],
    stack_pointer: i32,
    segments: Vec<(usize, usize)>,
    global_index: u32,
}

impl<'a> Snapshotter<'a> {
    fn new(memory: &'a [u8], stack_pointer: i32) -> Snapshotter<'a> {
        // Non-zero runs of memory, merged across short gaps.
        let mut segments: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i < memory.len() {
            if memory[i] == 0 {
                i += 1;
                continue;
            }
            let start = i;
            let mut end = i;
            while end < memory.len() {
                if memory[end] != 0 {
                    end += 1;
                    continue;
                }
                let zeros = memory[end..]
                    .iter()
                    .take(MERGE_GAP)
                    .take_while(|b| **b == 0)
                    .count();
                if zeros >= MERGE_GAP || end + zeros >= memory.len() {
                    break;
                }
                end += zeros;
            }
            segments.push((start, end));
            i = end;
        }
        Snapshotter {
            memory,
            stack_pointer,
            segments,
            global_index: 0,
        }
    }
}

impl Reencode for Snapshotter<'_> {
    type Error = Infallible;

    fn data_count(&mut self, _count: u32) -> Result<u32, Error<Infallible>> {
        Ok(self.segments.len() as u32)
    }

    fn parse_data_section(
        &mut self,
        data: &mut DataSection,
        _section: wasmparser::DataSectionReader<'_>,
    ) -> Result<(), Error<Infallible>> {
        for &(start, end) in &self.segments {
            data.active(
                0,
                &ConstExpr::i32_const(start as i32),
                self.memory[start..end].iter().copied(),
            );
        }
        Ok(())
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), Error<Infallible>> {
        for memory in section {
            let memory = memory.map_err(Error::ParseError)?;
            let pages = (self.memory.len() as u64).div_ceil(1 << 16);
            memories.memory(MemoryType {
                minimum: pages.max(memory.initial),
                maximum: memory.maximum,
                memory64: memory.memory64,
                shared: memory.shared,
                page_size_log2: memory.page_size_log2,
            });
        }
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), Error<Infallible>> {
        for global in section {
            let global = global.map_err(Error::ParseError)?;
            // The module's first global is __stack_pointer (checked by the caller).
            if self.global_index == 0 {
                globals.global(
                    self.global_type(global.ty)?,
                    &ConstExpr::i32_const(self.stack_pointer),
                );
            } else {
                utils::parse_global(self, globals, global)?;
            }
            self.global_index += 1;
        }
        Ok(())
    }
}

/// Returns a module equal to `original` whose memory and stack pointer start as captured.
pub fn build(original: &[u8], memory: &[u8], stack_pointer: i32) -> anyhow::Result<Vec<u8>> {
    let mut snapshotter = Snapshotter::new(memory, stack_pointer);
    let mut module = wasm_encoder::Module::new();
    snapshotter
        .parse_core_module(&mut module, wasmparser::Parser::new(0), original)
        .map_err(|e| anyhow::anyhow!("rewriting the QuickJS module: {e:?}"))?;
    Ok(module.finish())
}

/// Whether the first global of `wasm` is the exported mutable `__stack_pointer` and it is the
/// only mutable global: the condition under which [`build`] captures all of the state.
pub fn stack_pointer_is_the_only_state(wasm: &[u8]) -> bool {
    let mut mutable_globals = 0;
    let mut exported_first = false;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::GlobalSection(reader)) => {
                for global in reader.into_iter().flatten() {
                    if global.ty.mutable {
                        mutable_globals += 1;
                    }
                }
            }
            Ok(wasmparser::Payload::ExportSection(reader)) => {
                for export in reader.into_iter().flatten() {
                    if export.name == "__stack_pointer"
                        && export.kind == wasmparser::ExternalKind::Global
                        && export.index == 0
                    {
                        exported_first = true;
                    }
                }
            }
            Err(_) => return false,
            _ => {}
        }
    }
    exported_first && mutable_globals == 1
}
