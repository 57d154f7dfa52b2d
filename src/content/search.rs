//! Full-text search over lessons with PostgreSQL (`tsvector` + GIN index).
//!
//! Lessons live in files, so on every (re)load the rendered plain text is copied into the
//! `lesson_search` table; queries use prefix matching so results appear while the learner types.

use sqlx::{PgPool, Postgres, Transaction};

use super::Library;
use super::highlight::escape_html;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SearchHit {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub track: String,
    /// Snippet with `\u{2}`/`\u{3}` around matches; see [`SearchHit::snippet_html`].
    pub snippet: String,
}

impl SearchHit {
    /// The snippet escaped, with matched words in `<mark>`.
    pub fn snippet_html(&self) -> String {
        escape_html(&self.snippet)
            .replace('\u{2}', "<mark>")
            .replace('\u{3}', "</mark>")
    }
}

/// Replaces the search index with the lessons of `library`.
pub async fn sync_index(db: &PgPool, library: &Library) -> sqlx::Result<()> {
    let mut tx: Transaction<'_, Postgres> = db.begin().await?;
    // Several labdeck processes may start together; one index rebuild at a time.
    sqlx::query("SELECT pg_advisory_xact_lock(7261001)")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM lesson_search")
        .execute(&mut *tx)
        .await?;
    for lesson in library.lessons() {
        let meta = &lesson.meta;
        sqlx::query(
            "INSERT INTO lesson_search (slug, title, summary, track, tags, body, draft)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&meta.slug)
        .bind(&meta.title)
        .bind(&meta.summary)
        .bind(&meta.track)
        .bind(meta.tags.join(" "))
        .bind(&lesson.rendered.plain_text)
        .bind(meta.draft)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Turns what the learner typed into a prefix `tsquery` ("even lo" → `even:* & lo:*`); words are
/// reduced to letters and digits so nothing typed can break the query syntax.
pub fn prefix_query(input: &str) -> Option<String> {
    let terms: Vec<String> = input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" & "))
}

pub async fn search(
    db: &PgPool,
    input: &str,
    include_drafts: bool,
    limit: i64,
) -> sqlx::Result<Vec<SearchHit>> {
    let Some(query) = prefix_query(input) else {
        return Ok(Vec::new());
    };
    sqlx::query_as::<_, SearchHit>(
        "SELECT slug, title, summary, track,
                ts_headline('english', body, q,
                  'StartSel=\u{2}, StopSel=\u{3}, MaxWords=24, MinWords=12, MaxFragments=1') AS snippet
           FROM lesson_search, to_tsquery('english', $1) AS q
          WHERE document @@ q AND (NOT draft OR $2)
          ORDER BY ts_rank(document, q) DESC, title
          LIMIT $3",
    )
    .bind(query)
    .bind(include_drafts)
    .bind(limit)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_queries_are_sanitised() {
        assert_eq!(prefix_query("Event lo").as_deref(), Some("event:* & lo:*"));
        assert_eq!(prefix_query("a' | !b:*").as_deref(), Some("a:* & b:*"));
        assert_eq!(prefix_query("  -- "), None);
    }

    #[test]
    fn snippets_are_escaped_around_marks() {
        let hit = SearchHit {
            slug: String::new(),
            title: String::new(),
            summary: String::new(),
            track: String::new(),
            snippet: "<b> \u{2}loop\u{3}".into(),
        };
        assert_eq!(hit.snippet_html(), "&lt;b&gt; <mark>loop</mark>");
    }
}
