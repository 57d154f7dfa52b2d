//! Render time of the largest lesson: front matter, markdown, highlighting, quizzes — the work
//! done once per lesson at load and on every hot reload. Run with `cargo bench --bench render`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use labdeck::content::Lesson;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("content");
    let mut largest: Option<(PathBuf, String)> = None;
    for track in std::fs::read_dir(&root).expect("content dir").flatten() {
        let Ok(files) = std::fs::read_dir(track.path()) else {
            continue;
        };
        for file in files.flatten() {
            let path = file.path();
            if path.extension().is_some_and(|e| e == "md") {
                let text = std::fs::read_to_string(&path).expect("lesson");
                if largest.as_ref().is_none_or(|(_, t)| text.len() > t.len()) {
                    largest = Some((path, text));
                }
            }
        }
    }
    let (path, text) = largest.expect("at least one lesson");
    // Warm up: loads the syntax set once, as a running server would have.
    Lesson::parse(path.clone(), &text).expect("parses");
    let runs = 200;
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let parsed = Lesson::parse(path.clone(), &text).expect("parses");
            std::hint::black_box(parsed);
            start.elapsed()
        })
        .collect();
    times.sort();
    let p = |q: f64| times[((runs as f64 * q) as usize).min(runs - 1)];
    println!(
        "render {} ({} KiB): p50 {:.2} ms, p99 {:.2} ms over {runs} runs",
        path.strip_prefix(&root).unwrap_or(&path).display(),
        text.len() / 1024,
        p(0.50).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
    );
}
