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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "unitdeck=info,tower_http=warn".into()),
        )
        // journald adds its own timestamps and reads stderr just as well.
        .without_time()
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
            let token = unitdeck::access::issue_token(&state, "cli", &name, scope).await?;
            println!("{}", token.token);
            eprintln!(
                "token {} ({}, scope {}) created",
                token.info.id, token.info.name, token.info.scope
            );
            Ok(())
        }),
        Command::Version => {
            println!("unitdeck {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
