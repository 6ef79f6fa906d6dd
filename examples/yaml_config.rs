//! An application's configuration in a YAML file that both the program and
//! a person can change.
//!
//! ```text
//! cargo run --example yaml_config --features yaml                 # app-config.yaml
//! cargo run --example yaml_config --features yaml -- my-app.yaml
//! ```
//!
//! The first run creates the file from `AppConfig::default()`. Each run
//! prints the configuration, switches `log_level` between `info` and
//! `debug` with a generated setter (one atomic, durable commit), closes the
//! store and prints the file as it is on disk: pretty YAML, fields in
//! declaration order. While the program is not running you can edit the
//! file by hand (change `port`, add a feature flag) and the next run sees
//! your edit. YAML comments you add are not kept: the file is rewritten
//! from the struct at the next compaction (on `close()`, or when the
//! journal grows large).

use std::collections::BTreeMap;
use std::path::PathBuf;

use persisted_state::{Persisted, Store};
use serde::{Deserialize, Serialize};

/// The configuration of a small web service.
#[derive(Persisted, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct AppConfig {
    /// The name shown in logs and in the page title.
    name: String,
    /// Where the service listens (a nested struct: one YAML mapping).
    server: Server,
    /// One of `error`, `warn`, `info`, `debug`, `trace`.
    log_level: String,
    /// Added in a later version: files written before it existed still
    /// open, and get the type's default (0 = no limit).
    #[serde(default)]
    max_upload_mb: u32,
    /// Feature flags by name.
    features: BTreeMap<String, bool>,
}

/// The listening address.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Server {
    /// Host name or IP address to bind.
    host: String,
    /// TCP port.
    port: u16,
}

/// What a missing file starts from.
impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            name: "demo-service".into(),
            server: Server {
                host: "127.0.0.1".into(),
                port: 8080,
            },
            log_level: "info".into(),
            max_upload_mb: 10,
            features: [
                ("dark_mode".to_string(), true),
                ("beta_search".to_string(), false),
            ]
            .into(),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("app-config.yaml"));
    let existed = path.exists();

    // The format comes from the extension (`.yaml`/`.yml`). The store holds
    // a lock on `<file>.lock` while open: a second copy of this program
    // would get `Error::Locked` instead of clobbering the file.
    let store: Store<AppConfig> = AppConfig::open(&path)?;
    println!(
        "{} {}:",
        if existed { "loaded" } else { "created" },
        path.display()
    );
    {
        let config = store.read();
        println!("  name          = {}", config.name);
        println!(
            "  server        = {}:{}",
            config.server.host, config.server.port
        );
        println!("  log_level     = {}", config.log_level);
        println!("  max_upload_mb = {}", config.max_upload_mb);
        for (flag, on) in &config.features {
            println!("  features.{flag} = {on}");
        }
    }

    // Change one setting. The generated setter writes it through: the
    // change is on disk (in `<file>.journal`) when the call returns.
    let old = store.log_level();
    let new = if old == "debug" { "info" } else { "debug" };
    store.set_log_level(new.to_string())?;
    println!("\nchanged log_level: {old} -> {new}");

    // `close()` folds the journal into the YAML file and releases the lock.
    store.close()?;

    println!("\n{} now reads:\n", path.display());
    println!("{}", std::fs::read_to_string(&path)?.trim_end());
    println!(
        "\nThe program has closed the file, so you may edit it by hand now (try\n\
         `port: 9090`, or a new entry under `features:`); the next run loads your\n\
         edit. Do not edit it while a program has it open. Comments you add are\n\
         not kept: the file is rewritten from the struct at the next compaction\n\
         (every `close()`)."
    );
    Ok(())
}
