//! The `crm` command line: serve (the default), migrate, schema, token, seed, client,
//! export, import, documents.

use clap::{Args, Parser, Subcommand};

use crate::app::{self, Application};
use crate::auth::{Scope, TokenIssuer};
use crate::config::{DbConfig, ServeConfig};

#[derive(Parser)]
#[command(name = "crm", version, about = "The CRM GraphQL API service")]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default when no command is given).
    Serve(Box<ServeConfig>),
    /// Apply pending database migrations and exit.
    Migrate(DbConfig),
    /// Print the GraphQL schema (SDL), as committed in schema.graphql.
    Schema,
    /// Mint a bearer token for development and scripts.
    Token(TokenArgs),
    /// Fill an organization with realistic fake customers and activities.
    Seed(SeedArgs),
    /// Manage API clients (OAuth2 client credentials).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Write an organization's customers and activities (the trash included) to standard
    /// output or a file: JSON Lines (default) or CSV (one kind of row).
    Export(ExportArgs),
    /// Create or update an organization's customers from a CSV file (with a header row) or
    /// JSON Lines, checked by the rules of the API. Exits 3 when rows were rejected.
    Import(ImportArgs),
    /// Manage trusted documents (persisted queries that an operator vouches for).
    #[command(subcommand)]
    Documents(DocumentsCommand),
}

#[derive(Args)]
struct ExportArgs {
    /// The organization to export.
    #[arg(long, value_parser = org_name)]
    org: String,
    #[arg(long, value_enum, default_value_t = crate::export::Format::Jsonl)]
    format: crate::export::Format,
    #[arg(long, value_enum, default_value_t = crate::export::Entities::All)]
    entities: crate::export::Entities,
    /// Write here instead of standard output.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    db: DbConfig,
}

#[derive(Args)]
struct ImportArgs {
    /// The file: CSV with a header row, or JSON Lines (one object a line).
    file: std::path::PathBuf,
    /// The organization to import into.
    #[arg(long, value_parser = org_name)]
    org: String,
    /// The file's format; by default from its extension (.csv, .jsonl or .ndjson).
    #[arg(long, value_enum)]
    format: Option<crate::import::Format>,
    /// Read the column (or JSON key) COLUMN as the field FIELD; `COLUMN=` ignores it.
    /// Repeatable.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    maps: Vec<String>,
    /// The system the external ids belong to: a row with an `externalId` updates the
    /// customer holding (source, externalId), or creates it.
    #[arg(long, default_value = "import")]
    source: String,
    /// One transaction for the whole file: any rejected row and nothing is written.
    #[arg(long)]
    all_or_nothing: bool,
    /// Check everything (the database's checks included), report, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also write the rejected rows to this file, as JSON Lines.
    #[arg(long, value_name = "FILE")]
    rejects: Option<std::path::PathBuf>,
    /// No progress bar and no line per rejected row; the summary is still printed.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    db: DbConfig,
}

/// An organization named on the command line, checked as a token's `org` claim is (the
/// CLI writes straight to the database: a stray space would make a new tenant).
fn org_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.len() > 64 {
        return Err("must be 1 to 64 bytes".into());
    }
    if raw.trim() != raw || raw.chars().any(char::is_control) {
        return Err("must not start or end with spaces or hold control characters".into());
    }
    Ok(raw.to_owned())
}

/// The CLI acts as `crm-cli` in the organization it names (the author of its writes).
fn operator(org: &str) -> crate::auth::Principal {
    crate::auth::Principal::operator("crm-cli", org)
}

#[derive(Subcommand)]
enum DocumentsCommand {
    /// Add trusted documents: GraphQL files (`.graphql`, one document each, its id the
    /// SHA-256 of its text), Apollo persisted query manifests or Relay persisted-query maps
    /// (`.json`). Prints each id. With CRM_TRUSTED_DOCUMENTS=only, only these run.
    Add(DocumentsAddArgs),
}

#[derive(Args)]
struct DocumentsAddArgs {
    /// The files to add.
    #[arg(required = true)]
    files: Vec<std::path::PathBuf>,
    #[command(flatten)]
    db: DbConfig,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create an API client and print its id and secret (shown once).
    Create(ClientCreateArgs),
}

#[derive(Args)]
struct ClientCreateArgs {
    #[arg(long, default_value = app::DEV_ORG, value_parser = org_name)]
    org: String,
    #[arg(long)]
    name: String,
    /// Space-separated scopes the client may request.
    #[arg(long)]
    scope: String,
    #[command(flatten)]
    db: DbConfig,
}

#[derive(Args)]
struct TokenArgs {
    /// The tenant (`org` claim).
    #[arg(long, default_value = app::DEV_ORG, value_parser = org_name)]
    org: String,
    /// The subject (`sub` claim).
    #[arg(long, default_value = app::DEV_SUBJECT)]
    sub: String,
    /// Space-separated scopes; every scope by default.
    #[arg(long)]
    scope: Option<String>,
    /// Lifetime in seconds (at most ten years).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..=315_360_000))]
    ttl: i64,
    /// The server's HS256 secret. Unset: the dev secret `crm serve` keeps beside its database.
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// The server's `iss`.
    #[arg(long, env = "CRM_JWT_ISSUER", default_value = "crm")]
    issuer: String,
    /// The server's `aud`.
    #[arg(long, env = "CRM_JWT_AUDIENCE", default_value = "crm-api")]
    audience: String,
    /// The server's database, beside which its dev secret is kept.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "sqlite://crm.db?mode=rwc"
    )]
    database_url: String,
}

#[derive(Args)]
struct SeedArgs {
    #[arg(long, default_value = app::DEV_ORG, value_parser = org_name)]
    org: String,
    #[arg(long, default_value_t = 100)]
    customers: usize,
    #[arg(long, default_value_t = 5)]
    activities_per_customer: usize,
    #[command(flatten)]
    db: DbConfig,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        Some(command) => command,
        // `crm` alone serves, with every setting from the environment or its default.
        None => Command::Serve(Box::new(ServeConfig::from_env())),
    };
    match command {
        Command::Serve(config) => serve(*config).await,
        Command::Migrate(db) => {
            with_store(&db, async |_| Ok(())).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::Token(args) => {
            // The same checks as `serve` and `client create`: a token the server would refuse,
            // or one whose scopes silently mean nothing, is an error here, not later.
            if let Some(secret) = &args.jwt_secret
                && secret.len() < 32
            {
                anyhow::bail!(
                    "CRM_JWT_SECRET (--jwt-secret) must be at least 32 bytes; it has {}",
                    secret.len()
                );
            }
            let scope = args.scope.unwrap_or_else(Scope::all_joined);
            for name in scope.split_whitespace() {
                if name.parse::<Scope>().is_err() {
                    anyhow::bail!(
                        "unknown scope `{name}` in --scope; the scopes are: {}",
                        Scope::all_joined()
                    );
                }
            }
            let db = DbConfig {
                url: args.database_url,
                max_connections: Some(1),
                statement_timeout_ms: 0,
            };
            let secret = app::server_secret(args.jwt_secret.as_deref(), &db)?;
            let token = TokenIssuer::hs256(&secret, &args.issuer, &args.audience).mint(
                &args.sub,
                &args.org,
                &scope,
                chrono::Duration::seconds(args.ttl),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Client(ClientCommand::Create(args)) => {
            let scopes: Vec<String> = args.scope.split_whitespace().map(str::to_owned).collect();
            let issued = with_store(&args.db, async |store| {
                let tenant = store.tenant(&operator(&args.org));
                match crate::domain::clients::create(&tenant, &args.name, &scopes).await {
                    Ok(issued) => Ok(issued),
                    Err(crate::domain::Error::Invalid(violations)) => {
                        let text: Vec<String> = violations
                            .iter()
                            .map(|v| format!("{}: {}", v.field.join("."), v.message))
                            .collect();
                        anyhow::bail!("{}", text.join("; "))
                    }
                    Err(err) => Err(err.into()),
                }
            })
            .await?;
            println!("client_id={}", issued.client.id);
            println!("client_secret={}", issued.secret);
            Ok(())
        }
        Command::Export(args) => {
            let written = with_store(&args.db, async |store| {
                let tenant = store.tenant(&operator(&args.org));
                let written = match &args.output {
                    Some(path) => {
                        let file = std::fs::File::create(path).map_err(|err| {
                            anyhow::anyhow!("cannot write {}: {err}", path.display())
                        })?;
                        crate::export::run(&tenant, args.format, args.entities, file).await?
                    }
                    None => {
                        crate::export::run(
                            &tenant,
                            args.format,
                            args.entities,
                            std::io::stdout().lock(),
                        )
                        .await?
                    }
                };
                Ok(written)
            })
            .await?;
            eprintln!("exported {written} rows of org {}", args.org);
            Ok(())
        }
        Command::Import(args) => {
            let options = crate::import::Options {
                format: args.format,
                maps: args.maps,
                source: args.source,
                all_or_nothing: args.all_or_nothing,
                dry_run: args.dry_run,
                rejects: args.rejects,
                quiet: args.quiet,
            };
            let summary = with_store(&args.db, async |store| {
                let tenant = store.tenant(&operator(&args.org));
                Ok(crate::import::run(&tenant, &args.file, options).await?)
            })
            .await?;
            if summary.rejected > 0 {
                // 3: rows were rejected (reported above); 1 is for an import that stopped,
                // 2 for a command line that could not be read (clap's). The pool is closed
                // by then: everything it wrote is committed or rolled back.
                std::process::exit(3);
            }
            Ok(())
        }
        Command::Documents(DocumentsCommand::Add(args)) => {
            args.db.validate()?;
            // Every file is read and checked before anything is stored.
            let mut documents = Vec::new();
            for path in &args.files {
                documents.extend(crate::manifest::read(path)?);
            }
            with_store(&args.db, async |store| {
                Ok(store.trust_documents(&documents).await?)
            })
            .await?;
            for (id, _) in &documents {
                println!("{id}");
            }
            eprintln!("{} trusted documents added", documents.len());
            Ok(())
        }
        Command::Seed(args) => {
            let done = with_store(&args.db, async |store| {
                Ok(crate::domain::seed::seed(
                    store,
                    &args.org,
                    args.customers,
                    args.activities_per_customer,
                )
                .await?)
            })
            .await?;
            println!(
                "seeded org {}: {} users, {} customers, {} activities",
                args.org, done.users, done.customers, done.activities
            );
            Ok(())
        }
    }
}

/// Runs a command on the migrated database `db` names, then closes its pool whatever the
/// command's outcome. On SQLite the last connection to close folds the write-ahead log back
/// into the database and removes it: a seed left a 370 MB log behind otherwise, which the
/// next process to open the file read whole (a server started on it held 12 MB more).
async fn with_store<T>(
    db: &DbConfig,
    command: impl AsyncFnOnce(&crate::domain::Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    db.validate()?;
    let conn = crate::db::connect(db, None).await?;
    let outcome = match crate::db::migrate(&conn).await {
        Ok(()) => command(&crate::domain::Store::new(conn.clone())).await,
        Err(err) => Err(err.into()),
    };
    let closed = conn.close().await;
    let done = outcome?;
    closed?;
    Ok(done)
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let addr = app.local_addr()?;
    println!("CRM GraphQL API listening on http://{addr}/graphql");
    println!("GraphiQL playground: http://{addr}/graphql (open in a browser)");
    if let Some(token) = &app.dev_token {
        println!("dev mode (no CRM_JWT_SECRET): paste this header into GraphiQL's Headers tab:");
        println!("{{\"Authorization\": \"Bearer {token}\"}}");
    }
    app.run(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
