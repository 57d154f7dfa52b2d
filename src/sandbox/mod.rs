//! The sandbox: runs untrusted solutions in wasmtime with hard limits and turns every way out
//! of a limit into a verdict.
//!
//! - JavaScript runs inside QuickJS-NG compiled to WebAssembly ([`quickjs`]); WebAssembly
//!   solutions (binary or WAT) run as WASI commands with the test input on stdin and the answer
//!   on stdout, no preopened directories, no environment ([`wasi`]).
//! - CPU is metered with fuel, so a time-limit verdict is deterministic (same code, same fuel,
//!   same verdict); an epoch deadline is the wall-clock backstop. Memory is capped by
//!   `StoreLimits` and QuickJS's own limit, stack by QuickJS's stack limit and wasmtime's
//!   `max_wasm_stack`, console output by the host.
//! - Every test case gets a fresh store and instance from the pooling allocator, instantiated
//!   from a pre-initialised QuickJS image ([`snapshot`]); a trap drops it and nothing leaks into
//!   the next case. Compiled modules are cached on disk.
//! - Runs happen on dedicated threads fed by a bounded queue ([`pool`]) so a submission never
//!   blocks the async server, and a full queue answers "busy" instead of piling up.

pub mod pool;
pub mod quickjs;
pub mod snapshot;
pub mod wasi;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Linker, Module, OptLevel, PoolingAllocationConfig,
    Store, Trap,
};

use quickjs::{GuestState, JsProgram, OutputLimitExceeded};

/// Limits for one test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// wasmtime fuel (≈ one unit per wasm instruction; about 10^10 per CPU-second here).
    pub fuel: u64,
    pub memory_bytes: usize,
    /// QuickJS's JavaScript stack limit.
    pub js_stack_bytes: usize,
    pub output_bytes: usize,
    pub source_bytes: usize,
    /// Backstop only: fuel decides time limits; this catches anything fuel cannot see.
    pub wall_clock: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 2_000_000_000,
            memory_bytes: 32 << 20,
            js_stack_bytes: 256 << 10,
            output_bytes: 64 << 10,
            source_bytes: 64 << 10,
            wall_clock: Duration::from_secs(5),
        }
    }
}

/// Why a run did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    TimeLimit,
    MemoryLimit,
    StackOverflow,
    OutputLimit,
    SourceTooLarge {
        limit_bytes: usize,
    },
    CompileError {
        message: String,
    },
    RuntimeError {
        message: String,
        stack: String,
    },
    /// The program ran but its answer is not valid JSON / cannot be serialised.
    InvalidOutput {
        message: String,
    },
}

impl Failure {
    /// A short verdict name for storage and badges.
    pub fn verdict(&self) -> &'static str {
        match self {
            Failure::TimeLimit => "time_limit",
            Failure::MemoryLimit => "memory_limit",
            Failure::StackOverflow => "stack_overflow",
            Failure::OutputLimit => "output_limit",
            Failure::SourceTooLarge { .. } => "source_too_large",
            Failure::CompileError { .. } => "compile_error",
            Failure::RuntimeError { .. } => "runtime_error",
            Failure::InvalidOutput { .. } => "invalid_output",
        }
    }

    /// What the learner is told.
    pub fn describe(&self) -> String {
        match self {
            Failure::TimeLimit => "Time limit exceeded: the solution used its whole CPU budget (an endless loop, or far too much work).".into(),
            Failure::MemoryLimit => "Memory limit exceeded.".into(),
            Failure::StackOverflow => "Stack overflow: recursion too deep.".into(),
            Failure::OutputLimit => "Output limit exceeded: too much console output.".into(),
            Failure::SourceTooLarge { limit_bytes } => format!("The solution is larger than {} KiB.", limit_bytes / 1024),
            Failure::CompileError { message } => format!("Compile error: {message}"),
            Failure::RuntimeError { message, .. } => format!("Runtime error: {message}"),
            Failure::InvalidOutput { message } => format!("Invalid output: {message}"),
        }
    }
}

/// The result of running one test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<serde_json::Value, Failure>,
    pub console: String,
    pub fuel_used: u64,
    pub elapsed: Duration,
}

/// How often the epoch advances: the granularity of the wall-clock backstop.
const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct Sandbox {
    engine: Engine,
    quickjs: Module,
    js_linker: Linker<GuestState>,
}

impl Sandbox {
    /// Builds the engine and loads `quickjs.wasm`, compiling it only when the on-disk cache in
    /// `cache_dir` has no artifact for this wasm file and this engine.
    pub fn new(quickjs_wasm: &Path, cache_dir: Option<&Path>) -> anyhow::Result<Sandbox> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(64)
            .total_memories(64)
            .total_tables(64)
            .max_memory_size(512 << 20)
            .table_elements(4096);
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(16 << 20)
            // Unused (runs are synchronous) but must not be smaller than the wasm stack.
            .async_stack_size(20 << 20)
            .cranelift_opt_level(OptLevel::Speed)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        spawn_epoch_ticker(&engine);
        let bytes = std::fs::read(quickjs_wasm).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the JavaScript engine at {} ({e}); run `npm ci` (make run / make test do)",
                quickjs_wasm.display()
            )
        })?;
        let mut js_linker = Linker::new(&engine);
        quickjs::add_imports(&mut js_linker)?;
        let original = cached_module(&engine, &bytes, cache_dir, "quickjs")?;
        let quickjs = pre_initialise(&engine, &js_linker, &bytes, &original, cache_dir)?;
        Ok(Sandbox {
            engine,
            quickjs,
            js_linker,
        })
    }

    /// The default locations: `node_modules/quickjs-wasi/quickjs.wasm` under `root`, and the
    /// module cache under `$XDG_CACHE_HOME/labdeck` (or `~/.cache/labdeck`).
    pub fn from_project(root: &Path) -> anyhow::Result<Sandbox> {
        let wasm = std::env::var_os("LABDECK_QUICKJS_WASM")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("node_modules/quickjs-wasi/quickjs.wasm"));
        Sandbox::new(&wasm, default_cache_dir().as_deref())
    }

    fn new_store(&self, limits: &Limits, seed: u64) -> anyhow::Result<Store<GuestState>> {
        let mut store = Store::new(&self.engine, GuestState::new(limits, seed));
        store.limiter(|state| state.limits_mut());
        store.set_fuel(limits.fuel)?;
        let ticks = (limits.wall_clock.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        Ok(store)
    }

    /// Runs one JavaScript test case. Never panics; host problems become a runtime error.
    pub fn run_js(&self, program: &JsProgram<'_>, limits: &Limits, seed: u64) -> Outcome {
        let started = Instant::now();
        if program.source.len() > limits.source_bytes {
            return Outcome {
                result: Err(Failure::SourceTooLarge {
                    limit_bytes: limits.source_bytes,
                }),
                console: String::new(),
                fuel_used: 0,
                elapsed: started.elapsed(),
            };
        }
        let mut store = match self.new_store(limits, seed) {
            Ok(store) => store,
            Err(err) => return host_failure(err, started),
        };
        let run = quickjs::run_case(&mut store, &self.js_linker, &self.quickjs, limits, program);
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.data();
        let result = match run {
            Ok(Ok(json)) => serde_json::from_str(&json).map_err(|e| Failure::InvalidOutput {
                message: format!("the harness returned something that is not JSON ({e})"),
            }),
            Ok(Err(failure)) => Err(if failure == Failure::TimeLimit || state.deadline_hit() {
                Failure::TimeLimit
            } else {
                failure
            }),
            Err(err) => Err(classify_trap(&err, state.output_exceeded(), true)),
        };
        Outcome {
            result,
            console: state.console().to_string(),
            fuel_used,
            elapsed: started.elapsed(),
        }
    }

    /// Compiles a WebAssembly solution (binary or WAT text).
    pub fn compile_wasm(&self, bytes: &[u8], limits: &Limits) -> Result<Module, Failure> {
        if bytes.len() > limits.source_bytes.max(4 << 20) {
            return Err(Failure::SourceTooLarge {
                limit_bytes: limits.source_bytes.max(4 << 20),
            });
        }
        Module::new(&self.engine, bytes).map_err(|e| {
            let message = format!("{e:#}");
            // The pooling allocator rejects oversized memories when the module is compiled.
            if message.contains("minimum byte size") {
                Failure::MemoryLimit
            } else {
                Failure::CompileError { message }
            }
        })
    }

    /// Runs one test case of a compiled WebAssembly solution.
    pub fn run_wasm(&self, module: &Module, input: &serde_json::Value, limits: &Limits) -> Outcome {
        wasi::run(&self.engine, module, input, limits)
    }
}

fn host_failure(err: anyhow::Error, started: Instant) -> Outcome {
    tracing::error!(error = %err, "sandbox host error");
    Outcome {
        result: Err(Failure::RuntimeError {
            message: "the sandbox could not start this run".into(),
            stack: String::new(),
        }),
        console: String::new(),
        fuel_used: 0,
        elapsed: started.elapsed(),
    }
}

/// Maps a wasmtime error to a verdict. `trusted_guest` is true for QuickJS, whose out-of-bounds
/// accesses only happen when its shadow stack overflows.
pub fn classify_trap(err: &wasmtime::Error, output_exceeded: bool, trusted_guest: bool) -> Failure {
    if output_exceeded || err.downcast_ref::<OutputLimitExceeded>().is_some() {
        return Failure::OutputLimit;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) | Some(Trap::Interrupt) => Failure::TimeLimit,
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        Some(Trap::MemoryOutOfBounds) if trusted_guest => Failure::StackOverflow,
        Some(trap) => Failure::RuntimeError {
            message: format!("wasm trap: {trap}"),
            stack: String::new(),
        },
        None => {
            let text = format!("{err:#}");
            if text.contains("memory minimum size")
                || text.contains("exceeds memory limits")
                || text.contains("memory limit")
            {
                Failure::MemoryLimit
            } else {
                Failure::RuntimeError {
                    message: text,
                    stack: String::new(),
                }
            }
        }
    }
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("sandbox-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "could not start the sandbox epoch thread; wall-clock backstop disabled");
    }
}

/// The user's cache directory. Deliberately no fallback to a shared temp directory: cached
/// artifacts are native code, and another local user must not be able to plant one. Without a
/// cache directory modules are compiled at every start.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|dir| dir.join("labdeck").join("modules"))
}

/// Runs QuickJS's initialisation and the prelude once, then builds (or loads from the cache)
/// the pre-initialised image every run instantiates; see [`snapshot`].
fn pre_initialise(
    engine: &Engine,
    linker: &Linker<GuestState>,
    wasm: &[u8],
    original: &Module,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Module> {
    if !snapshot::stack_pointer_is_the_only_state(wasm) {
        anyhow::bail!(
            "this quickjs.wasm keeps state outside linear memory; cannot pre-initialise it"
        );
    }
    let limits = Limits {
        wall_clock: Duration::from_secs(30),
        fuel: u64::MAX / 2,
        ..Limits::default()
    };
    let mut store = Store::new(engine, GuestState::new(&limits, 0));
    store.limiter(|state| state.limits_mut());
    store.set_fuel(limits.fuel)?;
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = linker.instantiate(&mut store, original)?;
    quickjs::initialise(&mut store, &instance, &limits)?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| anyhow::anyhow!("quickjs.wasm exports no memory"))?;
    let stack_pointer = instance
        .get_global(&mut store, "__stack_pointer")
        .and_then(|g| g.get(&mut store).i32())
        .ok_or_else(|| anyhow::anyhow!("quickjs.wasm exports no __stack_pointer"))?;
    let image = snapshot::build(wasm, memory.data(&store), stack_pointer)?;
    cached_module(engine, &image, cache_dir, "quickjs-image")
}

/// Loads a precompiled module from the cache, or compiles and stores it. Cache files are named
/// after the wasm's SHA-256 and the engine's compatibility hash, and only labdeck writes them.
fn cached_module(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: Option<&Path>,
    name: &str,
) -> anyhow::Result<Module> {
    let Some(cache_dir) = cache_dir else {
        return Ok(Module::new(engine, wasm)?);
    };
    let digest: String = Sha256::digest(wasm)
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let path = cache_dir.join(format!("{name}-{digest}-{:016x}.cwasm", hasher.finish()));
    if path.exists() {
        match deserialize_own_artifact(engine, &path) {
            Ok(module) => return Ok(module),
            Err(err) => {
                tracing::warn!(error = %err, path = %path.display(), "ignoring unusable module cache")
            }
        }
    }
    let started = Instant::now();
    let artifact = engine.precompile_module(wasm)?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "compiled the JavaScript engine"
    );
    if std::fs::create_dir_all(cache_dir).is_ok() {
        // Unique per writer: threads of one process may compile the same module at once.
        let tmp = path.with_extension(format!(
            "tmp-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        if std::fs::write(&tmp, &artifact).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    deserialize_own_artifact_bytes(engine, &artifact)
}

#[allow(unsafe_code)]
fn deserialize_own_artifact(engine: &Engine, path: &Path) -> anyhow::Result<Module> {
    // SAFETY: the file was produced by `Engine::precompile_module` in this same cache (its name
    // carries the engine's compatibility hash and the source's digest); wasmtime validates the
    // header and refuses artifacts from other engine versions or configurations.
    Ok(unsafe { Module::deserialize_file(engine, path) }?)
}

#[allow(unsafe_code)]
fn deserialize_own_artifact_bytes(engine: &Engine, artifact: &[u8]) -> anyhow::Result<Module> {
    // SAFETY: the bytes were produced just now by `Engine::precompile_module` on this engine.
    Ok(unsafe { Module::deserialize(engine, artifact) }?)
}
