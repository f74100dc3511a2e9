//! `rampart`: the one command of a Rampart installation.
//!
//! - `rampart init` creates the secrets directory: CA and service certificates (or CSRs), the
//!   admin password, the session secret, the database password and the service accounts.
//! - `rampart certs install` takes certificates signed by an external CA back.
//! - `rampart up` runs the control plane and the data plane as two processes joined by a Unix
//!   socket, and stops both together.
//! - `rampart dataplane` and `rampart controlplane` run one plane alone.
//!
//! Exit status: 0 on success, 1 when something fails at run time, 2 for bad usage or a bad
//! configuration file (the message names the key).

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod admin;
mod client;
mod config;
mod supervisor;

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use zeroize::Zeroizing;

use crate::config::{Config, LogFormat};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "rampart", version, about = "Rampart secure edge gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create secrets, the CA and service certificates (run once per installation).
    Init(InitArgs),
    /// Certificate management.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Run the control plane and the data plane together.
    Up(ConfigArg),
    /// Run the data plane alone.
    Dataplane(ConfigArg),
    /// Run the control plane alone.
    Controlplane(ConfigArg),
    /// Accounts: human users and service accounts.
    User(AdminCmd<admin::UserCommand>),
    /// MQTT topic ACL rules.
    Acl(AdminCmd<admin::AclCommand>),
    /// REST API keys.
    Apikey(AdminCmd<admin::ApikeyCommand>),
    /// The AMT device allowlist.
    Device(AdminCmd<admin::DeviceCommand>),
    /// Read the audit log.
    Audit {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        args: admin::AuditArgs,
    },
    /// Policy generation and data-plane status.
    Status(ConfigArg),
}

/// An admin command run against the control plane's admin socket.
#[derive(Debug, Args)]
struct AdminCmd<T: Subcommand> {
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: T,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The configuration file (TOML). Without it, the embedded defaults apply.
    #[arg(long, short, env = "RAMPART_CONFIG", global = true)]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Where to put the secrets (SceneScape's SECRETSDIR). Default: from the config,
    /// `<data_dir>/secrets`.
    #[arg(long)]
    secrets_dir: Option<PathBuf>,
    /// Host name in the certificates (SceneScape's HOST).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Domain suffix: certificates are for `<host>.<domain>` (SceneScape's CERTDOMAIN).
    #[arg(long)]
    domain: Option<String>,
    /// An IP address SAN for the service certificates (SceneScape's IP_SAN); repeatable.
    #[arg(long = "ip-san")]
    ip_san: Vec<IpAddr>,
    /// Write a key and CSR per service for an external CA instead of a self-signed chain.
    #[arg(long)]
    csr: bool,
    /// Replace existing secrets and certificates.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Install certificates signed by an external CA for the CSRs of `rampart init --csr`.
    Install(InstallArgs),
}

#[derive(Debug, Args)]
struct InstallArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The secrets directory. Default: from the config.
    #[arg(long)]
    secrets_dir: Option<PathBuf>,
    /// The external CA's certificate (PEM; a chain is accepted).
    #[arg(long)]
    ca: PathBuf,
    /// Signed certificates (PEM); each is matched to its service by its public key.
    #[arg(required = true)]
    certs: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config_path = match &cli.command {
        Command::Init(a) => a.config.config.clone(),
        Command::Certs(CertsCommand::Install(a)) => a.config.config.clone(),
        Command::Up(a) | Command::Dataplane(a) | Command::Controlplane(a) => a.config.clone(),
        Command::User(a) => a.config.config.clone(),
        Command::Acl(a) => a.config.config.clone(),
        Command::Apikey(a) => a.config.config.clone(),
        Command::Device(a) => a.config.config.clone(),
        Command::Audit { config, .. } | Command::Status(config) => config.config.clone(),
    };
    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rampart: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let supervised = matches!(
        cli.command,
        Command::Dataplane(_) | Command::Controlplane(_)
    );
    if let Err(e) = supervised.then(supervisor::follow_parent).transpose() {
        eprintln!("rampart: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Init(args) => init(&config, args),
        Command::Certs(CertsCommand::Install(args)) => install(&config, args),
        Command::Up(_) => supervisor::up(config_path.as_deref(), &config),
        Command::Dataplane(_) => dataplane(&config),
        Command::Controlplane(_) => rampart_controlplane::run(config.controlplane())
            .map_err(|e| anyhow::anyhow!("control plane: {e}")),
        Command::User(a) => admin::user(&config.admin_socket(), a.command),
        Command::Acl(a) => admin::acl(&config.admin_socket(), a.command),
        Command::Apikey(a) => admin::apikey(&config.admin_socket(), a.command),
        Command::Device(a) => admin::device(&config.admin_socket(), a.command),
        Command::Audit { args, .. } => admin::audit(&config.admin_socket(), args),
        Command::Status(_) => admin::status(&config.admin_socket()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    // rustls logs what a peer got wrong at warn, unthrottled; our own rate-limited lines report
    // those outcomes already. Keep rustls quiet unless the operator asks for it by name.
    let level = if config.log.level.contains("rustls") {
        config.log.level.clone()
    } else {
        format!("{},rustls=error", config.log.level)
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn dataplane(config: &Config) -> anyhow::Result<()> {
    // Standalone (`rampart dataplane`) runs without the control link unless the control plane's
    // socket is there; under `rampart up` it always exists.
    let socket = config.control_socket();
    let link = socket.exists();
    rampart_dataplane::run(config.dataplane(link)).map_err(|e| anyhow::anyhow!("data plane: {e}"))
}

fn secrets_dir(config: &Config, flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| config.secrets_dir())
}

fn init(config: &Config, args: InitArgs) -> anyhow::Result<()> {
    let dir = secrets_dir(config, args.secrets_dir);
    let names = rampart_ca::Names::new(&args.host, args.domain.as_deref(), args.ip_san)
        .map_err(|e| anyhow::anyhow!("certificate names: {e}"))?;
    // SceneScape's deploy script takes DBPASS from the environment; so do we. Never a flag:
    // arguments show in `ps`.
    let db_password = std::env::var("DBPASS")
        .ok()
        .filter(|s| !s.is_empty())
        .map(Zeroizing::new);
    let opts = rampart_secrets::InitOptions {
        secrets_dir: dir.clone(),
        names,
        csr: args.csr,
        force: args.force,
        db_password,
    };
    let report = rampart_secrets::init(&opts).map_err(|e| anyhow::anyhow!("init: {e}"))?;
    println!(
        "Secrets in {} (directories 0700, files 0600).",
        dir.display()
    );
    for p in &report.created {
        println!("  created  {}", p.display());
    }
    for p in &report.kept {
        println!("  kept     {}", p.display());
    }
    if !report.kept.is_empty() {
        println!("Existing secrets were kept; `rampart init --force` replaces them.");
    }
    if args.csr {
        println!(
            "CSRs are in {}; sign them with your CA, then run `rampart certs install --ca <ca.pem> <cert.pem>...`.",
            dir.join("certs").display()
        );
    }
    match &report.admin_password {
        Some(pw) => {
            println!();
            println!("Web and API superuser: admin");
            println!(
                "Password (shown once, stored only as an Argon2id hash): {}",
                pw.as_str()
            );
        }
        None => println!("The admin password is unchanged."),
    }
    Ok(())
}

fn install(config: &Config, args: InstallArgs) -> anyhow::Result<()> {
    let dir = secrets_dir(config, args.secrets_dir);
    let installed = rampart_secrets::install_certs(&dir, &args.ca, &args.certs)
        .map_err(|e| anyhow::anyhow!("certs install: {e}"))?;
    for (service, path) in installed {
        println!("installed {service}: {}", path.display());
    }
    println!("Send SIGHUP to a running Rampart (or restart it) to serve the new certificates.");
    Ok(())
}

/// The config file argument to pass on to child processes.
fn config_args(path: Option<&Path>) -> Vec<std::ffi::OsString> {
    match path {
        Some(p) => vec!["--config".into(), p.as_os_str().to_owned()],
        None => Vec::new(),
    }
}
