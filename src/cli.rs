//! The `labdeck` command line: a thin layer that parses arguments and calls into the library.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::accounts::{self, Email, Role};
use crate::config::{Config, DatabaseArgs, ServeArgs};
use crate::content::Library;
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
    Serve(ServeArgs),
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
            let config = Config::from_args(args)?;
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
    }
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
