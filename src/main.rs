use std::io::BufRead;

use clap::{Parser, Subcommand};
use unitdeck::auth::{Scope, hash_password};
use unitdeck::config::{Config, ServeArgs};

/// unitdeck: the services of this dev container, in a browser and over a REST API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the panel and the API.
    Serve(ServeArgs),
    /// Read a password from standard input and print its argon2 hash for UNITDECK_PASSWORD_HASH.
    HashPassword,
    /// Manage API tokens without a browser.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the version.
    Version,
    /// Count journal entries for the server (the histogram and facets): the request as
    /// JSON on standard input, the counts as JSON on standard output. Run by `serve`
    /// itself, as a child process.
    #[command(hide = true)]
    JournalScan,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print its secret (shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// read, operate or admin
        #[arg(long)]
        scope: Scope,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "unitdeck=info,tower_http=warn".into()),
        )
        // journald adds its own timestamps and reads stderr just as well; colours only on
        // a terminal (in the journal they were escape sequences in every line).
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // No runtime: the scan is one blocking loop.
    if let Command::JournalScan = cli.command {
        return Ok(unitdeck::systemd::journal::scan::run_child()?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(unitdeck::serve(Config::resolve(args)?)),
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(!password.is_empty(), "no password on standard input");
            println!("{}", hash_password(password)?);
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { name, scope, serve },
        } => runtime.block_on(async {
            let config = Config::resolve(serve)?;
            let state = unitdeck::db::Db::open(&config.database_path()).await?;
            let token = unitdeck::service::issue_token(&state, "cli", &name, scope).await?;
            println!("{}", token.token);
            eprintln!(
                "token {} ({}, scope {}) created",
                token.info.id, token.info.name, token.info.scope
            );
            Ok(())
        }),
        Command::JournalScan => unreachable!("handled before the runtime"),
        Command::Version => {
            println!("unitdeck {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

/// glibc raises its mmap threshold to the size of the largest block freed so far, so
/// after the first password check argon2's 19 MiB working set would come from the heap
/// and stay there (RSS 35 instead of 16 MiB after one login). A fixed threshold keeps
/// large blocks in their own mappings, unmapped on free; two arenas stop short-lived
/// blocking threads from each keeping freed memory of their own.
#[cfg(target_env = "gnu")]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator settings; it runs before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(target_env = "gnu"))]
fn tune_allocator() {}
