//! A lab's challenge on disk: `labs/<id>/` with `lab.toml` (metadata, limits, random-test seed),
//! `challenge.md`, `starter.js`, `reference.js`, `harness.js` and `tests/{public,hidden}.json`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use super::{Challenge, Mode, Visibility, random_cases};
use crate::sandbox::Limits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabToml {
    id: String,
    title: String,
    summary: String,
    /// The lesson this challenge belongs to.
    lesson: Option<String>,
    limits: LimitsToml,
    random: RandomToml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsToml {
    fuel: u64,
    /// Fuel for a whole submission; tests after it is spent are not run.
    #[serde(default)]
    submission_fuel: Option<u64>,
    memory_mb: usize,
    output_kb: usize,
    source_kb: usize,
    wall_ms: u64,
    #[serde(default = "default_js_stack_kb")]
    js_stack_kb: usize,
}

fn default_js_stack_kb() -> usize {
    256
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RandomToml {
    cases: usize,
    seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEntry {
    name: String,
    input: Value,
    /// A fuel limit of its own (a large input), instead of the lab's.
    #[serde(default)]
    fuel: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub name: String,
    pub visibility: Visibility,
    pub input: Value,
    /// Overrides the lab's per-test fuel limit for this test.
    pub fuel: Option<u64>,
}

pub struct Lab {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub lesson: Option<String>,
    pub challenge_md: String,
    pub starter: String,
    pub reference: String,
    pub harness: String,
    pub public: Vec<TestCase>,
    pub hidden: Vec<TestCase>,
    pub random: Vec<TestCase>,
    pub limits: Limits,
    /// The most fuel one submission may use over all its tests (`None`: no cap beyond the
    /// per-test limits). Bounds what one hostile submission costs the grader.
    pub submission_fuel: Option<u64>,
    pub seed: u64,
    pub challenge: Arc<dyn Challenge>,
}

impl Lab {
    pub fn load(dir: &Path, challenge: Arc<dyn Challenge>) -> anyhow::Result<Lab> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("reading {}", dir.join(name).display()))
        };
        let spec: LabToml = toml::from_str(&read("lab.toml")?)
            .with_context(|| format!("{}/lab.toml", dir.display()))?;
        let tests = |name: &str, visibility: Visibility| -> anyhow::Result<Vec<TestCase>> {
            let entries: Vec<TestEntry> = serde_json::from_str(&read(name)?)
                .with_context(|| format!("{}/{name}", dir.display()))?;
            Ok(entries
                .into_iter()
                .map(|e| TestCase {
                    name: e.name,
                    visibility,
                    input: e.input,
                    fuel: e.fuel,
                })
                .collect())
        };
        let limits = Limits {
            fuel: spec.limits.fuel,
            memory_bytes: spec.limits.memory_mb << 20,
            js_stack_bytes: spec.limits.js_stack_kb << 10,
            output_bytes: spec.limits.output_kb << 10,
            source_bytes: spec.limits.source_kb << 10,
            wall_clock: Duration::from_millis(spec.limits.wall_ms),
        };
        Ok(Lab {
            public: tests("tests/public.json", Visibility::Public)?,
            hidden: tests("tests/hidden.json", Visibility::Hidden)?,
            random: random_cases(challenge.as_ref(), spec.random.seed, spec.random.cases),
            challenge_md: read("challenge.md")?,
            starter: read("starter.js")?,
            reference: read("reference.js")?,
            harness: read("harness.js")?,
            id: spec.id,
            title: spec.title,
            summary: spec.summary,
            lesson: spec.lesson,
            limits,
            submission_fuel: spec.limits.submission_fuel,
            seed: spec.random.seed,
            challenge,
        })
    }

    /// The limits a test runs under: the lab's, with the test's own fuel limit if it has one.
    pub fn limits_for(&self, case: &TestCase) -> Limits {
        Limits {
            fuel: case.fuel.unwrap_or(self.limits.fuel),
            ..self.limits
        }
    }

    pub fn cases(&self, mode: Mode) -> Vec<TestCase> {
        match mode {
            Mode::Run => self.public.clone(),
            Mode::Submit => self
                .public
                .iter()
                .chain(&self.hidden)
                .chain(&self.random)
                .cloned()
                .collect(),
        }
    }
}
