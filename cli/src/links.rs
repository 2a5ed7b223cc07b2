//! Preflight against a file system's links to S3 (`ferry::domain::links`): the links are read
//! with the caller's credentials (`fsx:DescribeFileSystems`, then
//! `fsx:DescribeDataRepositoryAssociations`), and a job whose task would fail on them is
//! refused before it is queued, naming the path, the rule and the links. A read that fails
//! lets the job through with a warning: the task would say the same thing later.

use ferry::aws::AwsTasks;
use ferry::domain::job::{Service, ValidJob};
use ferry::domain::links::problems;
use ferry::ports::ReadLinks;

/// What the preflight found.
#[derive(Debug)]
pub enum Verdict {
    /// Not an FSx job, or one that fits its file system's links.
    Fits,
    /// What would make the task fail.
    Refused(Vec<String>),
    /// The links could not be read: why.
    Unknown(String),
}

pub async fn check(tasks: &AwsTasks, job: &ValidJob) -> Verdict {
    let Service::Fsx(fsx) = job.service() else {
        return Verdict::Fits;
    };
    match tasks.read_links(&fsx.file_system_id).await {
        Ok(None) => Verdict::Fits,
        Ok(Some(links)) => {
            let found: Vec<String> = problems(job, &links)
                .iter()
                .map(ToString::to_string)
                .collect();
            if found.is_empty() {
                Verdict::Fits
            } else {
                Verdict::Refused(found)
            }
        }
        Err(e) => Verdict::Unknown(format!(
            "the data repository links of {} could not be read, so the job is not checked against them: {e}",
            fsx.file_system_id
        )),
    }
}
