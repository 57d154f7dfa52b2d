//! The `labdeck` command line: a thin layer that parses arguments and calls into the library.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use std::path::Path;

use crate::accounts::{self, Email, Role};
use crate::config::{Config, DatabaseArgs, ServeArgs};
use crate::content::Library;
use crate::grading::{self, Language, Mode, Report, TestResult};
use crate::labs;
use crate::sandbox::Sandbox;
use crate::{app, infra};

#[derive(Debug, Parser)]
#[command(
    name = "labdeck",
    version,
    about = "Interactive learning and interview prep for backend engineers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (creates the database and applies migrations first).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations (or undo them all with --undo-all).
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Revert every migration (drops labdeck's tables).
        #[arg(long)]
        undo_all: bool,
    },
    /// Lesson content tools.
    Content {
        #[command(subcommand)]
        command: ContentCommand,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Grade a solution offline, with the same report the web page shows.
    Grade {
        /// Lab id, e.g. rate-limiter.
        #[arg(long)]
        lab: String,
        /// javascript or wasm (default: from the file extension).
        #[arg(long)]
        language: Option<String>,
        /// Run the public tests only.
        #[arg(long)]
        public_only: bool,
        #[arg(long, env = "LABDECK_LABS_DIR", default_value = "labs")]
        labs_dir: PathBuf,
        file: PathBuf,
    },
    /// Lab tools.
    Labs {
        #[command(subcommand)]
        command: LabsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabsCommand {
    /// Prove every lab sound: its reference solution passes every test and its starter fails one.
    Check {
        #[arg(long, env = "LABDECK_LABS_DIR", default_value = "labs")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContentCommand {
    /// Lint every lesson: prints `file:line: message` per problem, exits 1 if there is any.
    Check {
        #[arg(long, env = "LABDECK_CONTENT_DIR", default_value = "content")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input when --password is omitted.
    Create {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// learner, instructor or admin
        #[arg(long, default_value = "learner", value_parser = parse_role)]
        role: Role,
    },
    /// Change the role of an existing account.
    SetRole {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("`{s}` is not a role; use learner, instructor or admin"))
}

/// Runs a command; the exit code is 0 on success, 1 when a check found problems.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => {
            let config = Config::from_args(*args)?;
            let server = app::start(config).await?;
            let lessons = server.state.content.library().lessons().count();
            println!(
                "labdeck is running at http://{} ({lessons} lessons)",
                server.addr
            );
            if server.state.config.dev {
                println!(
                    "dev mode: lessons reload when files under {} change",
                    server.state.config.content_dir.display()
                );
            }
            server.handle.await??;
            Ok(0)
        }
        Command::Migrate { db, undo_all } => {
            let pool = infra::connect_postgres(&db.database_url).await?;
            if undo_all {
                infra::MIGRATOR.undo(&pool, 0).await?;
                println!("all migrations reverted");
            } else {
                println!("database is up to date");
            }
            Ok(0)
        }
        Command::Content {
            command: ContentCommand::Check { dir },
        } => {
            let library = tokio::task::spawn_blocking(move || Library::load(&dir)).await?;
            for diagnostic in &library.diagnostics {
                println!("{diagnostic}");
            }
            let lessons = library.lessons().count();
            if library.diagnostics.is_empty() {
                println!(
                    "content ok: {lessons} lessons in {} tracks",
                    library.tracks.len()
                );
                Ok(0)
            } else {
                println!(
                    "{} problem(s) in {lessons} lessons",
                    library.diagnostics.len()
                );
                Ok(1)
            }
        }
        Command::User { command } => user_command(command).await,
        Command::Grade {
            lab,
            language,
            public_only,
            labs_dir,
            file,
        } => {
            let language = match language {
                Some(name) => Language::parse(&name).ok_or_else(|| {
                    anyhow::anyhow!("unknown language `{name}`; use javascript or wasm")
                })?,
                None if file.extension().is_some_and(|e| e == "wasm" || e == "wat") => {
                    Language::Wasm
                }
                None => Language::Javascript,
            };
            let source = match language {
                // Binary modules travel as base64 text, as they do from the web page.
                Language::Wasm => grading::wasm_source(&std::fs::read(&file)?),
                Language::Javascript => std::fs::read_to_string(&file)?,
            };
            let mode = if public_only { Mode::Run } else { Mode::Submit };
            let report = on_sandbox_thread(move || -> anyhow::Result<Report> {
                let labs = labs::load_challenges(&labs_dir)?;
                let lab = labs
                    .iter()
                    .find(|l| l.id == lab)
                    .ok_or_else(|| anyhow::anyhow!("no lab `{lab}` with a challenge"))?;
                let sandbox = Sandbox::from_project(Path::new("."))?;
                Ok(grading::grade(
                    &sandbox,
                    lab,
                    language,
                    &source,
                    mode,
                    print_result,
                ))
            })
            .await??;
            println!(
                "{}: {}/{} tests passed, score {}",
                report.verdict,
                report.passed,
                report.total,
                report.score()
            );
            Ok(if report.accepted() { 0 } else { 1 })
        }
        Command::Labs {
            command: LabsCommand::Check { dir },
        } => on_sandbox_thread(move || labs_check(&dir)).await?,
    }
}

/// Runs `work` on a thread with a stack as large as the sandbox's worker threads: wasm code may
/// use up to `max_wasm_stack`, which must fit in the host thread's stack.
async fn on_sandbox_thread<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> anyhow::Result<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("labdeck-grade".into())
        .stack_size(64 << 20)
        .spawn(move || {
            let _ = tx.send(work());
        })?;
    Ok(rx.await?)
}

fn print_result(result: &TestResult) {
    let mark = if result.passed { "✓" } else { "✗" };
    println!(
        "{mark} [{}] {} ({} fuel)",
        result.visibility.as_str(),
        result.name,
        result.fuel_used
    );
    if !result.passed {
        println!("    {}: {}", result.verdict, result.message);
        if let Some(input) = &result.input {
            println!("    input:    {}", clip(&input.to_string()));
        }
        if let Some(expected) = &result.expected {
            println!("    expected: {}", clip(&expected.to_string()));
        }
        if let Some(actual) = &result.actual {
            println!("    actual:   {}", clip(&actual.to_string()));
        }
    }
    if !result.console.is_empty() {
        for line in result.console.lines().take(20) {
            println!("    console: {line}");
        }
    }
}

fn clip(text: &str) -> String {
    if text.chars().count() > 400 {
        format!("{}…", text.chars().take(400).collect::<String>())
    } else {
        text.to_string()
    }
}

fn labs_check(dir: &Path) -> anyhow::Result<i32> {
    let labs = labs::load_challenges(dir)?;
    let sandbox = Sandbox::from_project(Path::new("."))?;
    let mut sound = true;
    for lab in &labs {
        let reference = grading::grade(
            &sandbox,
            lab,
            Language::Javascript,
            &lab.reference,
            Mode::Submit,
            |_| {},
        );
        let starter = grading::grade(
            &sandbox,
            lab,
            Language::Javascript,
            &lab.starter,
            Mode::Submit,
            |_| {},
        );
        let ok = reference.accepted() && !starter.accepted();
        sound &= ok;
        println!(
            "{}: reference {}/{} ({}), starter {}/{} — {}",
            lab.id,
            reference.passed,
            reference.total,
            reference.verdict,
            starter.passed,
            starter.total,
            if ok { "sound" } else { "NOT SOUND" }
        );
        if !reference.accepted() {
            for failed in reference.results.iter().filter(|r| !r.passed) {
                println!("  reference fails {}: {}", failed.name, failed.message);
            }
        }
    }
    Ok(if sound { 0 } else { 1 })
}

async fn user_command(command: UserCommand) -> anyhow::Result<i32> {
    match command {
        UserCommand::Create {
            db,
            email,
            name,
            password,
            role,
        } => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let password = match password {
                Some(p) => p,
                None => {
                    let mut input = String::new();
                    std::io::stdin().read_to_string(&mut input)?;
                    input.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            accounts::check_password_strength(&password, email.as_str())
                .map_err(anyhow::Error::msg)?;
            let hash = accounts::hash_password(&password)?;
            let pool = infra::connect_postgres(&db.database_url).await?;
            let mut conn = pool.acquire().await?;
            let name = name.unwrap_or_else(|| {
                email
                    .as_str()
                    .split('@')
                    .next()
                    .unwrap_or("user")
                    .to_string()
            });
            let user = accounts::create_user(&mut conn, &email, &name, &hash, role).await?;
            println!("created {} ({}) with id {}", user.email, user.role, user.id);
            Ok(0)
        }
        UserCommand::SetRole { db, email, role } => {
            let pool = infra::connect_postgres(&db.database_url).await?;
            let mut conn = pool.acquire().await?;
            if accounts::set_role(&mut conn, &email, role).await? {
                println!("{email} is now {role}");
                Ok(0)
            } else {
                anyhow::bail!("no account with email {email}")
            }
        }
        UserCommand::List { db } => {
            let pool = infra::connect_postgres(&db.database_url).await?;
            let mut conn = pool.acquire().await?;
            for user in accounts::list_users(&mut conn).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    user.id, user.email, user.role, user.display_name
                );
            }
            Ok(0)
        }
    }
}
