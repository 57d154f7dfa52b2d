use std::process::Command;

use crate::common::{TestApp, manifest_dir, select};

fn labdeck() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_labdeck"));
    command.current_dir(manifest_dir()).env("RUST_LOG", "error");
    command
}

#[tokio::test]
async fn user_create_from_the_cli_makes_an_admin_who_can_open_the_instructor_page() {
    let app = TestApp::spawn().await;
    let output = labdeck()
        .args([
            "user",
            "create",
            "--email",
            "root@example.com",
            "--password",
            "a long admin passphrase",
            "--role",
            "admin",
        ])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("created root@example.com (admin)")
    );

    let login = app
        .post_form(
            "/login",
            &[
                ("email", "root@example.com"),
                ("password", "a long admin passphrase"),
            ],
        )
        .await;
    assert_eq!(login.status(), 303);
    let page = app.get_html("/instructor").await;
    assert!(!select(&page, "a[href='/instructor/progress.csv']").is_empty());

    let weak = labdeck()
        .args([
            "user",
            "create",
            "--email",
            "x@example.com",
            "--password",
            "short",
            "--role",
            "admin",
        ])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("runs");
    assert_eq!(weak.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 10 characters"));
}

#[test]
fn content_check_passes_on_the_real_content() {
    let output = labdeck().args(["content", "check"]).output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.starts_with("content ok: "), "{stdout}");
}

#[test]
fn content_check_prints_file_and_line_and_fails_on_problems() {
    let fixture = crate::common::ContentFixture::new();
    fixture.lesson(
        "1-a.md",
        "a",
        1,
        "lab = \"nope\"\n",
        "Text\n\n```cobol\nx\n```\n\n[gone](/lessons/missing)\n",
    );
    let output = labdeck()
        .args(["content", "check", "--dir"])
        .arg(fixture.path())
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let file = fixture.path().join("basics/1-a.md");
    let file = file.display();
    assert!(
        stdout.contains(&format!("{file}:1: unknown lab `nope`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{file}:13: unknown code-block language `cobol`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{file}:17: broken internal link `/lessons/missing`"
        )),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("3 problem(s) in 1 lessons"),
        "{stdout}"
    );
}

#[tokio::test]
async fn migrations_run_down_and_up_again() {
    let app = TestApp::spawn().await;
    let down = labdeck()
        .args(["migrate", "--undo-all"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("runs");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'users'",
    )
    .fetch_one(&app.db())
    .await
    .expect("count");
    assert_eq!(tables, 0);
    let up = labdeck()
        .args(["migrate"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("runs");
    assert!(up.status.success());
    assert_eq!(
        String::from_utf8_lossy(&up.stdout).trim(),
        "database is up to date"
    );
    let (users,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&app.db())
        .await
        .expect("users table back");
    assert_eq!(users, 0);
}

#[test]
fn grade_prints_the_same_report_offline_and_exits_by_verdict() {
    let accepted = labdeck()
        .args([
            "grade",
            "--lab",
            "rate-limiter",
            "--public-only",
            "labs/rate-limiter/reference.js",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&accepted.stdout);
    assert_eq!(accepted.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("accepted: 3/3 tests passed, score 100"),
        "{stdout}"
    );
    let starter = labdeck()
        .args([
            "grade",
            "--lab",
            "rate-limiter",
            "labs/rate-limiter/starter.js",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&starter.stdout);
    assert_eq!(starter.status.code(), Some(1));
    assert!(stdout.contains("✗ [hidden] boundary burst"), "{stdout}");
    assert!(stdout.contains("✗ [random] random trace #1"), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("wrong_answer: 0/38 tests passed, score 0"),
        "{stdout}"
    );
}

#[test]
fn labs_check_proves_every_lab_sound() {
    let output = labdeck().args(["labs", "check"]).output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("rate-limiter: reference 38/38 (accepted), starter 0/38"),
        "{stdout}"
    );
}
