//! The AWS shared configuration files (`~/.aws/credentials`, `~/.aws/config`) for `AWS_PROFILE`.
//!
//! `object_store` reads credentials from variables, instance metadata and web identity, but not
//! from these files. This reads the part of them that matters for a profile with static keys:
//! `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`, `region` and
//! `endpoint_url`. The files are INI: `[name]` sections in the credentials file, `[default]` or
//! `[profile name]` in the config file; keys in the credentials file win. Variables win over both
//! (the caller applies that rule). Values are never logged or put in error messages.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What a profile sets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url`.
    pub endpoint_url: Option<String>,
}

impl std::fmt::Debug for Profile {
    // Secrets stay out of debug output and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field(
                "access_key_id",
                &self.access_key_id.as_ref().map(|_| "<set>"),
            )
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<set>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<set>"),
            )
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}

fn env_path(var: &str, home_relative: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| Path::new(&h).join(home_relative))
}

/// The profile named by `AWS_PROFILE` (or `AWS_DEFAULT_PROFILE`, else `default`) from the files
/// named by `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` (else `~/.aws/credentials` and
/// `~/.aws/config`).
///
/// `Ok(None)` when no file defines the `default` profile and no profile was asked for.
///
/// # Errors
/// [`Error::Credentials`] when a named profile is in neither file, or a file exists but cannot be
/// read.
pub fn from_env_and_files() -> Result<Option<Profile>> {
    let asked = std::env::var("AWS_PROFILE")
        .ok()
        .or_else(|| std::env::var("AWS_DEFAULT_PROFILE").ok())
        .filter(|p| !p.is_empty());
    let name = asked.clone().unwrap_or_else(|| "default".to_string());
    let credentials = env_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let config = env_path("AWS_CONFIG_FILE", ".aws/config");
    let read = |p: &Option<PathBuf>| -> Result<Option<String>> {
        match p {
            Some(p) if p.is_file() => {
                std::fs::read_to_string(p)
                    .map(Some)
                    .map_err(|e| Error::Credentials {
                        location: p.display().to_string(),
                        reason: format!("cannot read the AWS configuration file: {e}"),
                    })
            }
            _ => Ok(None),
        }
    };
    let cred_text = read(&credentials)?;
    let conf_text = read(&config)?;
    let profile = resolve(&name, cred_text.as_deref(), conf_text.as_deref());
    match (profile, asked) {
        (Some(p), _) => Ok(Some(p)),
        (None, None) => Ok(None),
        (None, Some(name)) => Err(Error::Credentials {
            location: format!("AWS_PROFILE={name}"),
            reason: format!(
                "profile '{name}' is in neither {} nor {}",
                credentials.map_or("~/.aws/credentials".into(), |p| p.display().to_string()),
                config.map_or("~/.aws/config".into(), |p| p.display().to_string()),
            ),
        }),
    }
}

/// The profile `name` from the texts of the credentials and config files.
#[must_use]
pub fn resolve(name: &str, credentials: Option<&str>, config: Option<&str>) -> Option<Profile> {
    let mut profile = Profile {
        name: name.to_string(),
        ..Profile::default()
    };
    let config_section = if name == "default" {
        "default".to_string()
    } else {
        format!("profile {name}")
    };
    let mut found = false;
    // Config first, credentials second: later assignments win.
    for (text, section) in [(config, config_section.as_str()), (credentials, name)] {
        let Some(text) = text else { continue };
        for (key, value) in section_entries(text, section, &mut found) {
            let slot = match key.as_str() {
                "aws_access_key_id" => &mut profile.access_key_id,
                "aws_secret_access_key" => &mut profile.secret_access_key,
                "aws_session_token" => &mut profile.session_token,
                "region" => &mut profile.region,
                "endpoint_url" => &mut profile.endpoint_url,
                _ => continue,
            };
            *slot = Some(value);
        }
    }
    found.then_some(profile)
}

/// The `key = value` lines of one `[section]` (top-level keys only; nested blocks such as
/// `s3 =` followed by indented lines are skipped).
fn section_entries(text: &str, section: &str, found: &mut bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let indented = line.starts_with([' ', '\t']);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let head = head.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = head == section;
            *found |= inside;
            continue;
        }
        if !inside || indented {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            if !v.is_empty() {
                out.push((k.trim().to_ascii_lowercase(), v.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secretdefault

[work]
aws_access_key_id=AKIDWORK
aws_secret_access_key=secretwork
aws_session_token = tokenwork
";
    const CONFIG: &str = "\
[default]
region = eu-west-1

# a comment
[profile work]
region = us-west-2
endpoint_url = http://127.0.0.1:9000
s3 =
    max_concurrent_requests = 20
aws_access_key_id = AKIDFROMCONFIG

[profile onlyconfig]
aws_access_key_id = AKIDCONF
aws_secret_access_key = secretconf
";

    #[test]
    fn reads_profiles_from_both_files() {
        let d = resolve("default", Some(CREDENTIALS), Some(CONFIG)).unwrap();
        assert_eq!(d.access_key_id.as_deref(), Some("AKIDDEFAULT"));
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        assert_eq!(d.session_token, None);

        let w = resolve("work", Some(CREDENTIALS), Some(CONFIG)).unwrap();
        // The credentials file wins over the config file.
        assert_eq!(w.access_key_id.as_deref(), Some("AKIDWORK"));
        assert_eq!(w.secret_access_key.as_deref(), Some("secretwork"));
        assert_eq!(w.session_token.as_deref(), Some("tokenwork"));
        assert_eq!(w.region.as_deref(), Some("us-west-2"));
        assert_eq!(w.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));

        let c = resolve("onlyconfig", Some(CREDENTIALS), Some(CONFIG)).unwrap();
        assert_eq!(c.secret_access_key.as_deref(), Some("secretconf"));

        assert!(resolve("absent", Some(CREDENTIALS), Some(CONFIG)).is_none());
        assert!(resolve("default", None, None).is_none());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let w = resolve("work", Some(CREDENTIALS), Some(CONFIG)).unwrap();
        let text = format!("{w:?}");
        assert!(
            !text.contains("secretwork") && !text.contains("tokenwork"),
            "{text}"
        );
        assert!(!text.contains("AKIDWORK"), "{text}");
    }
}
