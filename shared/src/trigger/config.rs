//! `s3-trigger`'s configuration: its routes (inline in `FERRY_ROUTES` or in the object
//! `FERRY_ROUTES_URL` names), the path cap, the lane table and the runner. Here rather than in
//! [`crate::config`] because reading routes is the trigger's own business: configuration
//! holds values and never reaches up into the parts that use them.

use crate::config::{
    ConfigError, ENV_ROUTES, ENV_ROUTES_URL, FromEnvironment, LaneConfig, limits, read, required,
    runner,
};
use crate::domain::job::Limits;
use crate::domain::validate::MAX_PATH_CHARS;
use crate::ids::{S3Url, StateMachineArn};
use crate::trigger::routes::Routes;

/// `s3-trigger`.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerConfig {
    pub routes: Routes,
    pub limits: Limits,
    pub lanes: LaneConfig,
    pub runner: StateMachineArn,
}

/// Invalid or overlapping routes stop the function at cold start with every problem listed.
/// This reads inline routes (`FERRY_ROUTES`); `s3-trigger` reads an object's
/// (`FERRY_ROUTES_URL`) first, then [`TriggerConfig::with_routes`].
impl FromEnvironment for TriggerConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<TriggerConfig, ConfigError> {
        let text = required(
            read(&lookup, ENV_ROUTES),
            ENV_ROUTES,
            "a JSON array of routes (or FERRY_ROUTES_URL, an s3:// object holding them)",
        )?;
        TriggerConfig::with_routes(&lookup, &text, ENV_ROUTES)
    }
}

impl TriggerConfig {
    /// The object holding the routes, when `FERRY_ROUTES` is unset and `FERRY_ROUTES_URL` set
    /// (inline routes win: a small deployment needs no object).
    pub fn routes_object(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<S3Url>, ConfigError> {
        if read(lookup, ENV_ROUTES).is_some() {
            return Ok(None);
        }
        read(lookup, ENV_ROUTES_URL)
            .map(|url| {
                S3Url::parse(&url, MAX_PATH_CHARS)
                    .ok()
                    .filter(|object| !object.key().is_empty() && !object.key().ends_with('/'))
                    .ok_or_else(|| ConfigError {
                        variable: ENV_ROUTES_URL,
                        problem: format!(
                            "must be an s3://bucket/key URL of an object, got {:?}",
                            crate::domain::text::truncate_chars(&url, 200)
                        ),
                    })
            })
            .transpose()
    }

    /// The configuration, with the routes `text` (read from `variable`'s place), validated as
    /// inline routes are.
    pub fn with_routes(
        lookup: &impl Fn(&str) -> Option<String>,
        text: &str,
        variable: &'static str,
    ) -> Result<TriggerConfig, ConfigError> {
        let limits = limits(lookup)?;
        let routes = Routes::from_json(text, &limits).map_err(|e| ConfigError {
            variable,
            problem: e.to_string(),
        })?;
        Ok(TriggerConfig {
            routes,
            limits,
            lanes: LaneConfig::from_lookup(lookup)?,
            runner: runner(lookup)?,
        })
    }
}
