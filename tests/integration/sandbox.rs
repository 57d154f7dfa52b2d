//! The sandbox against hostile and broken solutions: each must end with the right verdict, and
//! the next run must be unaffected.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use labdeck::sandbox::pool::SandboxPool;
use labdeck::sandbox::quickjs::JsProgram;
use labdeck::sandbox::{Failure, Limits, Outcome, Sandbox};
use serde_json::json;

use crate::common::manifest_dir;

fn sandbox() -> &'static Arc<Sandbox> {
    static SANDBOX: OnceLock<Arc<Sandbox>> = OnceLock::new();
    SANDBOX.get_or_init(|| Arc::new(Sandbox::from_project(&manifest_dir()).expect("sandbox")))
}

const HARNESS: &str =
    "function __labdeck_case(input) { return __labdeck.stringify(solve(input)); }";

/// Guests run on a thread with the same large stack as the grader threads: wasm may use up to
/// 16 MiB of it, more than a test thread has.
fn on_grader_stack<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(work)
        .expect("thread")
        .join()
        .expect("no panic")
}

fn run_with(source: &str, input: serde_json::Value, limits: &Limits) -> Outcome {
    let call = format!("__labdeck_case({input})");
    let (source, limits) = (source.to_string(), *limits);
    on_grader_stack(move || {
        let program = JsProgram {
            harness: HARNESS,
            source: &source,
            call: &call,
        };
        sandbox().run_js(&program, &limits, 7)
    })
}

fn run(source: &str) -> Outcome {
    run_with(source, json!({"a": 1, "b": 2}), &Limits::default())
}

fn failure(source: &str) -> Failure {
    match run(source).result {
        Err(failure) => failure,
        Ok(value) => panic!("expected a failure, got {value}"),
    }
}

#[test]
fn a_correct_solution_returns_its_answer_and_a_deterministic_fuel_count() {
    let first = run("function solve({ a, b }) { return { sum: a + b }; }");
    assert_eq!(first.result, Ok(json!({ "sum": 3 })));
    assert!(first.fuel_used > 0);
    let second = run("function solve({ a, b }) { return { sum: a + b }; }");
    assert_eq!(first.fuel_used, second.fuel_used, "same code, same fuel");
}

#[test]
fn console_output_is_captured_and_formatted() {
    let outcome = run(
        "function solve() { console.log('hi', { a: [1, 'x'] }, null); console.error(new Error('boom').message); return 1; }",
    );
    assert_eq!(outcome.result, Ok(json!(1)));
    assert_eq!(
        outcome.console,
        "hi { a: [ 1, \"x\" ] } null\nerror: boom\n"
    );
}

#[test]
fn endless_loops_hit_the_time_limit_even_inside_try_catch() {
    assert_eq!(
        failure("function solve() { while (true) {} }"),
        Failure::TimeLimit
    );
    assert_eq!(
        failure(
            "function solve() { for (;;) { try { while (true) {} } catch (e) {} finally { continue; } } }"
        ),
        Failure::TimeLimit
    );
}

#[test]
fn time_limit_verdicts_are_deterministic() {
    let a = run("function solve() { let i = 0; while (true) i++; }");
    let b = run("function solve() { let i = 0; while (true) i++; }");
    assert_eq!(a.result, Err(Failure::TimeLimit));
    assert_eq!(a.fuel_used, b.fuel_used);
    assert_eq!(a.fuel_used, Limits::default().fuel);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    assert_eq!(
        failure(
            "function solve() { const hoard = []; while (true) hoard.push('x'.repeat(1 << 20) + hoard.length); }"
        ),
        Failure::MemoryLimit
    );
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    assert_eq!(
        failure("function f(n) { return f(n + 1) + 1; } function solve() { return f(0); }"),
        Failure::StackOverflow
    );
}

#[test]
fn a_flood_of_console_output_hits_the_output_limit() {
    assert_eq!(
        failure(
            "function solve() { const line = 'x'.repeat(1 << 20); for (let i = 0; i < 100; i++) console.log(line); }"
        ),
        Failure::OutputLimit
    );
}

#[test]
fn catastrophic_regex_backtracking_hits_the_time_limit() {
    assert_eq!(
        failure("function solve() { return /^(a+)+$/.test('a'.repeat(40) + 'b'); }"),
        Failure::TimeLimit
    );
}

#[test]
fn the_host_is_out_of_reach() {
    let outcome = run(
        "function solve() { return [typeof require, typeof fetch, typeof process, typeof Deno, typeof std, typeof os, typeof XMLHttpRequest]; }",
    );
    assert_eq!(outcome.result, Ok(json!(vec!["undefined"; 7])));
    match failure("function solve() { return require('fs').readFileSync('/etc/passwd', 'utf8'); }")
    {
        Failure::RuntimeError { message, .. } => {
            assert!(message.starts_with("ReferenceError"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        failure("import fs from 'fs';\nfunction solve() {}"),
        Failure::CompileError { .. }
    ));
    // There is no module loader: a dynamic import is rejected.
    let outcome = run(
        "let state = 'pending'; import('fs').then(() => { state = 'loaded'; }, (e) => { state = 'rejected'; });\nfunction solve() { return state; }",
    );
    assert_eq!(outcome.result, Ok(json!("rejected")));
}

#[test]
fn time_and_randomness_are_virtual_and_repeatable() {
    let source =
        "function solve() { return [Date.now(), Math.random(), new Date().getUTCFullYear()]; }";
    let first = run(source).result.expect("runs");
    let second = run(source).result.expect("runs");
    assert_eq!(first, second, "same seed, same clock, same answer");
    assert_eq!(first[2], json!(2026));
}

#[test]
fn tampering_with_harness_globals_does_not_fool_the_grader() {
    let outcome = run(
        "JSON.stringify = () => '\"hacked\"'; Array.prototype.map = null; function solve() { return 1; }",
    );
    assert_eq!(outcome.result, Ok(json!(1)));
    match failure(
        "Object.defineProperty(globalThis, '__labdeck', { value: {} }); function solve() { return 1; }",
    ) {
        Failure::RuntimeError { message, .. } => {
            assert!(message.starts_with("TypeError"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let outcome = run("console = null; function solve() { console.log('still here'); return 2; }");
    assert_eq!(outcome.result, Ok(json!(2)));
    assert_eq!(outcome.console, "still here\n");
}

#[test]
fn thrown_values_of_any_type_become_runtime_errors_with_a_message() {
    match failure("function solve() { throw 42; }") {
        Failure::RuntimeError { message, .. } => assert_eq!(message, "Uncaught 42"),
        other => panic!("{other:?}"),
    }
    match failure("function solve() { throw null; }") {
        Failure::RuntimeError { message, .. } => assert_eq!(message, "Uncaught null"),
        other => panic!("{other:?}"),
    }
    match failure("function solve() { null.x; }") {
        Failure::RuntimeError { message, stack } => {
            assert!(message.starts_with("TypeError"), "{message}");
            assert!(stack.contains("solution.js"), "{stack}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn huge_thrown_strings_are_cut_short() {
    match failure("function solve() { throw 'x'.repeat(15e6); }") {
        Failure::RuntimeError { message, .. } => {
            assert!(message.len() <= 4096 + 16, "{} bytes", message.len())
        }
        other => panic!("{other:?}"),
    }
    match failure(
        "function solve() { const e = new Error('big'); e.stack = 'y'.repeat(15e6); throw e; }",
    ) {
        Failure::RuntimeError { stack, .. } => {
            assert!(stack.len() <= 4096, "{} bytes", stack.len())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_thrown_string_that_looks_like_a_limit_is_still_a_runtime_error() {
    match failure("function solve() { throw 'InternalError: interrupted'; }") {
        Failure::RuntimeError { message, .. } => {
            assert_eq!(message, "Uncaught InternalError: interrupted")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn values_that_cannot_be_serialised_are_reported() {
    assert!(matches!(
        failure("function solve() { const a = {}; a.self = a; return a; }"),
        Failure::RuntimeError { .. }
    ));
    assert!(matches!(
        failure("function solve() { return 10n; }"),
        Failure::RuntimeError { .. }
    ));
    assert!(matches!(
        failure("function solve() { return undefined; }"),
        Failure::InvalidOutput { .. }
    ));
}

#[test]
fn syntax_errors_are_compile_errors_and_oversized_sources_are_refused() {
    match failure("function solve( {") {
        Failure::CompileError { message } => {
            assert!(message.starts_with("SyntaxError"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let huge = format!(
        "function solve() {{ return 1; }} // {}",
        "x".repeat(100 << 10)
    );
    assert_eq!(
        failure(&huge),
        Failure::SourceTooLarge {
            limit_bytes: 64 << 10
        }
    );
}

#[test]
fn a_trap_never_poisons_the_next_run() {
    assert_eq!(
        failure("function solve() { while (true) {} }"),
        Failure::TimeLimit
    );
    assert_eq!(
        failure("function f() { return f(); } function solve() { return f(); }"),
        Failure::StackOverflow
    );
    assert_eq!(
        run("function solve({ a }) { return a; }").result,
        Ok(json!(1))
    );
}

fn wasm(source: &str) -> Outcome {
    let source = source.to_string();
    on_grader_stack(move || wasm_on_this_thread(&source))
}

fn wasm_on_this_thread(source: &str) -> Outcome {
    let sandbox = sandbox();
    let limits = Limits::default();
    match sandbox.compile_wasm(source.as_bytes(), &limits) {
        Ok(module) => sandbox.run_wasm(&module, &json!({"n": 1}), &limits),
        Err(failure) => Outcome {
            result: Err(failure),
            console: String::new(),
            fuel_used: 0,
            elapsed: Duration::ZERO,
        },
    }
}

const WASM_HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"ok\":true}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 11))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

#[test]
fn wasm_commands_answer_on_stdout() {
    assert_eq!(wasm(WASM_HELLO).result, Ok(json!({ "ok": true })));
}

#[test]
fn wasm_modules_cannot_import_what_wasi_does_not_offer() {
    match wasm(r#"(module (import "env" "open_socket" (func)) (func (export "_start")))"#).result {
        Err(Failure::CompileError { message }) => {
            assert!(message.contains("unknown import"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wasm_asking_for_4_gib_of_memory_hits_the_memory_limit() {
    assert_eq!(
        wasm(r#"(module (memory 65536) (func (export "_start")))"#).result,
        Err(Failure::MemoryLimit)
    );
}

#[test]
fn wasm_infinite_loops_hit_the_time_limit() {
    assert_eq!(
        wasm(r#"(module (func (export "_start") (loop (br 0))))"#).result,
        Err(Failure::TimeLimit)
    );
}

#[test]
fn wasm_cannot_park_the_grader_thread_in_a_host_sleep() {
    // poll_oneoff with one relative clock subscription of ~584 years.
    let sleeper = r#"(module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (i64.store (i32.const 0) (i64.const 1))          ;; userdata
        (i32.store8 (i32.const 8) (i32.const 0))         ;; eventtype: clock
        (i32.store (i32.const 16) (i32.const 1))         ;; clock id: monotonic
        (i64.store (i32.const 24) (i64.const -1))        ;; timeout: u64::MAX ns
        (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;
    let started = std::time::Instant::now();
    let outcome = wasm(sleeper);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "returned at once"
    );
    assert!(
        matches!(outcome.result, Err(Failure::InvalidOutput { .. })),
        "{:?}",
        outcome.result
    );
}

#[test]
fn invalid_wasm_is_a_compile_error() {
    assert!(matches!(
        wasm("(module (func (export \"_start\") (i32.add)))").result,
        Err(Failure::CompileError { .. })
    ));
    assert!(matches!(
        wasm("\0asm garbage").result,
        Err(Failure::CompileError { .. })
    ));
}

#[tokio::test]
async fn a_full_queue_answers_busy_instead_of_waiting() {
    // One worker and no waiting room: a job is only taken while the worker is idle.
    let pool = SandboxPool::new(Arc::clone(sandbox()), 1, 0).expect("pool");
    let endless = || {
        |sandbox: &Sandbox| {
            let program = JsProgram {
                harness: HARNESS,
                source: "function solve() { while (true) {} }",
                call: "__labdeck_case(0)",
            };
            sandbox.run_js(&program, &Limits::default(), 1)
        }
    };
    let first = loop {
        match pool.submit(endless()) {
            Ok(receiver) => break receiver,
            // The worker thread may not be waiting for work yet.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = pool.submit(endless());
    assert_eq!(second.err().map(|busy| busy.retry_after_secs), Some(2));
    let outcome = first.await.expect("the first job finishes");
    assert_eq!(outcome.result, Err(Failure::TimeLimit));
    // Free again afterwards (once the worker is back waiting for work).
    let mut answer = None;
    for _ in 0..200 {
        if let Ok(value) = pool.run(|_| 42).await {
            answer = Some(value);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(answer, Some(42));
}
