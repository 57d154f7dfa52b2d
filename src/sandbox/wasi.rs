//! WebAssembly solutions as WASI commands: the test input as JSON on stdin, the answer as JSON
//! on stdout. The WASI context has no preopened directories, no environment, no arguments and
//! no sockets; stdout is capped; `proc_exit(0)` counts as a normal return.

use std::time::Instant;

use wasmtime::{Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

use super::{Failure, Limits, Outcome, classify_trap};

struct WasmState {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

pub fn run(
    engine: &Engine,
    module: &Module,
    input: &serde_json::Value,
    limits: &Limits,
) -> Outcome {
    let started = Instant::now();
    let stdout = MemoryOutputPipe::new(limits.output_bytes + 1);
    let stderr = MemoryOutputPipe::new(limits.output_bytes + 1);
    let wasi = WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(input.to_string().into_bytes()))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build_p1();
    let state = WasmState {
        wasi,
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(1)
            .tables(4)
            .memories(1)
            .build(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    let outcome = |result, fuel_used| Outcome {
        result,
        console: String::from_utf8_lossy(&stderr.contents()).into_owned(),
        fuel_used,
        elapsed: started.elapsed(),
    };
    if let Err(err) = store.set_fuel(limits.fuel) {
        return outcome(
            Err(Failure::RuntimeError {
                message: err.to_string(),
                stack: String::new(),
            }),
            0,
        );
    }
    store.set_epoch_deadline((limits.wall_clock.as_millis() / 10).max(1) as u64);

    let mut linker: Linker<WasmState> = Linker::new(engine);
    if let Err(err) = link_wasi(&mut linker) {
        return outcome(
            Err(Failure::RuntimeError {
                message: err.to_string(),
                stack: String::new(),
            }),
            0,
        );
    }
    let run = linker
        .instantiate(&mut store, module)
        .map_err(|err| instantiate_failure(&err))
        .and_then(|instance| {
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .map_err(|_| Failure::CompileError {
                    message: "the module must be a WASI command exporting `_start` (compile for wasm32-wasip1)".into(),
                })?;
            match start.call(&mut store, ()) {
                Ok(()) => Ok(()),
                Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    Some(exit) if exit.0 == 0 => Ok(()),
                    Some(exit) => Err(Failure::RuntimeError {
                        message: format!("exited with status {}", exit.0),
                        stack: String::new(),
                    }),
                    None => Err(classify_trap(&err, false, false)),
                },
            }
        });
    let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let output = stdout.contents();
    let result = run.and_then(|()| {
        if output.len() > limits.output_bytes || stderr.contents().len() > limits.output_bytes {
            return Err(Failure::OutputLimit);
        }
        serde_json::from_slice(&output).map_err(|e| Failure::InvalidOutput {
            message: format!("stdout must hold one JSON value ({e})"),
        })
    });
    outcome(result, fuel_used)
}

/// WASI preview 1, minus the calls that block the host thread: `poll_oneoff` sleeps on the host
/// (fuel and epochs only interrupt wasm code, not a host call in progress) and `sched_yield`
/// yields it. Both answer ENOSYS, so a solution cannot park a grader thread.
fn link_wasi(linker: &mut Linker<WasmState>) -> wasmtime::Result<()> {
    const ENOSYS: i32 = 52;
    wasmtime_wasi::p1::add_to_linker_sync(linker, |s| &mut s.wasi)?;
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |_: wasmtime::Caller<'_, WasmState>, _: i32, _: i32, _: i32, _: i32| -> i32 { ENOSYS },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "sched_yield",
        |_: wasmtime::Caller<'_, WasmState>| -> i32 { ENOSYS },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn instantiate_failure(err: &wasmtime::Error) -> Failure {
    let text = format!("{err:#}");
    if text.contains("unknown import") {
        Failure::CompileError {
            message: format!("{text} — only WASI preview 1 imports are available"),
        }
    } else {
        classify_trap(err, false, false)
    }
}
