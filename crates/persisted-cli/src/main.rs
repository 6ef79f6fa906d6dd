//! `persisted`: see, check, fix and edit `persisted-state` stores without
//! writing Rust, the way `sqlite3` serves SQLite files.
//!
//! Exit codes: 0 done (or clean), 1 problems found or the command refused,
//! 2 wrong usage.

mod commands;
mod dynamic;
mod files;
#[cfg(feature = "postgres")]
mod postgres;
mod replay;
mod sealed;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// See, check, fix and edit persisted-state stores (JSON, YAML, TOML,
/// bincode) without writing Rust.
#[derive(Parser)]
#[command(name = "persisted", version, about, long_about = None)]
struct Cli {
    /// An encrypted store's key: a file of 32 bytes (or their base64),
    /// readable by its owner only. Without it, the key is read from the
    /// environment variable PERSISTED_KEY (base64 of 32 bytes).
    #[arg(long, global = true, value_name = "PATH")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the current state: the snapshot with the journal applied (or
    /// the state after a past commit). Takes no lock, writes nothing.
    Show {
        /// The store's snapshot file, e.g. state.json, or a PostgreSQL
        /// store: postgres://user@host/db#key.
        file: PathBuf,
        /// The state right after commit SEQ (see `persisted log`).
        #[arg(long, value_name = "SEQ", conflicts_with = "as_of")]
        at: Option<u64>,
        /// The state as of TIME (RFC 3339, e.g. 2026-11-29T10:00:00Z).
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List commits, newest first: sequence number, time, what changed.
    /// Takes no lock, writes nothing.
    Log {
        /// The store's snapshot file, or postgres://user@host/db#key.
        file: PathBuf,
        /// Only commits that change one of these fields (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "FIELDS")]
        fields: Vec<String>,
        /// At most N commits.
        #[arg(short = 'n', value_name = "N")]
        limit: Option<usize>,
    },
    /// Check the snapshot, the journal (header, frames, checksums, sequence)
    /// and the history files. Exit 1 with each problem's position. Takes no
    /// lock, writes nothing.
    Verify {
        /// The store's snapshot file, or postgres://user@host/db#key.
        file: PathBuf,
    },
    /// Fold the journal into the snapshot. Refuses while a program has the
    /// store open.
    Compact {
        /// The store's snapshot file.
        file: PathBuf,
    },
    /// Open the current state in $VISUAL or $EDITOR; if the result parses,
    /// it replaces the store atomically (journal folded). An edit that does
    /// not parse changes nothing and is kept for you.
    Edit {
        /// The store's snapshot file.
        file: PathBuf,
    },
    /// Write the current state as a new store in another format (by OUT's
    /// extension: .json, .yaml, .toml).
    Convert {
        /// The store's snapshot file.
        file: PathBuf,
        /// The new store's snapshot file; must not exist.
        out: PathBuf,
    },
    /// Set aside the damaged part of a journal (to a named file) so the
    /// store opens; says exactly what was dropped.
    Repair {
        /// The store's snapshot file.
        file: PathBuf,
    },
}

/// The output format of `show` (default: the store's own).
#[derive(Args, Clone, Copy)]
#[group(multiple = false)]
struct Output {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Print YAML.
    #[arg(long)]
    yaml: bool,
    /// Print TOML.
    #[arg(long)]
    toml: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sealed::set_key_file(cli.key_file);
    let result = run(cli.command);
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("persisted: {message}");
            ExitCode::from(1)
        }
    }
}

fn output_format(output: Output) -> Option<persisted_state_core::Format> {
    match (output.json, output.yaml, output.toml) {
        (true, _, _) => Some(persisted_state_core::Format::Json),
        (_, true, _) => Some(persisted_state_core::Format::Yaml),
        (_, _, true) => Some(persisted_state_core::Format::Toml),
        _ => None,
    }
}

/// A PostgreSQL store's commands (`postgres://...#key`); `None` for a
/// file.
#[cfg(feature = "postgres")]
fn run_postgres(command: &Command) -> Option<commands::Outcome> {
    let (file, name) = match command {
        Command::Show { file, .. } => (file, "show"),
        Command::Log { file, .. } => (file, "log"),
        Command::Verify { file } => (file, "verify"),
        Command::Compact { file } => (file, "compact"),
        Command::Edit { file } => (file, "edit"),
        Command::Convert { file, .. } => (file, "convert"),
        Command::Repair { file } => (file, "repair"),
    };
    let remote = match postgres::Remote::parse(file)? {
        Ok(remote) => remote,
        Err(message) => return Some(Err(message)),
    };
    Some(match command {
        Command::Show {
            at, as_of, output, ..
        } => postgres::show(&remote, *at, as_of.as_deref(), output_format(*output)),
        Command::Log { fields, limit, .. } => postgres::log(&remote, fields, *limit),
        Command::Verify { .. } => postgres::verify(&remote),
        _ => postgres::files_only(name),
    })
}

fn run(command: Command) -> commands::Outcome {
    #[cfg(feature = "postgres")]
    if let Some(outcome) = run_postgres(&command) {
        return outcome;
    }
    match command {
        Command::Show {
            file,
            at,
            as_of,
            output,
        } => commands::show(&file, at, as_of.as_deref(), output_format(output)),
        Command::Log {
            file,
            fields,
            limit,
        } => commands::log(&file, &fields, limit),
        Command::Verify { file } => commands::verify(&file),
        Command::Compact { file } => commands::compact(&file),
        Command::Edit { file } => commands::edit(&file),
        Command::Convert { file, out } => commands::convert(&file, &out),
        Command::Repair { file } => commands::repair(&file),
    }
}
