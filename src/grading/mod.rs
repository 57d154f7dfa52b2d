//! Grading: runs a learner's solution against a lab's tests in the sandbox and reports, test
//! by test, what passed and why something did not.
//!
//! A lab's tests come in three kinds:
//! - **public** (`labs/<id>/tests/public.json`): input, expected output and console are shown;
//! - **hidden** (`tests/hidden.json`): only the name, pass/fail and a message — never the data;
//! - **random traces**: generated from the lab's fixed seed, so every submission meets the same
//!   traces and verdicts are repeatable. When one fails, the trace is shrunk (delta debugging
//!   through [`Challenge::shrink`], re-running the solution) and the shortest failing trace is
//!   shown with expected vs actual.
//!
//! Expected outputs always come from the lab's Rust reference ([`Challenge::expected`]), the
//! same code the live lab service runs.

pub mod jobs;
pub mod lab;

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sandbox::quickjs::JsProgram;
use crate::sandbox::{Failure, Limits, Outcome, Sandbox};
pub use lab::{Lab, TestCase};

/// The lab-specific half of grading, implemented next to each lab's reference logic.
pub trait Challenge: Send + Sync {
    /// The reference answer for an input.
    fn expected(&self, input: &Value) -> Value;
    /// One random trace for the randomised tests.
    fn random_input(&self, rng: &mut StdRng) -> Value;
    /// Smaller variants of a failing input, most aggressive first.
    fn shrink(&self, input: &Value) -> Vec<Value>;
    /// `Err(explanation)` naming the first difference between expected and actual.
    fn compare(&self, input: &Value, expected: &Value, actual: &Value) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Hidden,
    Random,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Hidden => "hidden",
            Visibility::Random => "random",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Public tests only, for quick feedback while working.
    Run,
    /// Everything; a full pass solves the lab.
    Submit,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Submit => "submit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Javascript,
    Wasm,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Javascript => "javascript",
            Language::Wasm => "wasm",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "javascript" | "js" => Some(Language::Javascript),
            "wasm" | "wat" => Some(Language::Wasm),
            _ => None,
        }
    }
}

/// One test's result, as stored and as streamed to the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub index: usize,
    pub name: String,
    pub visibility: Visibility,
    pub passed: bool,
    /// `accepted`, `wrong_answer`, or a sandbox verdict such as `time_limit`.
    pub verdict: String,
    pub message: String,
    /// Shown for public tests and for the shrunk trace of a failed random test; never for hidden.
    pub input: Option<Value>,
    pub expected: Option<Value>,
    pub actual: Option<Value>,
    pub console: String,
    pub fuel_used: u64,
    pub duration_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub results: Vec<TestResult>,
    pub passed: usize,
    pub total: usize,
    /// `accepted` when everything passed, else the verdict of the first failure.
    pub verdict: String,
    pub fuel_used: u64,
    pub duration: Duration,
}

impl Report {
    pub fn score(&self) -> u32 {
        ((self.passed * 100).checked_div(self.total).unwrap_or(0)) as u32
    }

    pub fn accepted(&self) -> bool {
        self.total > 0 && self.passed == self.total
    }
}

/// How many extra runs shrinking may spend on one failing random trace.
const SHRINK_BUDGET: usize = 120;
/// Console output kept per test result.
const CONSOLE_KEPT: usize = 4096;

/// A compiled solution, ready to run case after case.
enum Prepared<'a> {
    Js(&'a str),
    Wasm(wasmtime::Module),
}

/// Grades `source` for `lab`, calling `on_result` as each test finishes. Blocking: call it on a
/// sandbox worker thread.
pub fn grade(
    sandbox: &Sandbox,
    lab: &Lab,
    language: Language,
    source: &str,
    mode: Mode,
    mut on_result: impl FnMut(&TestResult),
) -> Report {
    let started = Instant::now();
    let mut results = Vec::new();
    let prepared = match language {
        Language::Javascript => Ok(Prepared::Js(source)),
        Language::Wasm => sandbox
            .compile_wasm(&wasm_bytes(source), &lab.limits)
            .map(Prepared::Wasm),
    };
    let cases = lab.cases(mode);
    // Shrinking re-runs the solution many times; only the first failing random trace gets it,
    // so one submission's cost stays bounded.
    let mut may_shrink = true;
    let mut fuel_spent = 0u64;
    for (index, case) in cases.iter().enumerate() {
        let budget_spent = lab
            .submission_fuel
            .is_some_and(|budget| fuel_spent >= budget);
        let result = match &prepared {
            Ok(_) if budget_spent => out_of_budget(index, case, fuel_spent),
            Ok(prepared) => {
                let (result, spent) = run_test(sandbox, lab, prepared, index, case, may_shrink);
                fuel_spent = fuel_spent.saturating_add(spent);
                if !result.passed && case.visibility == Visibility::Random {
                    may_shrink = false;
                }
                result
            }
            Err(failure) => not_compiled(index, case, failure),
        };
        on_result(&result);
        results.push(result);
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let verdict = results
        .iter()
        .find(|r| !r.passed)
        .map(|r| r.verdict.clone())
        .unwrap_or_else(|| "accepted".to_string());
    Report {
        passed,
        total: results.len(),
        verdict,
        fuel_used: results.iter().map(|r| r.fuel_used).sum(),
        duration: started.elapsed(),
        results,
    }
}

/// A WebAssembly solution arrives as WAT text, or as a binary module in base64 (forms and the
/// database carry text). Base64 is recognised by the encoded `\0asm` magic, "AGFzbQ".
pub fn wasm_bytes(source: &str) -> Vec<u8> {
    use base64::Engine;
    let trimmed = source.trim();
    if trimmed.starts_with("AGFzbQ")
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD
            .decode(trimmed.split_whitespace().collect::<String>())
    {
        return bytes;
    }
    source.as_bytes().to_vec()
}

/// The text form of a binary module, as `wasm_bytes` reads it back.
pub fn wasm_source(bytes: &[u8]) -> String {
    use base64::Engine;
    match std::str::from_utf8(bytes) {
        Ok(text) if !bytes.starts_with(b"\0asm") => text.to_string(),
        _ => base64::engine::general_purpose::STANDARD.encode(bytes),
    }
}

fn execute(
    sandbox: &Sandbox,
    lab: &Lab,
    limits: &Limits,
    prepared: &Prepared<'_>,
    input: &Value,
) -> Outcome {
    match prepared {
        Prepared::Js(source) => {
            let call = format!("__labdeck_case({input})");
            let program = JsProgram {
                harness: &lab.harness,
                source,
                call: &call,
            };
            sandbox.run_js(&program, limits, lab.seed)
        }
        Prepared::Wasm(module) => sandbox.run_wasm(module, input, limits),
    }
}

/// `Ok(())` when the outcome is right for this input, else the verdict and message.
fn judge(
    lab: &Lab,
    input: &Value,
    expected: &Value,
    outcome: &Outcome,
) -> Result<(), (String, String)> {
    match &outcome.result {
        Ok(actual) => lab
            .challenge
            .compare(input, expected, actual)
            .map_err(|message| ("wrong_answer".to_string(), message)),
        Err(failure) => Err((failure.verdict().to_string(), failure.describe())),
    }
}

fn run_test(
    sandbox: &Sandbox,
    lab: &Lab,
    prepared: &Prepared<'_>,
    index: usize,
    case: &TestCase,
    may_shrink: bool,
) -> (TestResult, u64) {
    let expected = lab.challenge.expected(&case.input);
    let outcome = execute(sandbox, lab, &lab.limits_for(case), prepared, &case.input);
    // What the run really cost, before hidden tests' fuel is blanked for the learner.
    let spent = outcome.fuel_used;
    let mut console = outcome.console.clone();
    if console.len() > CONSOLE_KEPT {
        let mut cut = CONSOLE_KEPT;
        while !console.is_char_boundary(cut) {
            cut -= 1;
        }
        console.truncate(cut);
        console.push_str("\n… (console output truncated)");
    }
    let mut result = TestResult {
        index,
        name: case.name.clone(),
        visibility: case.visibility,
        passed: true,
        verdict: "accepted".to_string(),
        message: String::new(),
        input: None,
        expected: None,
        actual: None,
        console: String::new(),
        fuel_used: outcome.fuel_used,
        duration_us: outcome.elapsed.as_micros() as u64,
    };
    if case.visibility == Visibility::Public {
        result.input = Some(case.input.clone());
        result.expected = Some(expected.clone());
        result.actual = outcome.result.clone().ok();
        result.console = console;
    }
    if let Err((verdict, message)) = judge(lab, &case.input, &expected, &outcome) {
        result.passed = false;
        result.verdict = verdict;
        result.message = message;
        // Only wrong answers are worth shrinking: a time or memory verdict would make every
        // candidate run to its limit.
        if case.visibility == Visibility::Random && may_shrink && result.verdict == "wrong_answer" {
            let (input, outcome) = shrink(sandbox, lab, prepared, &case.input, outcome);
            let expected = lab.challenge.expected(&input);
            if let Err((verdict, message)) = judge(lab, &input, &expected, &outcome) {
                result.verdict = verdict;
                result.message = message;
            }
            result.actual = outcome.result.ok();
            result.expected = Some(expected);
            result.input = Some(input);
        }
    }
    if case.visibility == Visibility::Hidden {
        hide_details(&mut result);
    }
    (result, spent)
}

/// A hidden test reports its name and verdict only: the comparison message names the hit and
/// its expected answer, the learner's own error text could smuggle the input out, and timing
/// and fuel are side channels.
fn hide_details(result: &mut TestResult) {
    if !result.passed {
        result.message = match result.verdict.as_str() {
            "wrong_answer" => {
                "your answer differs from the reference (hidden tests do not show their data)"
                    .to_string()
            }
            "runtime_error" => "your code threw an error on this hidden test".to_string(),
            "invalid_output" => {
                "your code returned something that is not a valid answer".to_string()
            }
            _ => result.message.clone(),
        };
    }
    result.fuel_used = 0;
    result.duration_us = 0;
    result.console.clear();
}

/// Delta-debugs a failing input down to a small one that still fails.
fn shrink(
    sandbox: &Sandbox,
    lab: &Lab,
    prepared: &Prepared<'_>,
    input: &Value,
    outcome: Outcome,
) -> (Value, Outcome) {
    let mut best = (input.clone(), outcome);
    let mut budget = SHRINK_BUDGET;
    'improve: while budget > 0 {
        for candidate in lab.challenge.shrink(&best.0) {
            if budget == 0 {
                break 'improve;
            }
            budget -= 1;
            let expected = lab.challenge.expected(&candidate);
            let outcome = execute(sandbox, lab, &lab.limits, prepared, &candidate);
            if judge(lab, &candidate, &expected, &outcome).is_err() {
                best = (candidate, outcome);
                continue 'improve;
            }
        }
        break;
    }
    best
}

/// A test not run because the submission used up the lab's fuel budget for one submission.
fn out_of_budget(index: usize, case: &TestCase, spent: u64) -> TestResult {
    TestResult {
        index,
        name: case.name.clone(),
        visibility: case.visibility,
        passed: false,
        verdict: "time_limit".to_string(),
        message: format!(
            "Not run: the earlier tests used up this submission's CPU budget ({spent} fuel). Make the slow tests faster first."
        ),
        input: (case.visibility == Visibility::Public).then(|| case.input.clone()),
        expected: None,
        actual: None,
        console: String::new(),
        fuel_used: 0,
        duration_us: 0,
    }
}

/// The result of every test when the solution did not compile: nothing ran.
fn not_compiled(index: usize, case: &TestCase, failure: &Failure) -> TestResult {
    TestResult {
        index,
        name: case.name.clone(),
        visibility: case.visibility,
        passed: false,
        verdict: failure.verdict().to_string(),
        message: failure.describe(),
        input: (case.visibility == Visibility::Public).then(|| case.input.clone()),
        expected: None,
        actual: None,
        console: String::new(),
        fuel_used: 0,
        duration_us: 0,
    }
}

/// Shrink candidates for a trace held in the array `input[field]`: the input with chunks of that
/// array removed, halves first, down to single elements (never empty). For
/// [`Challenge::shrink`] of trace-shaped inputs.
pub fn without_chunks(input: &Value, field: &str) -> Vec<Value> {
    let items = input[field].as_array().cloned().unwrap_or_default();
    let mut candidates = Vec::new();
    let mut chunk = items.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        while start < items.len() {
            let mut fewer = items.clone();
            fewer.drain(start..(start + chunk).min(items.len()));
            if !fewer.is_empty() {
                let mut candidate = input.clone();
                candidate[field] = Value::Array(fewer);
                candidates.push(candidate);
            }
            start += chunk;
        }
        chunk /= 2;
    }
    candidates
}

/// The random traces of a lab: the same for every submission.
pub fn random_cases(challenge: &dyn Challenge, seed: u64, count: usize) -> Vec<TestCase> {
    (0..count)
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
            TestCase {
                name: format!("random trace #{}", i + 1),
                visibility: Visibility::Random,
                input: challenge.random_input(&mut rng),
                fuel: None,
            }
        })
        .collect()
}
