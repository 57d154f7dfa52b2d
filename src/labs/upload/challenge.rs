//! The upload lab's graded challenge: a streaming CSV aggregator in JavaScript. Expected answers
//! come from [`CsvAggregator`], the same reference the live upload service runs.
//!
//! An input says which bytes the harness (`labs/upload/harness.js`) pushes and how it cuts them:
//! `{ "csv": text | "bytes": [..], "cuts": [byte offsets] | "chunkSize": n }` for small cases, or
//! `{ "generate": { "seed", "rows", "chunkSize" } }` for a large file the harness builds chunk by
//! chunk inside the sandbox, so a solution cannot hold it all and stay under the lab's memory
//! cap. [`generated_rows`] is the Rust twin of the harness's generator: both must produce the
//! same bytes. The answer is a [`CsvSummary`] in camelCase JSON. How the input is cut never
//! changes the summary, so the expected side aggregates the whole input in one push.

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::csv_stream::{CsvAggregator, CsvSummary};
use crate::grading::Challenge;

pub struct UploadChallenge;

const NAMES: [&str; 8] = [
    "Ada",
    "Zoë",
    "\"Smith, J\"",
    "李雷",
    "Ünal",
    "\"O\"\"Brien\"",
    "😀 Smiley",
    "Bob",
];
const CITIES: [&str; 6] = [
    "Kraków",
    "Paris",
    "São Paulo",
    "東京",
    "Oslo",
    "\"Washington, D.C.\"",
];
const NOTES: [&str; 5] = [
    "\"multi\nline, note\"",
    "\"said \"\"hi\"\"\"",
    "ok",
    "ok",
    "ok",
];

/// The header and rows of a generated file, as the harness writes them (xorshift32 from the
/// seed; six draws per row). The header carries a byte order mark; about one row in 500 lacks
/// its last field, one in 16 has a quoted note spanning two lines, a quarter end in LF only.
pub fn generated_rows(seed: u64, rows: u64) -> impl Iterator<Item = String> {
    let mut x = (seed as u32) ^ 0x9e37_79b9;
    if x == 0 {
        x = 1;
    }
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let header = std::iter::once("\u{feff}id,name,amount,city,note\r\n".to_string());
    header.chain((1..=rows).map(move |id| {
        let name = NAMES[(next() % NAMES.len() as u32) as usize];
        let a = next();
        let cents = (a >> 8) % 10_000_000;
        let sign = if a & 1 == 1 { "-" } else { "" };
        let amount = format!("{sign}{}.{:02}", cents / 100, cents % 100);
        let city = CITIES[(next() % CITIES.len() as u32) as usize];
        let n = (next() % 16) as usize;
        let note = NOTES.get(n).copied().unwrap_or("");
        let short = next() % 500 == 0;
        let eol = if next() % 4 == 0 { "\n" } else { "\r\n" };
        let last = if short {
            String::new()
        } else {
            format!(",{note}")
        };
        format!("{id},{name},{amount},{city}{last}{eol}")
    }))
}

/// The summary of whatever bytes an input describes.
pub fn summarize(input: &Value) -> CsvSummary {
    let mut aggregator = CsvAggregator::new();
    if let Some(spec) = input.get("generate") {
        let seed = spec["seed"].as_u64().unwrap_or(0);
        let rows = spec["rows"].as_u64().unwrap_or(0);
        for row in generated_rows(seed, rows) {
            aggregator.push(row.as_bytes());
        }
    } else if let Some(bytes) = input["bytes"].as_array() {
        let bytes: Vec<u8> = bytes
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()).unwrap_or(0))
            .collect();
        aggregator.push(&bytes);
    } else {
        aggregator.push(input["csv"].as_str().unwrap_or("").as_bytes());
    }
    aggregator.finish()
}

/// A random small document: a header, rows of quoted and unquoted fields holding commas,
/// quotes, newlines and multi-byte characters, mixed line endings, sometimes a BOM, a blank
/// line, a short or long row, no final newline.
fn random_csv(rng: &mut StdRng) -> String {
    const WORDS: [&str; 12] = [
        "ada",
        "Zoë",
        "a,b",
        "say \"hi\"",
        "two\nlines",
        "€",
        "😀",
        "x",
        "CRLF\r\ninside",
        "42",
        "-3.5",
        "0.10",
    ];
    let newline = |rng: &mut StdRng| {
        *["\n", "\r\n", "\r"]
            .get(rng.random_range(0..3))
            .unwrap_or(&"\n")
    };
    let field = |rng: &mut StdRng| -> String {
        let value = match rng.random_range(0..6) {
            0 => String::new(),
            1 | 2 => format!(
                "{}{}{}",
                if rng.random_bool(0.3) { "-" } else { "" },
                rng.random_range(0..1000),
                if rng.random_bool(0.5) {
                    format!(".{}", rng.random_range(0..100))
                } else {
                    String::new()
                }
            ),
            _ => WORDS[rng.random_range(0..WORDS.len())].to_string(),
        };
        if rng.random_bool(0.2) || value.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value
        }
    };
    let width = rng.random_range(1..=4);
    let mut doc = String::new();
    if rng.random_bool(0.2) {
        doc.push('\u{feff}');
    }
    let header: Vec<String> = (0..width).map(|i| format!("c{}", i + 1)).collect();
    doc.push_str(&header.join(","));
    doc.push_str(newline(rng));
    for _ in 0..rng.random_range(0..=12) {
        if rng.random_bool(0.05) {
            doc.push_str(newline(rng));
        }
        let count = match rng.random_range(0..10) {
            0 => width + 1,
            1 if width > 1 => width - 1,
            _ => width,
        };
        let fields: Vec<String> = (0..count).map(|_| field(rng)).collect();
        doc.push_str(&fields.join(","));
        doc.push_str(newline(rng));
    }
    if rng.random_bool(0.3) {
        while doc.ends_with(['\r', '\n']) {
            doc.pop();
        }
    }
    doc
}

/// Splits a document into physical lines, each keeping its terminator (LF, CRLF or lone CR).
fn physical_lines(doc: &str) -> Vec<&str> {
    let bytes = doc.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let end = match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => Some(i + 2),
            b'\r' | b'\n' => Some(i + 1),
            _ => None,
        };
        match end {
            Some(end) => {
                lines.push(&doc[start..end]);
                start = end;
                i = end;
            }
            None => i += 1,
        }
    }
    if start < doc.len() {
        lines.push(&doc[start..]);
    }
    lines
}

fn cuts_of(input: &Value) -> Vec<u64> {
    input["cuts"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

impl Challenge for UploadChallenge {
    fn expected(&self, input: &Value) -> Value {
        serde_json::to_value(summarize(input)).unwrap_or(Value::Null)
    }

    fn random_input(&self, rng: &mut StdRng) -> Value {
        let csv = random_csv(rng);
        let len = csv.len() as u64;
        let mut cuts: Vec<u64> = (0..rng.random_range(0..=8))
            .filter(|_| len > 1)
            .map(|_| rng.random_range(1..len.max(2)))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        json!({ "csv": csv, "cuts": cuts })
    }

    fn shrink(&self, input: &Value) -> Vec<Value> {
        let Some(csv) = input["csv"].as_str() else {
            return Vec::new();
        };
        let cuts = cuts_of(input);
        let lines = physical_lines(csv);
        let mut candidates = Vec::new();
        // Drop physical lines after the header (chunks of them, halves first), moving the cuts
        // that pointed past them and dropping those inside.
        let mut span = lines.len().saturating_sub(1) / 2;
        while span >= 1 {
            let mut first = 1;
            while first < lines.len() {
                let last = (first + span).min(lines.len());
                let from: usize = lines[..first].iter().map(|l| l.len()).sum();
                let removed: usize = lines[first..last].iter().map(|l| l.len()).sum();
                let (from, removed) = (from as u64, removed as u64);
                let kept: Vec<u64> = cuts
                    .iter()
                    .filter(|&&c| c <= from || c >= from + removed)
                    .map(|&c| if c >= from + removed { c - removed } else { c })
                    .collect();
                let mut doc = String::with_capacity(csv.len());
                for (i, line) in lines.iter().enumerate() {
                    if !(first..last).contains(&i) {
                        doc.push_str(line);
                    }
                }
                candidates.push(json!({ "csv": doc, "cuts": kept }));
                first += span;
            }
            span /= 2;
        }
        // Merge neighbouring chunks: drop one cut at a time.
        for i in 0..cuts.len() {
            let mut fewer = cuts.clone();
            fewer.remove(i);
            candidates.push(json!({ "csv": csv, "cuts": fewer }));
        }
        candidates
    }

    fn compare(&self, _input: &Value, expected: &Value, actual: &Value) -> Result<(), String> {
        let expected: CsvSummary = serde_json::from_value(expected.clone())
            .map_err(|e| format!("the reference summary is unreadable: {e}"))?;
        let actual: CsvSummary = serde_json::from_value(actual.clone()).map_err(|e| {
            format!(
                "finish() must return {{ columns, rows, invalidRows, firstInvalidLines, stats: \
                 [{{ name, filled, numeric: {{ sum, min, max }} | null, longest }}] }}: {e}"
            )
        })?;
        first_difference(&expected, &actual).map_or(Ok(()), Err)
    }
}

/// Names the first field in which two summaries differ, in the order a learner would check.
fn first_difference(want: &CsvSummary, got: &CsvSummary) -> Option<String> {
    if want.columns != got.columns {
        return Some(format!(
            "columns: expected {:?}, got {:?}",
            want.columns, got.columns
        ));
    }
    if want.rows != got.rows {
        return Some(format!("rows: expected {}, got {}", want.rows, got.rows));
    }
    if want.invalid_rows != got.invalid_rows {
        return Some(format!(
            "invalidRows: expected {}, got {}",
            want.invalid_rows, got.invalid_rows
        ));
    }
    if want.first_invalid_lines != got.first_invalid_lines {
        return Some(format!(
            "firstInvalidLines: expected {:?}, got {:?}",
            want.first_invalid_lines, got.first_invalid_lines
        ));
    }
    if want.stats.len() != got.stats.len() {
        return Some(format!(
            "stats: expected {} entries (one per column), got {}",
            want.stats.len(),
            got.stats.len()
        ));
    }
    for (i, (w, g)) in want.stats.iter().zip(&got.stats).enumerate() {
        let at = format!("stats[{i}] (column {:?})", w.name);
        if w.name != g.name {
            return Some(format!(
                "{at}.name: expected {:?}, got {:?}",
                w.name, g.name
            ));
        }
        if w.filled != g.filled {
            return Some(format!(
                "{at}.filled: expected {}, got {}",
                w.filled, g.filled
            ));
        }
        if w.longest != g.longest {
            return Some(format!(
                "{at}.longest: expected {}, got {} (count Unicode code points)",
                w.longest, g.longest
            ));
        }
        match (&w.numeric, &g.numeric) {
            (None, None) => {}
            (Some(_), None) => return Some(format!("{at}.numeric: expected numbers, got null")),
            (None, Some(_)) => return Some(format!("{at}.numeric: expected null, got numbers")),
            (Some(w), Some(g)) => {
                let pairs: [(&str, f64, f64); 3] = [
                    ("sum", w.sum, g.sum),
                    ("min", w.min, g.min),
                    ("max", w.max, g.max),
                ];
                for (field, w, g) in pairs {
                    // `==` so that -0 and 0 agree; every other value must match to the bit.
                    if w != g {
                        return Some(format!(
                            "{at}.numeric.{field}: expected {w:?}, got {g:?}{}",
                            if field == "sum" {
                                " (add the values as doubles, in row order)"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_generator_writes_a_bom_a_header_and_the_asked_rows() {
        let text: String = generated_rows(7, 2000).collect();
        assert!(text.starts_with("\u{feff}id,name,amount,city,note\r\n"));
        let s = summarize(&json!({ "generate": { "seed": 7, "rows": 2000, "chunkSize": 100 } }));
        assert_eq!(s.columns, ["id", "name", "amount", "city", "note"]);
        assert_eq!(s.rows, 2000);
        assert!(s.invalid_rows > 0, "some rows are short");
        assert!(s.stats[2].numeric.is_some(), "amounts are numbers");
        assert_eq!(
            s.stats[0].numeric.as_ref().map(|n| n.max),
            Some(2000.0),
            "ids run to the row count unless the last row is short"
        );
        assert_eq!(
            summarize(&json!({ "csv": text })),
            s,
            "same as pushing the text"
        );
    }

    #[test]
    fn the_generator_is_deterministic_per_seed() {
        let a: String = generated_rows(1, 50).collect();
        let b: String = generated_rows(1, 50).collect();
        let c: String = generated_rows(2, 50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn raw_bytes_and_text_inputs_agree() {
        let text = "a,b\n1,é\n";
        let bytes: Vec<u8> = text.bytes().collect();
        assert_eq!(
            summarize(&json!({ "bytes": bytes, "cuts": [1] })),
            summarize(&json!({ "csv": text, "chunkSize": 1 }))
        );
    }

    #[test]
    fn random_inputs_cut_inside_the_document() {
        let challenge = UploadChallenge;
        for seed in 0..200 {
            let input = challenge.random_input(&mut StdRng::seed_from_u64(seed));
            let len = input["csv"].as_str().expect("csv").len() as u64;
            let cuts = cuts_of(&input);
            assert!(cuts.windows(2).all(|w| w[0] < w[1]), "seed {seed}");
            assert!(cuts.iter().all(|&c| c > 0 && c < len), "seed {seed}");
            assert!(challenge.expected(&input)["columns"].is_array());
        }
    }

    #[test]
    fn comparison_names_the_first_difference() {
        let challenge = UploadChallenge;
        let input = json!({ "csv": "a,b\n1,x\n2,y\n" });
        let expected = challenge.expected(&input);
        assert!(challenge.compare(&input, &expected, &expected).is_ok());
        let mut actual = expected.clone();
        actual["stats"][0]["numeric"]["sum"] = json!(3.0000001);
        let message = challenge
            .compare(&input, &expected, &actual)
            .expect_err("differs");
        assert!(
            message.starts_with("stats[0] (column \"a\").numeric.sum: expected 3.0, got 3.0000001"),
            "{message}"
        );
        let mut actual = expected.clone();
        actual["rows"] = json!("2");
        let message = challenge
            .compare(&input, &expected, &actual)
            .expect_err("wrong shape");
        assert!(message.starts_with("finish() must return"), "{message}");
    }

    #[test]
    fn negative_zero_equals_zero() {
        let challenge = UploadChallenge;
        let input = json!({ "csv": "n\n-0\n" });
        let expected = challenge.expected(&input);
        let mut actual = expected.clone();
        actual["stats"][0]["numeric"] = json!({ "sum": 0, "min": 0, "max": 0 });
        assert!(challenge.compare(&input, &expected, &actual).is_ok());
    }

    #[test]
    fn shrinking_drops_lines_and_cuts_and_keeps_cuts_in_range() {
        let input = json!({ "csv": "h\r\n1\r\n2\n3\r4", "cuts": [2, 4, 8, 10] });
        let candidates = UploadChallenge.shrink(&input);
        assert!(!candidates.is_empty());
        for c in &candidates {
            let csv = c["csv"].as_str().expect("csv");
            assert!(csv.starts_with("h\r\n"), "the header stays");
            assert!(csv.len() < 11 || cuts_of(c).len() < 4, "{c}");
            assert!(cuts_of(c).iter().all(|&cut| cut <= csv.len() as u64), "{c}");
        }
        assert_eq!(candidates[0]["csv"], "h\r\n3\r4", "half the rows go first");
        assert_eq!(
            physical_lines("a\r\nb\rc\n\nd"),
            ["a\r\n", "b\r", "c\n", "\n", "d"]
        );
    }
}
