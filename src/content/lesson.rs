//! A lesson file: TOML front matter between `+++` lines, then markdown.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::markdown::{self, Rendered};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Junior,
    Mid,
    Senior,
    Lead,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Junior => "junior",
            Level::Mid => "mid",
            Level::Senior => "senior",
            Level::Lead => "lead",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub title: String,
    pub slug: String,
    pub summary: String,
    pub track: String,
    pub order: u32,
    pub level: Level,
    #[serde(default)]
    pub tags: Vec<String>,
    pub lab: Option<String>,
    pub minutes: u32,
    #[serde(default)]
    pub draft: bool,
}

#[derive(Debug, Clone)]
pub struct Lesson {
    pub meta: FrontMatter,
    pub path: PathBuf,
    /// 1-based line of the first markdown line, to turn body offsets into file lines.
    pub body_line: usize,
    pub body: String,
    pub rendered: Rendered,
}

/// A problem found in a lesson file, at a 1-based line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineIssue {
    pub line: usize,
    pub message: String,
}

impl Lesson {
    /// Parses and renders one lesson file. Errors that make the file unusable come back as `Err`;
    /// problems inside a usable lesson are returned beside it.
    pub fn parse(path: PathBuf, source: &str) -> Result<(Lesson, Vec<LineIssue>), LineIssue> {
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let Some(rest) = source
            .strip_prefix("+++\n")
            .or_else(|| source.strip_prefix("+++\r\n"))
        else {
            return Err(LineIssue {
                line: 1,
                message: "lesson must start with TOML front matter between `+++` lines".into(),
            });
        };
        let Some(end) = find_closing_fence(rest) else {
            return Err(LineIssue {
                line: 1,
                message: "front matter is not closed by a `+++` line".into(),
            });
        };
        let front = &rest[..end];
        let after_fence = &rest[end..];
        let body = after_fence
            .find('\n')
            .map(|i| &after_fence[i + 1..])
            .unwrap_or("");
        let meta: FrontMatter = toml::from_str(front).map_err(|err| LineIssue {
            line: 2 + err.span().map(|s| line_of(front, s.start) - 1).unwrap_or(0),
            message: format!("front matter: {}", err.message().trim()),
        })?;
        let mut issues = validate_front_matter(&meta);
        let body_line = 3 + front.matches('\n').count();
        let rendered = markdown::render(body);
        for issue in &rendered.issues {
            issues.push(LineIssue {
                line: body_line + line_of(body, issue.offset) - 1,
                message: issue.message.clone(),
            });
        }
        let lesson = Lesson {
            meta,
            path,
            body_line,
            body: body.to_string(),
            rendered,
        };
        Ok((lesson, issues))
    }

    /// The file line of a byte offset in the body.
    pub fn line_of_body_offset(&self, offset: usize) -> usize {
        self.body_line + line_of(&self.body, offset) - 1
    }
}

fn find_closing_fence(rest: &str) -> Option<usize> {
    let mut pos = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            return Some(pos);
        }
        pos += line.len();
    }
    None
}

/// 1-based line number of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let prefix = text.get(..offset).unwrap_or(text);
    prefix.matches('\n').count() + 1
}

fn validate_front_matter(meta: &FrontMatter) -> Vec<LineIssue> {
    let mut issues = Vec::new();
    let mut bad = |message: String| issues.push(LineIssue { line: 1, message });
    if meta.title.trim().is_empty() {
        bad("front matter: title is empty".into());
    }
    if !markdown::is_slug(&meta.slug) {
        bad(format!(
            "front matter: slug `{}` must be lowercase letters, digits and single dashes",
            meta.slug
        ));
    }
    if meta.summary.trim().is_empty() {
        bad("front matter: summary is empty".into());
    }
    if meta.order == 0 {
        bad("front matter: order starts at 1".into());
    }
    if meta.minutes == 0 {
        bad("front matter: minutes must be at least 1".into());
    }
    for tag in &meta.tags {
        if !markdown::is_slug(tag) {
            bad(format!(
                "front matter: tag `{tag}` must be a lowercase slug"
            ));
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "+++\ntitle = \"T\"\nslug = \"t\"\nsummary = \"S\"\ntrack = \"x\"\norder = 1\nlevel = \"mid\"\nminutes = 5\n+++\n# Hello\n\n```cobol\nx\n```\n";

    #[test]
    fn parses_front_matter_and_maps_body_lines() {
        let (lesson, issues) = Lesson::parse("a.md".into(), GOOD).expect("parses");
        assert_eq!(lesson.meta.level, Level::Mid);
        assert!(!lesson.meta.draft);
        assert_eq!(lesson.body_line, 10);
        assert_eq!(
            issues,
            [LineIssue {
                line: 12,
                message: "unknown code-block language `cobol`".into()
            }]
        );
    }

    #[test]
    fn reports_the_line_of_a_bad_front_matter_field() {
        let src = GOOD.replace("level = \"mid\"", "level = \"guru\"");
        let err = Lesson::parse("a.md".into(), &src).expect_err("bad level");
        assert_eq!(err.line, 7);
        assert!(
            err.message.contains("guru") || err.message.contains("variant"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rejects_missing_or_unclosed_front_matter() {
        assert_eq!(
            Lesson::parse("a.md".into(), "# no front")
                .map(|_| ())
                .expect_err("missing")
                .line,
            1
        );
        assert!(Lesson::parse("a.md".into(), "+++\ntitle = \"x\"\n").is_err());
    }

    #[test]
    fn rejects_unknown_fields() {
        let src = GOOD.replace("minutes = 5", "minutes = 5\nauthor = \"me\"");
        let err = Lesson::parse("a.md".into(), &src).expect_err("unknown field");
        assert!(err.message.contains("author"), "{}", err.message);
    }
}
