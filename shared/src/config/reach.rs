//! What Ferry may act on: the file systems and DataSync tasks a deployment names (the
//! template's `FileSystemIds` and `DataSyncTaskArns`). **Closed by default**: a deployment that
//! names none starts nothing of that service, and says which parameter to set; `*` opts in to
//! every resource of the account. `start-task` checks it before it starts anything.
//!
//! The function is told the mode only (`FERRY_FILE_SYSTEMS`, `FERRY_DATASYNC_TASKS`: `none`,
//! `listed` or `every`), not the lists: a CloudFormation list parameter's length cannot be
//! bounded ("MaxLength ... for String types"), so the lists could pass Lambda's 4 KB of
//! environment variables. IAM grants exactly the listed resources, so a job on another one is
//! refused by the service (`AccessDeniedException`, reported "could not start").
//!
//! DataSync tasks a job defines (its `task` block, `ManageDataSyncTasks`) are not in the list:
//! their ARNs are not known before Ferry creates them.

use crate::domain::job::{DataSyncTarget, Service, ValidJob};
use crate::error::ConfigError;

/// `start-task`'s file systems: `none`, `listed` or `every`.
pub const ENV_FILE_SYSTEMS: &str = "FERRY_FILE_SYSTEMS";
/// `start-task`'s DataSync tasks: `none`, `listed` or `every`.
pub const ENV_DATASYNC_TASKS: &str = "FERRY_DATASYNC_TASKS";

/// Which resources of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// None (the template's list is empty): closed.
    None,
    /// Those the template lists (IAM grants exactly them).
    Listed,
    /// `*`: every one in the account and region.
    Every,
}

/// The file systems and DataSync tasks Ferry may start work on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    pub file_systems: Scope,
    pub datasync_tasks: Scope,
}

impl Default for Reach {
    /// Every resource: what tests and direct library use start from. A deployment reads its
    /// reach with [`Reach::from_lookup`], where nothing set means nothing.
    fn default() -> Reach {
        Reach {
            file_systems: Scope::Every,
            datasync_tasks: Scope::Every,
        }
    }
}

impl Reach {
    /// The reach `lookup` names: a variable unset or blank is `none` (closed).
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Reach, ConfigError> {
        let scope = |variable: &'static str| match lookup(variable).unwrap_or_default().trim() {
            "" | "none" => Ok(Scope::None),
            "listed" => Ok(Scope::Listed),
            "every" => Ok(Scope::Every),
            other => Err(ConfigError {
                variable,
                problem: format!("must be none, listed or every; got {other:?}"),
            }),
        };
        Ok(Reach {
            file_systems: scope(ENV_FILE_SYSTEMS)?,
            datasync_tasks: scope(ENV_DATASYNC_TASKS)?,
        })
    }

    /// Whether `job` may act on its resource: not when the deployment names none of its kind
    /// (the error says which parameter to set).
    pub fn check(&self, job: &ValidJob) -> Result<(), ConfigError> {
        let (scope, variable, parameter, what) = match job.service() {
            Service::Fsx(_) => (
                self.file_systems,
                ENV_FILE_SYSTEMS,
                "FileSystemIds",
                "file system",
            ),
            Service::DataSync(ds) => match &ds.target {
                DataSyncTarget::Task(_) => (
                    self.datasync_tasks,
                    ENV_DATASYNC_TASKS,
                    "DataSyncTaskArns",
                    "DataSync task",
                ),
                DataSyncTarget::Definition(_) => return Ok(()),
            },
        };
        if scope != Scope::None {
            return Ok(());
        }
        Err(ConfigError {
            variable,
            problem: format!(
                "this deployment names no {what}s, so Ferry starts nothing on one (closed by default): list the {what}s in the {parameter} parameter, or give * for every {what} of the account"
            ),
        })
    }
}
