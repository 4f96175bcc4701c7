//! Configuration: flags, then `RAPPORT_*` environment variables (clap reads both), then
//! an optional `rapport.toml`. Defaults work with none of them.
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://rapport.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    secure_cookies: Option<bool>,
}

#[derive(Debug)]
pub struct Settings {
    pub database_url: String,
    listen_file: Option<String>,
    pub secure_cookies: bool,
}

impl Settings {
    pub fn load(config_path: Option<&Path>, database_url: Option<&str>) -> Result<Settings> {
        let file = match config_path {
            Some(p) => Some(read(p)?),
            None if Path::new("rapport.toml").exists() => Some(read(Path::new("rapport.toml"))?),
            None => None,
        }
        .unwrap_or_default();
        let database_url =
            database_url.map(str::to_owned).or(file.database_url).unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        kernel::db::DatabaseUrl::parse(&database_url).map_err(|e| anyhow!("--database-url: {e}"))?;
        let secure_cookies = match std::env::var("RAPPORT_SECURE_COOKIES") {
            Ok(v) => matches!(v.as_str(), "1" | "true" | "yes"),
            Err(_) => file.secure_cookies.unwrap_or(false),
        };
        Ok(Settings { database_url, listen_file: file.listen, secure_cookies })
    }

    pub fn listen(&self, flag: Option<&str>) -> Result<SocketAddr> {
        let text =
            flag.map(str::to_owned).or_else(|| self.listen_file.clone()).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        text.parse().map_err(|_| anyhow!("--listen: {text:?} is not an address like 127.0.0.1:8080"))
    }

    pub fn database_redacted(&self) -> String {
        kernel::db::DatabaseUrl::parse(&self.database_url).map(|u| u.redacted()).unwrap_or_default()
    }
}

fn read(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not valid configuration", path.display()))
}
