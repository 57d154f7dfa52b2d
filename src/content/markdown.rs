//! Markdown → HTML for lessons.
//!
//! One function, [`render`], sets the parser options and runs a single pass over pulldown-cmark's
//! event stream that rewrites our own constructs before the stock HTML writer sees them:
//!
//! - headings get stable anchor ids (deduplicated) and feed the table of contents;
//! - fenced code is highlighted (see [`super::highlight`]); `mermaid` blocks become diagram
//!   containers, `interview` blocks become `<details>` questions, and `quiz` blocks are cut out
//!   of the HTML as [`Segment::Quiz`] so the page can render them per learner (answer state,
//!   CSRF token) while the rest stays cached;
//! - GitHub-style alerts (`> [!TIP]`) become callouts;
//! - raw HTML from the author is shown escaped, and link/image targets with a scheme other than
//!   http(s)/mailto are neutralised, so content can never inject script.
//!
//! Problems (bad quiz TOML, unknown languages, ...) are returned as [`MarkdownIssue`]s with the
//! byte offset where they occur; the caller turns offsets into `file:line`.

use std::collections::HashSet;

use pulldown_cmark::{
    BlockQuoteKind, CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd,
};
use serde::Deserialize;

use super::highlight::{escape_html, highlight, is_known_language};

/// A piece of a rendered lesson: cached HTML, or a quiz the page renders itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Html(String),
    /// Index into [`Rendered::quizzes`].
    Quiz(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quiz {
    pub id: String,
    pub question_html: String,
    pub options_html: Vec<String>,
    pub answer: usize,
    pub explanation_html: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TocEntry {
    pub level: u8,
    pub id: String,
    pub title: String,
}

/// A problem in the markdown, at a byte offset of the rendered text.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkdownIssue {
    pub offset: usize,
    pub message: String,
}

/// An internal link (`/lessons/...` or `/tracks/...`) found in the text, for the link checker.
#[derive(Debug, Clone, PartialEq)]
pub struct InternalLink {
    pub offset: usize,
    pub target: String,
}

#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub segments: Vec<Segment>,
    pub quizzes: Vec<Quiz>,
    pub toc: Vec<TocEntry>,
    pub links: Vec<InternalLink>,
    pub issues: Vec<MarkdownIssue>,
    pub has_diagrams: bool,
    /// The visible text, for the search index.
    pub plain_text: String,
}

impl Rendered {
    /// All segments as one HTML string with quizzes left out (used where quizzes are not shown).
    pub fn html_without_quizzes(&self) -> String {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Html(h) => Some(h.as_str()),
                Segment::Quiz(_) => None,
            })
            .collect()
    }
}

fn parser_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_GFM
}

/// Renders a lesson body. Never panics, whatever the input.
pub fn render(markdown: &str) -> Rendered {
    let mut out = Rendered::default();
    let mut renderer = Renderer {
        out: &mut out,
        pending: Vec::new(),
        used_ids: HashSet::new(),
        quiz_ids: HashSet::new(),
        nested: false,
    };
    renderer.run(markdown, 0);
    renderer.flush();
    out
}

/// Renders inline markdown (quiz questions and options) without the surrounding `<p>`.
pub fn render_inline(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH).map(neutralise_event);
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    let trimmed = html.trim();
    let inner = trimmed
        .strip_prefix("<p>")
        .and_then(|s| s.strip_suffix("</p>"))
        .unwrap_or(trimmed);
    inner.to_string()
}

struct Renderer<'o> {
    out: &'o mut Rendered,
    /// Events not yet turned into HTML.
    pending: Vec<Event<'static>>,
    used_ids: HashSet<String>,
    quiz_ids: HashSet<String>,
    /// True while rendering the answer of an interview block: no quizzes or nesting there.
    nested: bool,
}

impl Renderer<'_> {
    fn issue(&mut self, offset: usize, message: impl Into<String>) {
        self.out.issues.push(MarkdownIssue {
            offset,
            message: message.into(),
        });
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, self.pending.drain(..));
        if let Some(Segment::Html(last)) = self.out.segments.last_mut() {
            last.push_str(&html);
        } else {
            self.out.segments.push(Segment::Html(html));
        }
    }

    fn raw(&mut self, html: String) {
        self.pending.push(Event::Html(CowStr::from(html)));
    }

    fn text(&mut self, text: &str) {
        if !self.out.plain_text.is_empty() {
            self.out.plain_text.push(' ');
        }
        self.out.plain_text.push_str(text.trim());
    }

    /// `base` is added to every offset so nested renders report positions in the outer text.
    fn run(&mut self, markdown: &str, base: usize) {
        let mut events = Parser::new_ext(markdown, parser_options()).into_offset_iter();
        while let Some((event, range)) = events.next() {
            let offset = base + range.start;
            match event {
                Event::Start(Tag::Heading {
                    level, id, classes, ..
                }) => {
                    let mut inner: Vec<Event<'static>> = Vec::new();
                    let mut title = String::new();
                    for (event, _) in events.by_ref() {
                        match event {
                            Event::End(TagEnd::Heading(_)) => break,
                            Event::Text(ref t) | Event::Code(ref t) => title.push_str(t),
                            _ => {}
                        }
                        inner.push(neutralise_event(event).into_static());
                    }
                    self.heading(level, id.map(|s| s.to_string()), &classes, &title, inner);
                }
                Event::Start(Tag::CodeBlock(kind)) => {
                    let info = match &kind {
                        CodeBlockKind::Fenced(info) => info.to_string(),
                        CodeBlockKind::Indented => String::new(),
                    };
                    let mut code = String::new();
                    let mut body_offset = None;
                    for (event, range) in events.by_ref() {
                        match event {
                            Event::End(TagEnd::CodeBlock) => break,
                            Event::Text(t) => {
                                body_offset.get_or_insert(base + range.start);
                                code.push_str(&t);
                            }
                            _ => {}
                        }
                    }
                    let lang = info.split_whitespace().next().unwrap_or("").to_string();
                    let indented = matches!(kind, CodeBlockKind::Indented);
                    self.code_block(
                        &lang,
                        indented,
                        &code,
                        offset,
                        body_offset.unwrap_or(offset),
                    );
                }
                Event::Start(Tag::BlockQuote(Some(kind))) => {
                    let (class, label) = callout_label(kind);
                    self.raw(format!(
                        "<aside class=\"callout callout-{class}\" role=\"note\"><p class=\"callout-title\">{label}</p>\n"
                    ));
                }
                Event::End(TagEnd::BlockQuote(Some(_))) => self.raw("</aside>\n".to_string()),
                Event::Text(ref t) => {
                    self.text(t);
                    self.pending.push(event.into_static());
                }
                Event::Code(ref t) => {
                    self.text(t);
                    self.pending.push(event.into_static());
                }
                Event::Start(Tag::Link { ref dest_url, .. }) => {
                    if dest_url.starts_with("/lessons/") || dest_url.starts_with("/tracks/") {
                        self.out.links.push(InternalLink {
                            offset,
                            target: dest_url.to_string(),
                        });
                    }
                    self.pending.push(neutralise_event(event).into_static());
                }
                other => self.pending.push(neutralise_event(other).into_static()),
            }
        }
    }

    fn heading(
        &mut self,
        level: HeadingLevel,
        explicit_id: Option<String>,
        classes: &[CowStr<'_>],
        title: &str,
        inner: Vec<Event<'static>>,
    ) {
        let base = explicit_id.unwrap_or_else(|| slugify(title));
        let base = if base.is_empty() {
            "section".to_string()
        } else {
            base
        };
        let mut id = base.clone();
        let mut n = 1;
        while !self.used_ids.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        let depth = level as u8;
        if (2..=3).contains(&depth) && !self.nested {
            self.out.toc.push(TocEntry {
                level: depth,
                id: id.clone(),
                title: title.to_string(),
            });
        }
        self.text(title);
        let mut inner_html = String::new();
        pulldown_cmark::html::push_html(&mut inner_html, inner.into_iter());
        let class_attr = if classes.is_empty() {
            String::new()
        } else {
            let joined: Vec<&str> = classes.iter().map(|c| c.as_ref()).collect();
            format!(" class=\"{}\"", escape_html(&joined.join(" ")))
        };
        let id = escape_html(&id);
        self.raw(format!(
            "<h{depth} id=\"{id}\"{class_attr}>{inner_html} <a class=\"heading-anchor\" href=\"#{id}\" aria-label=\"Link to this section\">#</a></h{depth}>\n"
        ));
    }

    fn code_block(
        &mut self,
        lang: &str,
        indented: bool,
        code: &str,
        offset: usize,
        body_offset: usize,
    ) {
        match lang {
            "mermaid" => {
                self.out.has_diagrams = true;
                self.raw(format!(
                    "<figure class=\"diagram\"><pre class=\"mermaid\">{}</pre></figure>\n",
                    escape_html(code)
                ));
            }
            "interview" => self.interview(code, offset, body_offset),
            "quiz" => self.quiz(code, offset, body_offset),
            _ => {
                if !indented && lang.is_empty() {
                    self.issue(offset, "code block has no language; name one (or `text`)");
                } else if !indented && !is_known_language(lang) {
                    self.issue(offset, format!("unknown code-block language `{lang}`"));
                }
                self.text(code);
                let shown = if lang.is_empty() { "text" } else { lang };
                let lang_attr = escape_html(shown);
                self.raw(format!(
                    "<div class=\"code-block\"><span class=\"code-lang\">{lang_attr}</span><pre class=\"code\"><code class=\"language-{lang_attr}\">{}</code></pre></div>\n",
                    highlight(code, lang)
                ));
            }
        }
    }

    fn interview(&mut self, code: &str, offset: usize, body_offset: usize) {
        if self.nested {
            self.issue(offset, "interview blocks cannot be nested");
            return;
        }
        let mut question = String::new();
        let mut answer_start = None;
        let mut pos = 0;
        for line in code.split_inclusive('\n') {
            if line.trim() == "---" {
                answer_start = Some(pos + line.len());
                break;
            }
            question.push_str(line);
            pos += line.len();
        }
        let Some(answer_start) = answer_start else {
            self.issue(
                offset,
                "interview block needs a line with only `---` between question and answer",
            );
            return;
        };
        let question = question.trim();
        let answer = &code[answer_start..];
        if question.is_empty() || answer.trim().is_empty() {
            self.issue(offset, "interview block has an empty question or answer");
            return;
        }
        self.text(question);
        let question_html = render_inline(question);
        self.flush();
        self.raw(format!(
            "<details class=\"interview\"><summary><span class=\"interview-label\">Interview question</span> {question_html}</summary><div class=\"interview-answer\">\n"
        ));
        self.nested = true;
        self.run(answer, body_offset + answer_start);
        self.nested = false;
        self.raw("</div></details>\n".to_string());
    }

    fn quiz(&mut self, code: &str, offset: usize, body_offset: usize) {
        if self.nested {
            self.issue(
                offset,
                "quiz blocks cannot appear inside an interview answer",
            );
            return;
        }
        let spec: QuizSpec = match toml::from_str(code) {
            Ok(spec) => spec,
            Err(err) => {
                let at = err.span().map(|s| body_offset + s.start).unwrap_or(offset);
                self.issue(at, format!("invalid quiz: {}", err.message()));
                return;
            }
        };
        if let Err(message) = spec.validate() {
            self.issue(offset, format!("invalid quiz `{}`: {message}", spec.id));
            return;
        }
        if !self.quiz_ids.insert(spec.id.clone()) {
            self.issue(
                offset,
                format!("duplicate quiz id `{}` in this lesson", spec.id),
            );
            return;
        }
        self.text(&spec.question);
        self.flush();
        self.out.quizzes.push(Quiz {
            question_html: render_inline(&spec.question),
            options_html: spec.options.iter().map(|o| render_inline(o)).collect(),
            explanation_html: render_inline(&spec.explanation),
            answer: spec.answer,
            id: spec.id,
        });
        self.out
            .segments
            .push(Segment::Quiz(self.out.quizzes.len() - 1));
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuizSpec {
    id: String,
    question: String,
    options: Vec<String>,
    answer: usize,
    explanation: String,
}

impl QuizSpec {
    fn validate(&self) -> Result<(), String> {
        if !is_slug(&self.id) {
            return Err("id must be lowercase letters, digits and dashes".into());
        }
        if self.question.trim().is_empty() {
            return Err("question is empty".into());
        }
        if !(2..=8).contains(&self.options.len()) {
            return Err(format!("needs 2 to 8 options, has {}", self.options.len()));
        }
        if self.options.iter().any(|o| o.trim().is_empty()) {
            return Err("an option is empty".into());
        }
        if self.answer >= self.options.len() {
            return Err(format!(
                "answer {} is out of range (options are numbered from 0 to {})",
                self.answer,
                self.options.len() - 1
            ));
        }
        if self.explanation.trim().is_empty() {
            return Err("explanation is empty".into());
        }
        Ok(())
    }
}

fn callout_label(kind: BlockQuoteKind) -> (&'static str, &'static str) {
    match kind {
        BlockQuoteKind::Note => ("note", "Note"),
        BlockQuoteKind::Tip => ("tip", "Tip"),
        BlockQuoteKind::Important => ("important", "Important"),
        BlockQuoteKind::Warning => ("warning", "Warning"),
        BlockQuoteKind::Caution => ("caution", "Caution"),
    }
}

/// Makes an event safe to hand to the HTML writer: author HTML becomes visible text and link or
/// image targets with a dangerous scheme are replaced by `#`.
fn neutralise_event(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    }
}

/// Allows relative URLs and the http, https and mailto schemes; anything else becomes `#`.
/// Browsers ignore ASCII whitespace and control characters inside a scheme, so they are
/// dropped before the scheme is read (`java\tscript:` is still `javascript:`).
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let squashed: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = squashed.find(':');
    let path_start = squashed.find(['/', '?', '#']);
    let has_scheme = match (scheme_end, path_start) {
        (Some(colon), Some(path)) => colon < path,
        (Some(_), None) => true,
        _ => false,
    };
    if !has_scheme {
        return url;
    }
    let scheme = &squashed[..scheme_end.unwrap_or(0)];
    if matches!(scheme, "http" | "https" | "mailto") {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

/// Lowercase ASCII slug for heading anchors: letters and digits kept, runs of anything else
/// become one dash.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut dash = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.extend(c.to_lowercase());
        } else {
            dash = true;
        }
    }
    slug
}

/// `[a-z0-9]+(-[a-z0-9]+)*`
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(md: &str) -> String {
        render(md).html_without_quizzes()
    }

    #[test]
    fn headings_get_unique_anchor_ids_and_a_toc() {
        let r = render("## Why it matters\n\ntext\n\n## Why it matters\n\n### Deeper `code`\n");
        let ids: Vec<_> = r.toc.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["why-it-matters", "why-it-matters-2", "deeper-code"]);
        assert_eq!(r.toc[2].level, 3);
        assert!(
            r.html_without_quizzes()
                .contains("<h2 id=\"why-it-matters\">")
        );
    }

    #[test]
    fn raw_html_is_escaped() {
        let out = html("<script>alert(1)</script>\n\nhi <img src=x onerror=alert(1)>");
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn dangerous_link_schemes_are_neutralised() {
        let out = html(
            "[a](javascript:alert(1)) [b](java\tscript:x) [c](https://ok.example/) [d](/lessons/x)",
        );
        assert!(!out.to_lowercase().contains("javascript"), "{out}");
        assert!(out.contains("href=\"https://ok.example/\""), "{out}");
        assert!(out.contains("href=\"/lessons/x\""), "{out}");
    }

    #[test]
    fn callouts_become_asides() {
        let out = html("> [!WARNING]\n> Careful.\n");
        assert!(out.contains("callout-warning"), "{out}");
        assert!(out.contains("Careful."), "{out}");
    }

    #[test]
    fn mermaid_blocks_become_diagrams() {
        let r = render("```mermaid\ngraph LR\n  A --> B\n```\n");
        assert!(r.has_diagrams);
        assert!(
            r.html_without_quizzes()
                .contains("<pre class=\"mermaid\">graph LR\n  A --&gt; B\n</pre>")
        );
    }

    #[test]
    fn interview_blocks_render_question_and_hidden_answer() {
        let out =
            html("````interview\nWhat is `x`?\n---\nIt is **y**.\n\n```js\nlet y;\n```\n````\n");
        assert!(out.contains("<details class=\"interview\">"), "{out}");
        assert!(out.contains("What is <code>x</code>?"), "{out}");
        assert!(out.contains("<strong>y</strong>"), "{out}");
        assert!(out.contains("class=\"hl-"), "{out}");
    }

    #[test]
    fn interview_without_separator_is_reported() {
        let r = render("```interview\nQuestion only\n```\n");
        assert_eq!(r.issues.len(), 1);
        assert!(r.issues[0].message.contains("---"));
    }

    #[test]
    fn quizzes_are_cut_out_as_segments() {
        let md = "Intro\n\n```quiz\nid = \"q1\"\nquestion = \"Pick `b`\"\noptions = [\"a\", \"b\"]\nanswer = 1\nexplanation = \"Because.\"\n```\n\nAfter\n";
        let r = render(md);
        assert!(r.issues.is_empty(), "{:?}", r.issues);
        assert_eq!(r.quizzes.len(), 1);
        assert_eq!(r.quizzes[0].question_html, "Pick <code>b</code>");
        assert_eq!(r.quizzes[0].answer, 1);
        assert!(matches!(r.segments[1], Segment::Quiz(0)));
        assert!(matches!(&r.segments[2], Segment::Html(h) if h.contains("After")));
    }

    #[test]
    fn invalid_quizzes_are_reported_with_an_offset() {
        let md = "text\n\n```quiz\nid = \"q1\"\nquestion = \"?\"\noptions = [\"a\", \"b\"]\nanswer = 5\nexplanation = \"x\"\n```\n";
        let r = render(md);
        assert_eq!(r.issues.len(), 1, "{:?}", r.issues);
        assert!(r.issues[0].message.contains("out of range"));
        assert_eq!(&md[r.issues[0].offset..r.issues[0].offset + 3], "```");
        let bad_toml = render("```quiz\nid = \n```\n");
        assert!(bad_toml.issues[0].message.starts_with("invalid quiz"));
    }

    #[test]
    fn unknown_and_missing_languages_are_reported() {
        let r = render("```cobol\nx\n```\n\n```\ny\n```\n");
        let messages: Vec<_> = r.issues.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("cobol"));
        assert!(messages[1].contains("no language"));
    }

    #[test]
    fn internal_links_are_collected() {
        let r = render("See [loop](/lessons/event-loop#phases) and [t](/tracks/caching).");
        let targets: Vec<_> = r.links.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, ["/lessons/event-loop#phases", "/tracks/caching"]);
    }

    #[test]
    fn gfm_extensions_render() {
        let out = html(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\n~~old~~ and a note[^1].\n\n[^1]: Footnote.\n",
        );
        assert!(out.contains("<table>"));
        assert!(out.contains("type=\"checkbox\""));
        assert!(out.contains("<del>old</del>"));
        assert!(out.contains("footnote-definition"));
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Hello, World! 2"), "hello-world-2");
        assert!(is_slug("event-loop-2"));
        assert!(!is_slug("Event"));
        assert!(!is_slug("a--b"));
        assert!(!is_slug("-a"));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Pieces that stress the parser and the sanitiser; proptest strings them together.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("<script>alert(1)</script>".to_string()),
            Just("<img src=x onerror=alert(1)>".to_string()),
            Just("<iframe src=//evil>".to_string()),
            Just("[x](javascript:alert(1))".to_string()),
            Just("[x](JaVaScRiPt:alert(1))".to_string()),
            Just("![i](data:text/html;base64,PHNjcmlwdD4=)".to_string()),
            Just("[x](vbscript:msgbox)".to_string()),
            Just("\n```quiz\nid = \"q\"\n".to_string()),
            Just("\n````interview\nQ?\n---\n".to_string()),
            Just("\n```mermaid\n".to_string()),
            Just("\n```js\n".to_string()),
            Just("\n```\n".to_string()),
            Just("\n> [!TIP]\n> ".to_string()),
            Just("\n## Heading {#custom}\n".to_string()),
            Just("\n| a | b |\n|---|---|\n".to_string()),
            Just("[^1]\n\n[^1]: note\n".to_string()),
            Just("- [ ] task\n".to_string()),
            Just("<!-- comment -->".to_string()),
            Just("`code`".to_string()),
            "[a-zA-Z0-9 <>&\"'`*_#\\[\\]()!:/\\n-]{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn rendering_never_panics_and_never_emits_script(parts in proptest::collection::vec(fragment(), 0..12)) {
            let markdown = parts.concat();
            let rendered = render(&markdown);
            let mut html = rendered.html_without_quizzes();
            for quiz in &rendered.quizzes {
                html.push_str(&quiz.question_html);
                html.push_str(&quiz.explanation_html);
                for option in &quiz.options_html {
                    html.push_str(option);
                }
            }
            // Parse the output like a browser would and inspect the elements it creates.
            let document = scraper::Html::parse_fragment(&html);
            for element in document.root_element().descendants().filter_map(scraper::ElementRef::wrap) {
                let name = element.value().name();
                prop_assert!(!matches!(name, "script" | "iframe" | "object" | "embed" | "style"), "<{name}> from {markdown:?}:\n{html}");
                for (attribute, value) in element.value().attrs() {
                    prop_assert!(!attribute.starts_with("on"), "{attribute} on <{name}> from {markdown:?}");
                    if matches!(attribute, "href" | "src") {
                        let squashed: String = value.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control()).collect::<String>().to_lowercase();
                        for scheme in ["javascript:", "vbscript:", "data:"] {
                            prop_assert!(!squashed.starts_with(scheme), "{attribute}={value} from {markdown:?}");
                        }
                    }
                }
            }
            for issue in &rendered.issues {
                prop_assert!(issue.offset <= markdown.len());
            }
        }
    }
}
