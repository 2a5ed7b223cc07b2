//! Configuration read once at cold start from the environment (names match `template.yaml`).

use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::job::Limits;
use crate::poll::{self, PollSettings};
use crate::validate::{API_MAX_PATHS, DEFAULT_MAX_PATHS};

/// Cap on FSx `Paths` per task (default 32, at most the API's 100).
pub const ENV_MAX_PATHS: &str = "FERRY_MAX_PATHS";
/// Default shortest polling interval in seconds (default 15).
pub const ENV_POLL_MIN: &str = "FERRY_POLL_MIN_SECONDS";
/// Default longest polling interval in seconds (default 600).
pub const ENV_POLL_MAX: &str = "FERRY_POLL_MAX_SECONDS";

/// A variable is set but unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// The task functions' configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    pub limits: Limits,
    /// Polling bounds for jobs that set none.
    pub poll: PollSettings,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (tests pass a map instead of the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let max_paths = read(&lookup, ENV_MAX_PATHS, 1..=API_MAX_PATHS, DEFAULT_MAX_PATHS)?;
        let min_seconds = read(
            &lookup,
            ENV_POLL_MIN,
            poll::ALLOWED_SECONDS,
            poll::DEFAULT_MIN_SECONDS,
        )?;
        let max_seconds = read(
            &lookup,
            ENV_POLL_MAX,
            poll::ALLOWED_SECONDS,
            poll::DEFAULT_MAX_SECONDS,
        )?;
        if min_seconds > max_seconds {
            return Err(ConfigError {
                variable: ENV_POLL_MIN,
                problem: format!("{min_seconds} exceeds {ENV_POLL_MAX} ({max_seconds})"),
            });
        }
        Ok(Config {
            limits: Limits { max_paths },
            poll: PollSettings {
                min_seconds,
                max_seconds,
            },
        })
    }
}

fn read<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    range: RangeInclusive<T>,
    default: T,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = lookup(variable).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    let value: T = raw.trim().parse().map_err(|_| ConfigError {
        variable,
        problem: format!("expected a whole number, got {raw:?}"),
    })?;
    if !range.contains(&value) {
        return Err(ConfigError {
            variable,
            problem: format!(
                "must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_unset_or_blank() {
        assert_eq!(config(&[]).unwrap(), Config::default());
        assert_eq!(config(&[(ENV_MAX_PATHS, " ")]).unwrap(), Config::default());
        assert_eq!(Config::default().limits.max_paths, 32);
    }

    #[test]
    fn reads_values_within_bounds() {
        let c = config(&[
            (ENV_MAX_PATHS, "100"),
            (ENV_POLL_MIN, "30"),
            (ENV_POLL_MAX, "900"),
        ])
        .unwrap();
        assert_eq!(c.limits.max_paths, 100);
        assert_eq!(
            c.poll,
            PollSettings {
                min_seconds: 30,
                max_seconds: 900
            }
        );
    }

    #[test]
    fn names_the_variable_at_fault() {
        let e = config(&[(ENV_MAX_PATHS, "101")]).unwrap_err();
        assert_eq!(e.variable, ENV_MAX_PATHS);
        assert!(e.to_string().contains("between 1 and 100"), "{e}");
        let e = config(&[(ENV_POLL_MAX, "ten")]).unwrap_err();
        assert_eq!(e.variable, ENV_POLL_MAX);
        let e = config(&[(ENV_POLL_MIN, "700")]).unwrap_err();
        assert_eq!(e.variable, ENV_POLL_MIN);
    }
}
