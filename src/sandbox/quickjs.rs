//! JavaScript in wasmtime: QuickJS-NG compiled to a WASI reactor (npm `quickjs-wasi`), with every
//! host import implemented here, so nothing of the host — files, sockets, environment, real
//! clock, real randomness — can reach a solution.
//!
//! [`initialise`] runs once, to build the pre-initialised image: QuickJS started, limits set,
//! the prelude (console + captured intrinsics) evaluated. One test case ([`run_case`]) = one
//! fresh `Store` and instance of that image: apply the lab's limits, evaluate the harness and
//! the learner's source, then the call expression, which returns the result as a JSON string.
//! Any trap throws the instance away; nothing carries over to the next case.
//!
//! Guest values are "boxes": pointers to 8-byte JSValue cells in guest memory, created and
//! freed through the `qjs_*` exports (see ../shared/notes/quickjs-abi.md).

use std::time::Instant;

use wasmtime::{
    Caller, Instance, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, TypedFunc,
};

use super::{Failure, Limits};

/// Intrinsics for `qjs_init2`: everything except `eval`-style dynamic code is fine to offer;
/// the sandbox boundary is the wasm instance, not the JS feature set.
const INTRINSICS_ALL: i32 = -1;
/// `qjs_eval` flags.
const EVAL_GLOBAL: i32 = 0;
const EVAL_STRICT: i32 = 8;

/// Exception messages and stacks longer than this are cut (a solution can throw huge strings).
const EXCEPTION_TEXT_MAX: usize = 4096;

/// The virtual wall clock every run starts at: 2026-01-01T00:00:00Z.
const VIRTUAL_EPOCH_NS: u64 = 1_767_225_600_000_000_000;

pub const PRELUDE: &str = include_str!("prelude.js");

/// Per-run state the host imports read and write.
pub struct GuestState {
    limits: StoreLimits,
    console: String,
    console_cap: usize,
    output_exceeded: bool,
    deadline: Instant,
    deadline_hit: bool,
    clock_ns: u64,
    rng: u64,
}

impl GuestState {
    pub fn new(limits: &Limits, seed: u64) -> GuestState {
        GuestState {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes + (8 << 20))
                .instances(1)
                .tables(4)
                .memories(1)
                .build(),
            console: String::new(),
            console_cap: limits.output_bytes,
            output_exceeded: false,
            deadline: Instant::now() + limits.wall_clock,
            deadline_hit: false,
            clock_ns: VIRTUAL_EPOCH_NS,
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn limits_mut(&mut self) -> &mut StoreLimits {
        &mut self.limits
    }

    pub fn console(&self) -> &str {
        &self.console
    }

    pub fn output_exceeded(&self) -> bool {
        self.output_exceeded
    }

    pub fn deadline_hit(&self) -> bool {
        self.deadline_hit
    }

    /// Appends console output; returns false (and remembers) once the cap is passed.
    fn append_console(&mut self, text: &str) -> bool {
        if self.console.len() + text.len() + 1 > self.console_cap {
            self.output_exceeded = true;
            return false;
        }
        self.console.push_str(text);
        self.console.push('\n');
        true
    }

    /// xorshift64*: deterministic "randomness" for `random_get`. QuickJS seeds Math.random once,
    /// while the pre-initialised image is built, so every run sees the same Math.random sequence.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Raised from a host import to abort the run (becomes a trap; the instance is discarded).
#[derive(Debug)]
pub struct OutputLimitExceeded;

impl std::fmt::Display for OutputLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("console output limit exceeded")
    }
}

impl std::error::Error for OutputLimitExceeded {}

fn memory_of(caller: &mut Caller<'_, GuestState>) -> wasmtime::Result<wasmtime::Memory> {
    caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("guest has no memory export"))
}

fn guest_func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    caller: &mut Caller<'_, GuestState>,
    name: &str,
) -> wasmtime::Result<TypedFunc<P, R>> {
    caller
        .get_export(name)
        .and_then(|e| e.into_func())
        .ok_or_else(|| wasmtime::Error::msg(format!("guest does not export {name}")))?
        .typed::<P, R>(&*caller)
}

fn read_u32(
    memory: &wasmtime::Memory,
    caller: &Caller<'_, GuestState>,
    ptr: i32,
) -> wasmtime::Result<u32> {
    let mut bytes = [0u8; 4];
    memory.read(caller, ptr as u32 as usize, &mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

/// Reads a guest value as a string (QuickJS runs ToString on it) from inside a host import.
fn box_to_string(caller: &mut Caller<'_, GuestState>, value_box: i32) -> wasmtime::Result<String> {
    let malloc: TypedFunc<i32, i32> = guest_func(caller, "wasm_malloc")?;
    let free: TypedFunc<i32, ()> = guest_func(caller, "wasm_free")?;
    let get_string: TypedFunc<(i32, i32), i32> = guest_func(caller, "qjs_get_string_len")?;
    let free_cstring: TypedFunc<i32, ()> = guest_func(caller, "qjs_free_cstring")?;
    let len_ptr = malloc.call(&mut *caller, 4)?;
    let cstr = get_string.call(&mut *caller, (value_box, len_ptr))?;
    let memory = memory_of(caller)?;
    // Console lines are capped by the output limit anyway; never allocate more than that.
    let len = (read_u32(&memory, caller, len_ptr)? as usize).min(caller.data().console_cap + 1);
    let mut text = String::new();
    if cstr != 0 {
        let mut bytes = vec![0u8; len];
        memory.read(&*caller, cstr as u32 as usize, &mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        free_cstring.call(&mut *caller, cstr)?;
    }
    free.call(&mut *caller, len_ptr)?;
    Ok(text)
}

/// The twelve imports of quickjs.wasm, all implemented by the host.
pub fn add_imports(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "host_call",
        |mut caller: Caller<'_, GuestState>,
         name_ptr: i32,
         name_len: i32,
         _this: i32,
         argc: i32,
         argv: i32|
         -> wasmtime::Result<i32> {
            let memory = memory_of(&mut caller)?;
            // Host function names are ours and short; anything else is not a call we serve.
            if !(0..=64).contains(&name_len) || argc > 64 {
                return Err(wasmtime::Error::msg("malformed host call"));
            }
            let mut name = vec![0u8; name_len as usize];
            memory.read(&caller, name_ptr as u32 as usize, &mut name)?;
            if name == b"__labdeck_print" {
                let mut line = String::new();
                for i in 0..argc.max(0) {
                    let arg_box = read_u32(&memory, &caller, argv + 4 * i)? as i32;
                    if i > 0 {
                        line.push(' ');
                    }
                    line.push_str(&box_to_string(&mut caller, arg_box)?);
                }
                if !caller.data_mut().append_console(&line) {
                    return Err(wasmtime::Error::new(OutputLimitExceeded));
                }
            }
            let undefined: TypedFunc<(), i32> = guest_func(&mut caller, "qjs_get_undefined")?;
            undefined.call(&mut caller, ())
        },
    )?;
    linker.func_wrap(
        "env",
        "host_interrupt",
        |mut caller: Caller<'_, GuestState>| -> i32 {
            let state = caller.data_mut();
            if Instant::now() >= state.deadline {
                state.deadline_hit = true;
                1
            } else {
                0
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "host_promise_rejection",
        |_: Caller<'_, GuestState>, _: i32, _: i32, _: i32| {},
    )?;
    // No module loader: `import()` of anything fails inside the guest.
    linker.func_wrap(
        "env",
        "host_module_normalize",
        |_: Caller<'_, GuestState>, _: i32, _: i32| -> i32 { 0 },
    )?;
    linker.func_wrap(
        "env",
        "host_module_load",
        |_: Caller<'_, GuestState>, _: i32, _: i32| -> i32 { 0 },
    )?;
    linker.func_wrap(
        "env",
        "host_get_timezone_offset",
        |_: Caller<'_, GuestState>, _: i32, _: i32| -> i32 { 0 },
    )?;

    const ESUCCESS: i32 = 0;
    const EBADF: i32 = 8;
    const ENOSYS: i32 = 52;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "clock_time_get",
        |mut caller: Caller<'_, GuestState>,
         _id: i32,
         _precision: i64,
         out: i32|
         -> wasmtime::Result<i32> {
            // A virtual clock: starts at a fixed instant and advances 1 ms per reading, so
            // Date.now() and performance.now() move forward but every run sees the same values.
            let now = {
                let state = caller.data_mut();
                state.clock_ns += 1_000_000;
                state.clock_ns
            };
            let memory = memory_of(&mut caller)?;
            memory.write(&mut caller, out as u32 as usize, &now.to_le_bytes())?;
            Ok(ESUCCESS)
        },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_write",
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         nwritten: i32|
         -> wasmtime::Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            let memory = memory_of(&mut caller)?;
            if iovs_len > 1024 {
                return Ok(EBADF);
            }
            let mut total = 0u32;
            let mut text = Vec::new();
            for i in 0..iovs_len.max(0) {
                let ptr = read_u32(&memory, &caller, iovs + 8 * i)?;
                let len = read_u32(&memory, &caller, iovs + 8 * i + 4)?;
                let mut chunk = vec![0u8; len.min(1 << 20) as usize];
                memory.read(&caller, ptr as usize, &mut chunk)?;
                text.extend_from_slice(&chunk);
                total = total.saturating_add(len);
            }
            let line = String::from_utf8_lossy(&text);
            if !caller
                .data_mut()
                .append_console(line.trim_end_matches('\n'))
            {
                return Err(wasmtime::Error::new(OutputLimitExceeded));
            }
            memory.write(&mut caller, nwritten as u32 as usize, &total.to_le_bytes())?;
            Ok(ESUCCESS)
        },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_close",
        |_: Caller<'_, GuestState>, _: i32| -> i32 { ENOSYS },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_seek",
        |_: Caller<'_, GuestState>, _: i32, _: i64, _: i32, _: i32| -> i32 { ENOSYS },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_fdstat_get",
        |mut caller: Caller<'_, GuestState>, fd: i32, stat: i32| -> wasmtime::Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            // filetype = character device (2); no flags, no rights beyond what the guest assumes.
            let mut record = [0u8; 24];
            record[0] = 2;
            let memory = memory_of(&mut caller)?;
            memory.write(&mut caller, stat as u32 as usize, &record)?;
            Ok(ESUCCESS)
        },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "random_get",
        |mut caller: Caller<'_, GuestState>, buf: i32, len: i32| -> wasmtime::Result<i32> {
            if !(0..=65_536).contains(&len) {
                return Ok(ENOSYS);
            }
            let mut bytes = Vec::with_capacity(len as usize);
            while bytes.len() < len.max(0) as usize {
                bytes.extend_from_slice(&caller.data_mut().next_random().to_le_bytes());
            }
            bytes.truncate(len.max(0) as usize);
            let memory = memory_of(&mut caller)?;
            memory.write(&mut caller, buf as u32 as usize, &bytes)?;
            Ok(ESUCCESS)
        },
    )?;
    Ok(())
}

/// Typed handles to the exports a run uses.
struct Exports {
    memory: wasmtime::Memory,
    malloc: TypedFunc<i32, i32>,
    free: TypedFunc<i32, ()>,
    eval: TypedFunc<(i32, i32, i32, i32), i32>,
    is_exception: TypedFunc<i32, i32>,
    get_exception: TypedFunc<(), i32>,
    is_error: TypedFunc<i32, i32>,
    free_value: TypedFunc<i32, ()>,
    get_string_len: TypedFunc<(i32, i32), i32>,
    free_cstring: TypedFunc<i32, ()>,
    get_prop_string: TypedFunc<(i32, i32), i32>,
    is_job_pending: TypedFunc<(), i32>,
    execute_pending_job: TypedFunc<(), i32>,
}

impl Exports {
    fn new(store: &mut Store<GuestState>, instance: &Instance) -> wasmtime::Result<Exports> {
        Ok(Exports {
            memory: instance
                .get_memory(&mut *store, "memory")
                .ok_or_else(|| wasmtime::Error::msg("no memory export"))?,
            malloc: instance.get_typed_func(&mut *store, "wasm_malloc")?,
            free: instance.get_typed_func(&mut *store, "wasm_free")?,
            eval: instance.get_typed_func(&mut *store, "qjs_eval")?,
            is_exception: instance.get_typed_func(&mut *store, "qjs_is_exception")?,
            get_exception: instance.get_typed_func(&mut *store, "qjs_get_exception")?,
            is_error: instance.get_typed_func(&mut *store, "qjs_is_error")?,
            free_value: instance.get_typed_func(&mut *store, "qjs_free_value")?,
            get_string_len: instance.get_typed_func(&mut *store, "qjs_get_string_len")?,
            free_cstring: instance.get_typed_func(&mut *store, "qjs_free_cstring")?,
            get_prop_string: instance.get_typed_func(&mut *store, "qjs_get_prop_string")?,
            is_job_pending: instance.get_typed_func(&mut *store, "qjs_is_job_pending")?,
            execute_pending_job: instance.get_typed_func(&mut *store, "qjs_execute_pending_job")?,
        })
    }

    /// Copies `text` plus a NUL into guest memory; the caller frees the pointer.
    fn write_cstr(
        &self,
        store: &mut Store<GuestState>,
        text: &str,
    ) -> wasmtime::Result<(i32, i32)> {
        let len =
            i32::try_from(text.len()).map_err(|_| wasmtime::Error::msg("string too large"))?;
        let ptr = self.malloc.call(&mut *store, len + 1)?;
        if ptr == 0 {
            return Err(wasmtime::Error::msg("guest out of memory"));
        }
        self.memory
            .write(&mut *store, ptr as u32 as usize, text.as_bytes())?;
        self.memory
            .write(&mut *store, ptr as u32 as usize + text.len(), &[0])?;
        Ok((ptr, len))
    }

    /// Reads a guest value as a string, at most `max` bytes (the rest is cut off).
    fn read_string_capped(
        &self,
        store: &mut Store<GuestState>,
        value_box: i32,
        max: usize,
    ) -> wasmtime::Result<Option<String>> {
        let len_ptr = self.malloc.call(&mut *store, 4)?;
        let cstr = self
            .get_string_len
            .call(&mut *store, (value_box, len_ptr))?;
        let mut len_bytes = [0u8; 4];
        self.memory
            .read(&*store, len_ptr as u32 as usize, &mut len_bytes)?;
        self.free.call(&mut *store, len_ptr)?;
        if cstr == 0 {
            return Ok(None);
        }
        let mut bytes = vec![0u8; (u32::from_le_bytes(len_bytes) as usize).min(max)];
        self.memory
            .read(&*store, cstr as u32 as usize, &mut bytes)?;
        self.free_cstring.call(&mut *store, cstr)?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn read_string(
        &self,
        store: &mut Store<GuestState>,
        value_box: i32,
    ) -> wasmtime::Result<Option<String>> {
        // Results are bounded by the memory limit anyway; this is the hard ceiling.
        self.read_string_capped(store, value_box, 64 << 20)
    }

    /// Evaluates a script; `Ok(Err(exception))` when the script threw.
    fn eval(
        &self,
        store: &mut Store<GuestState>,
        code: &str,
        filename: &str,
        strict: bool,
    ) -> wasmtime::Result<Result<i32, JsException>> {
        let (code_ptr, code_len) = self.write_cstr(store, code)?;
        let (name_ptr, _) = self.write_cstr(store, filename)?;
        let flags = if strict {
            EVAL_GLOBAL | EVAL_STRICT
        } else {
            EVAL_GLOBAL
        };
        let result = self
            .eval
            .call(&mut *store, (code_ptr, code_len, name_ptr, flags))?;
        self.free.call(&mut *store, code_ptr)?;
        self.free.call(&mut *store, name_ptr)?;
        self.settle(store, result)
    }

    /// Turns an exception box into a described exception; passes other values through after
    /// running queued promise jobs.
    fn settle(
        &self,
        store: &mut Store<GuestState>,
        result: i32,
    ) -> wasmtime::Result<Result<i32, JsException>> {
        if self.is_exception.call(&mut *store, result)? != 0 {
            self.free_value.call(&mut *store, result)?;
            return Ok(Err(self.take_exception(store)?));
        }
        while self.is_job_pending.call(&mut *store, ())? != 0 {
            if self.execute_pending_job.call(&mut *store, ())? < 0 {
                self.free_value.call(&mut *store, result)?;
                return Ok(Err(self.take_exception(store)?));
            }
        }
        Ok(Ok(result))
    }

    fn take_exception(&self, store: &mut Store<GuestState>) -> wasmtime::Result<JsException> {
        let exception = self.get_exception.call(&mut *store, ())?;
        let is_error = self.is_error.call(&mut *store, exception)? != 0;
        let message = self
            .read_string_capped(store, exception, EXCEPTION_TEXT_MAX)?
            .unwrap_or_else(|| "[exception that cannot be turned into a string]".to_string());
        let mut stack = String::new();
        if is_error {
            let (key, _) = self.write_cstr(store, "stack")?;
            let stack_box = self.get_prop_string.call(&mut *store, (exception, key))?;
            self.free.call(&mut *store, key)?;
            stack = self
                .read_string_capped(store, stack_box, EXCEPTION_TEXT_MAX)?
                .unwrap_or_default();
            self.free_value.call(&mut *store, stack_box)?;
            if stack == "undefined" {
                stack.clear();
            }
        }
        self.free_value.call(&mut *store, exception)?;
        Ok(JsException {
            message,
            stack,
            is_error,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JsException {
    /// `String(exception)`, e.g. "TypeError: x is not a function" or "42".
    pub message: String,
    pub stack: String,
    pub is_error: bool,
}

impl JsException {
    /// Maps QuickJS's own limit errors to their verdicts; anything else is a runtime error.
    pub fn into_failure(self, compiling: bool) -> Failure {
        let message = self.message.trim().to_string();
        // Only real Error objects map to limit verdicts: `throw "InternalError: interrupted"`
        // is just a thrown string.
        if !self.is_error {
            return Failure::RuntimeError {
                message: format!("Uncaught {message}"),
                stack: self.stack,
            };
        }
        if message == "InternalError: out of memory" {
            Failure::MemoryLimit
        } else if message.starts_with("RangeError: Maximum call stack size exceeded")
            || message == "InternalError: stack overflow"
        {
            Failure::StackOverflow
        } else if message == "InternalError: interrupted" {
            Failure::TimeLimit
        } else if compiling && message.starts_with("SyntaxError") {
            Failure::CompileError {
                message: self.stack_or(message),
            }
        } else {
            Failure::RuntimeError {
                message,
                stack: self.stack,
            }
        }
    }

    fn stack_or(&self, message: String) -> String {
        if self.stack.is_empty() {
            message
        } else {
            format!("{message}\n{}", self.stack.trim_end())
        }
    }
}

/// What the learner's code is evaluated with for one test case.
pub struct JsProgram<'a> {
    pub harness: &'a str,
    pub source: &'a str,
    /// An expression evaluating to a JSON string, e.g. `__labdeck_case({...})`.
    pub call: &'a str,
}

/// Brings a fresh instance of the original module to the state every run starts from:
/// QuickJS initialised, limits and interrupt handler set, `__labdeck_print` installed and the
/// prelude evaluated. Done once to build the pre-initialised image (see `snapshot`).
pub fn initialise(
    store: &mut Store<GuestState>,
    instance: &Instance,
    limits: &Limits,
) -> wasmtime::Result<()> {
    let initialize: TypedFunc<(), ()> = instance.get_typed_func(&mut *store, "_initialize")?;
    initialize.call(&mut *store, ())?;
    let init2: TypedFunc<i32, i32> = instance.get_typed_func(&mut *store, "qjs_init2")?;
    if init2.call(&mut *store, INTRINSICS_ALL)? != 0 {
        return Err(wasmtime::Error::msg("QuickJS failed to initialise"));
    }
    apply_limits(store, instance, limits)?;
    let set_interrupt: TypedFunc<i32, ()> =
        instance.get_typed_func(&mut *store, "qjs_set_interrupt_handler")?;
    set_interrupt.call(&mut *store, 1)?;

    let exports = Exports::new(store, instance)?;
    // The print function the prelude captures.
    let new_host_function: TypedFunc<(i32, i32, i32), i32> =
        instance.get_typed_func(&mut *store, "qjs_new_host_function")?;
    let get_global: TypedFunc<(), i32> = instance.get_typed_func(&mut *store, "qjs_get_global")?;
    let set_prop: TypedFunc<(i32, i32, i32), i32> =
        instance.get_typed_func(&mut *store, "qjs_set_prop_string")?;
    let (name_ptr, name_len) = exports.write_cstr(store, "__labdeck_print")?;
    let print = new_host_function.call(&mut *store, (name_ptr, name_len, 1))?;
    let global = get_global.call(&mut *store, ())?;
    set_prop.call(&mut *store, (global, name_ptr, print))?;
    exports.free_value.call(&mut *store, print)?;
    exports.free_value.call(&mut *store, global)?;
    exports.free.call(&mut *store, name_ptr)?;
    match exports.eval(store, PRELUDE, "prelude.js", true)? {
        Ok(value) => exports.free_value.call(&mut *store, value)?,
        Err(exception) => {
            return Err(wasmtime::Error::msg(format!(
                "prelude.js failed: {}",
                exception.message
            )));
        }
    }
    Ok(())
}

/// The per-lab QuickJS memory and stack limits (cheap; applied on every run).
fn apply_limits(
    store: &mut Store<GuestState>,
    instance: &Instance,
    limits: &Limits,
) -> wasmtime::Result<()> {
    let set_memory_limit: TypedFunc<i32, ()> =
        instance.get_typed_func(&mut *store, "qjs_set_memory_limit")?;
    set_memory_limit.call(
        &mut *store,
        i32::try_from(limits.memory_bytes).unwrap_or(i32::MAX),
    )?;
    let set_stack: TypedFunc<i32, ()> =
        instance.get_typed_func(&mut *store, "qjs_set_max_stack_size")?;
    set_stack.call(
        &mut *store,
        i32::try_from(limits.js_stack_bytes).unwrap_or(512 * 1024),
    )?;
    Ok(())
}

/// Runs one case in `store` (fresh, fuel and epoch deadline already set) on an instance of the
/// pre-initialised image. Host-level errors (traps) come back as `Err`; JavaScript-level
/// outcomes as `Ok`.
pub fn run_case(
    store: &mut Store<GuestState>,
    linker: &Linker<GuestState>,
    image: &Module,
    limits: &Limits,
    program: &JsProgram<'_>,
) -> wasmtime::Result<Result<String, Failure>> {
    let instance = linker.instantiate(&mut *store, image)?;
    apply_limits(store, &instance, limits)?;
    let exports = Exports::new(store, &instance)?;
    if let Err(exception) = exports.eval(store, program.harness, "harness.js", true)? {
        return Err(wasmtime::Error::msg(format!(
            "harness.js failed: {}",
            exception.message
        )));
    }
    match exports.eval(store, program.source, "solution.js", false)? {
        Ok(value) => exports.free_value.call(&mut *store, value)?,
        Err(exception) => return Ok(Err(exception.into_failure(true))),
    }
    let result = match exports.eval(store, program.call, "harness-call.js", true)? {
        Ok(value) => value,
        Err(exception) => return Ok(Err(exception.into_failure(false))),
    };
    let text = exports.read_string(store, result)?;
    exports.free_value.call(&mut *store, result)?;
    Ok(text.ok_or_else(|| Failure::InvalidOutput {
        message: "the result could not be read as text".to_string(),
    }))
}
