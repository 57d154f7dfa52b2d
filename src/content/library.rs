//! The whole content tree loaded into memory: tracks from `tracks.toml`, lessons from
//! `<track>/*.md`, each parsed and rendered once (this is the rendered-lesson cache), plus every
//! problem found on the way as a `file:line: message` [`Diagnostic`].
//!
//! Loading never fails as a whole: a lesson that cannot be parsed is left out and reported, and
//! the rest is served. `labdeck content check` prints the same diagnostics and fails on any.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::lesson::{Lesson, LineIssue};
use crate::labs;

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackSpec {
    pub id: String,
    pub title: String,
    pub summary: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TracksFile {
    track: Vec<TrackSpec>,
}

#[derive(Debug, Clone)]
pub struct Track {
    pub id: String,
    pub title: String,
    pub summary: String,
    /// Lesson slugs in `order`, drafts included.
    pub lessons: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Library {
    pub tracks: Vec<Track>,
    lessons: HashMap<String, Arc<Lesson>>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Library {
    pub fn load(dir: &Path) -> Library {
        let mut library = Library::default();
        let tracks_path = dir.join("tracks.toml");
        match std::fs::read_to_string(&tracks_path) {
            Ok(text) => match toml::from_str::<TracksFile>(&text) {
                Ok(file) => {
                    for spec in file.track {
                        if library.tracks.iter().any(|t| t.id == spec.id) {
                            library.report(
                                &tracks_path,
                                1,
                                format!("duplicate track id `{}`", spec.id),
                            );
                            continue;
                        }
                        library.tracks.push(Track {
                            id: spec.id,
                            title: spec.title,
                            summary: spec.summary,
                            lessons: Vec::new(),
                        });
                    }
                }
                Err(err) => {
                    let line = err
                        .span()
                        .map(|s| super::lesson::line_of(&text, s.start))
                        .unwrap_or(1);
                    library.report(&tracks_path, line, err.message().trim().to_string());
                }
            },
            Err(err) => library.report(&tracks_path, 1, format!("cannot read: {err}")),
        }

        for path in lesson_files(dir) {
            library.add_lesson_file(path);
        }
        library.order_tracks();
        library.check_links();
        library
    }

    fn report(&mut self, path: &Path, line: usize, message: String) {
        self.diagnostics.push(Diagnostic {
            path: path.to_path_buf(),
            line,
            message,
        });
    }

    fn add_lesson_file(&mut self, path: PathBuf) {
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(err) => return self.report(&path, 1, format!("cannot read: {err}")),
        };
        let (lesson, issues) = match Lesson::parse(path.clone(), &source) {
            Ok(parsed) => parsed,
            Err(LineIssue { line, message }) => return self.report(&path, line, message),
        };
        for LineIssue { line, message } in issues {
            self.report(&path, line, message);
        }
        let meta = &lesson.meta;
        if let Some(other) = self.lessons.get(&meta.slug) {
            let message = format!(
                "duplicate slug `{}` (also used by {})",
                meta.slug,
                other.path.display()
            );
            return self.report(&path, 1, message);
        }
        let Some(track) = self.tracks.iter().position(|t| t.id == meta.track) else {
            let message = format!("unknown track `{}` (see tracks.toml)", meta.track);
            return self.report(&path, 1, message);
        };
        let folder = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        if folder != Some(meta.track.as_str()) {
            let message = format!(
                "lesson of track `{}` must live in content/{}/",
                meta.track, meta.track
            );
            self.report(&path, 1, message);
        }
        if let Some(lab) = &meta.lab
            && labs::find(lab).is_none()
        {
            let known: Vec<_> = labs::LABS.iter().map(|l| l.id).collect();
            let message = format!("unknown lab `{lab}`; known labs: {}", known.join(", "));
            self.report(&path, 1, message);
        }
        self.tracks[track].lessons.push(meta.slug.clone());
        self.lessons.insert(meta.slug.clone(), Arc::new(lesson));
    }

    fn order_tracks(&mut self) {
        let mut clashes = Vec::new();
        for track in &mut self.tracks {
            track
                .lessons
                .sort_by_key(|slug| self.lessons.get(slug).map(|l| l.meta.order));
            let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
            for slug in &track.lessons {
                let Some(lesson) = self.lessons.get(slug) else {
                    continue;
                };
                if let Some(first) = seen.insert(lesson.meta.order, slug) {
                    clashes.push((
                        lesson.path.clone(),
                        format!(
                            "order {} is also used by lesson `{first}` in track `{}`",
                            lesson.meta.order, track.id
                        ),
                    ));
                }
            }
        }
        for (path, message) in clashes {
            self.report(&path, 1, message);
        }
    }

    fn check_links(&mut self) {
        let mut broken = Vec::new();
        for lesson in self.lessons.values() {
            for link in &lesson.rendered.links {
                let target = link.target.split(['#', '?']).next().unwrap_or("");
                let ok = if let Some(slug) = target.strip_prefix("/lessons/") {
                    self.lessons.contains_key(slug.trim_end_matches('/'))
                } else if let Some(id) = target.strip_prefix("/tracks/") {
                    self.track(id.trim_end_matches('/')).is_some()
                } else {
                    true
                };
                if !ok {
                    broken.push(Diagnostic {
                        path: lesson.path.clone(),
                        line: lesson.line_of_body_offset(link.offset),
                        message: format!("broken internal link `{}`", link.target),
                    });
                }
            }
        }
        broken.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        self.diagnostics.extend(broken);
    }

    pub fn lesson(&self, slug: &str) -> Option<&Arc<Lesson>> {
        self.lessons.get(slug)
    }

    pub fn track(&self, id: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    pub fn lessons(&self) -> impl Iterator<Item = &Arc<Lesson>> {
        self.lessons.values()
    }

    /// The lessons of a track a viewer may see, in order.
    pub fn track_lessons(&self, track: &Track, show_drafts: bool) -> Vec<Arc<Lesson>> {
        track
            .lessons
            .iter()
            .filter_map(|slug| self.lessons.get(slug))
            .filter(|l| show_drafts || !l.meta.draft)
            .cloned()
            .collect()
    }

    /// Previous and next lesson in reading order (across track boundaries).
    pub fn neighbours(
        &self,
        slug: &str,
        show_drafts: bool,
    ) -> (Option<Arc<Lesson>>, Option<Arc<Lesson>>) {
        let order: Vec<Arc<Lesson>> = self
            .tracks
            .iter()
            .flat_map(|t| self.track_lessons(t, show_drafts))
            .collect();
        let Some(i) = order.iter().position(|l| l.meta.slug == slug) else {
            return (None, None);
        };
        let prev = i.checked_sub(1).and_then(|p| order.get(p)).cloned();
        (prev, order.get(i + 1).cloned())
    }
}

/// `<dir>/<track>/*.md`, sorted so diagnostics come out in a stable order.
fn lesson_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Ok(inner) = std::fs::read_dir(&path) else {
            continue;
        };
        for file in inner.flatten() {
            let file = file.path();
            if file.extension().is_some_and(|e| e == "md") {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesson(slug: &str, track: &str, order: u32, extra: &str, body: &str) -> String {
        format!(
            "+++\ntitle = \"{slug}\"\nslug = \"{slug}\"\nsummary = \"s\"\ntrack = \"{track}\"\norder = {order}\nlevel = \"junior\"\nminutes = 3\n{extra}+++\n{body}"
        )
    }

    fn tree(files: &[(&str, String)]) -> (tempdir::Dir, Library) {
        let dir = tempdir::Dir::new();
        std::fs::write(
            dir.path().join("tracks.toml"),
            "[[track]]\nid = \"a\"\ntitle = \"A\"\nsummary = \"x\"\n\n[[track]]\nid = \"b\"\ntitle = \"B\"\nsummary = \"y\"\n",
        )
        .expect("write tracks");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write lesson");
        }
        let library = Library::load(dir.path());
        (dir, library)
    }

    mod tempdir {
        /// A unique directory under the system temp dir, removed on drop.
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let path =
                    std::env::temp_dir().join(format!("labdeck-content-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).expect("temp dir");
                Dir(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn loads_lessons_in_track_order_with_neighbours() {
        let (_dir, lib) = tree(&[
            ("a/2-y.md", lesson("y", "a", 2, "", "Y")),
            ("a/1-x.md", lesson("x", "a", 1, "", "X")),
            ("b/1-z.md", lesson("z", "b", 1, "", "Z")),
        ]);
        assert!(lib.diagnostics.is_empty(), "{:?}", lib.diagnostics);
        assert_eq!(lib.track("a").expect("a").lessons, ["x", "y"]);
        let (prev, next) = lib.neighbours("y", false);
        assert_eq!(prev.map(|l| l.meta.slug.clone()).as_deref(), Some("x"));
        assert_eq!(next.map(|l| l.meta.slug.clone()).as_deref(), Some("z"));
    }

    #[test]
    fn reports_cross_file_problems_and_keeps_serving_the_rest() {
        let (_dir, lib) = tree(&[
            (
                "a/1-x.md",
                lesson(
                    "x",
                    "a",
                    1,
                    "lab = \"quantum\"\n",
                    "[gone](/lessons/nope) [ok](/tracks/b)\n",
                ),
            ),
            ("a/2-dup.md", lesson("x", "a", 2, "", "dup")),
            ("a/3-w.md", lesson("w", "a", 1, "", "same order")),
            ("a/4-broken.md", "+++\ntitle = 1\n+++\n".to_string()),
            ("b/1-v.md", lesson("v", "nowhere", 1, "", "v")),
        ]);
        let text: Vec<String> = lib.diagnostics.iter().map(|d| d.to_string()).collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(has("unknown lab `quantum`"), "{text:?}");
        assert!(
            has("1-x.md:11: broken internal link `/lessons/nope`"),
            "{text:?}"
        );
        assert!(has("2-dup.md:1: duplicate slug `x`"), "{text:?}");
        assert!(has("order 1 is also used"), "{text:?}");
        assert!(has("4-broken.md:2: front matter"), "{text:?}");
        assert!(has("unknown track `nowhere`"), "{text:?}");
        assert!(!has("/tracks/b"), "{text:?}");
        assert!(lib.lesson("x").is_some() && lib.lesson("w").is_some());
    }

    #[test]
    fn drafts_are_hidden_unless_asked_for() {
        let (_dir, lib) = tree(&[
            ("a/1-x.md", lesson("x", "a", 1, "", "X")),
            ("a/2-d.md", lesson("d", "a", 2, "draft = true\n", "D")),
        ]);
        let track = lib.track("a").expect("a");
        assert_eq!(lib.track_lessons(track, false).len(), 1);
        assert_eq!(lib.track_lessons(track, true).len(), 2);
    }
}
