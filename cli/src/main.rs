//! `ferry`: what people use to see, submit and cancel what Ferry does.
//!
//! Offline commands (`validate`) apply the same rules as the functions. The others read and
//! write the lane table and start runners directly, with the caller's own AWS credentials; the
//! deployment is found through flags or the variables the functions read themselves
//! (`FERRY_LANE_TABLE`, `FERRY_STATE_MACHINE_ARN`), and `AWS_ENDPOINT_URL` points every call at
//! the local emulator.
//!
//! Exit codes: 0 done (for `submit --wait`, the job succeeded); 1 invalid input, a failed job
//! or an AWS error, always with one line saying which; 2 a usage error (clap's).

mod cancel;
mod deploy;
mod drain;
mod history;
mod init;
mod links;
mod notifications;
mod plan;
mod retry;
mod runs;
mod status;
mod submit;
mod tasks;
mod text;
mod url;
mod validate;
mod watch;
mod whoami;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "See, submit and cancel Ferry's jobs",
    long_about = "See, submit and cancel Ferry's jobs.\n\nEvery command but `validate` and \
                  `plan` (offline, unless asked to read a stack or associations) talks to a \
                  deployment: its lane table (--table or \
                  FERRY_LANE_TABLE) and, to start work, its runner state machine (--runner or FERRY_STATE_MACHINE_ARN). Credentials, \
                  region and endpoints are the AWS CLI's (AWS_PROFILE, AWS_REGION, \
                  AWS_ENDPOINT_URL, ...)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check job specs, access policies and routes files offline, with the functions' own rules.
    ///
    /// A file holding a JSON object is a job spec (what `submit` sends), a submit event
    /// (`{"job": ...}`) or an access policy (`{"rules": ...}`); one holding an array is a
    /// routes file (FERRY_ROUTES). Every broken rule is printed with its field; exit 1
    /// when any file is invalid.
    Validate {
        /// Job spec or routes files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also check routes against this stack: a route whose bucket is not among the
        /// stack's DataBucketNames (its DataBucketName parameter) never fires
        #[arg(long, value_name = "NAME")]
        stack: Option<String>,
        /// Also read each FSx job's file system links to S3 (its data repository
        /// associations, with your credentials) and refuse a job whose paths or report lie
        /// outside them, or that exports where FSx exports automatically
        #[arg(long)]
        associations: bool,
    },
    /// What s3-trigger would queue for some uploads, and the runs that would follow (offline;
    /// with --associations, routes that do not fit their file systems' links hold uploads back).
    Plan(plan::PlanArgs),
    /// Queue a job on its lane and start the lane's runner if none runs.
    Submit(submit::SubmitArgs),
    /// Every lane (or one): the run in flight, its progress, and the jobs waiting.
    Status(status::StatusArgs),
    /// Cancel a job: a pending one never starts (its report goes out at once); a running one's task is cancelled at the
    /// runner's next status check, and the report names who asked and why.
    Cancel(cancel::CancelArgs),
    /// Rerun a run that failed: its whole job, or with --failed-only just the files its task's
    /// failure report names (collapsed within the path cap), as a new job on its lane whose
    /// report names the run it reruns.
    Retry(retry::RetryArgs),
    /// Follow a job's or run's task live until it ends, then print its report.
    Watch(watch::WatchArgs),
    /// Finished runs: outcome, duration, files, bytes.
    History(history::HistoryArgs),
    /// The service's own tasks on a file system or DataSync task, Ferry's or not.
    Tasks(tasks::TasksArgs),
    /// Before a teardown: export a file system through its lane, wait until its lane has no
    /// work left; exit 0 only when every file was exported (1: failed, 3: timed out).
    Drain(drain::DrainArgs),
    /// The S3 event notification configuration a bucket needs for the routes: one filtered
    /// queue configuration per route, merged with what the bucket already has.
    Notifications(notifications::NotificationsArgs),
    /// Who you are to Ferry (as submit's function URL verifies you) and what the access
    /// policy lets you submit and cancel.
    Whoami(whoami::WhoamiArgs),
    /// Read a file system's data repository associations and write the routes and export
    /// schedules Ferry should run there, skipping what FSx imports and exports itself.
    Init(init::InitArgs),
}

/// Output options shared by the commands that print records.
#[derive(Debug, Clone, Copy, Args)]
struct OutputArgs {
    /// Print JSON (one document) instead of text, for scripts.
    #[arg(long)]
    json: bool,
}

/// What a command failed with: one line for the user, and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
        }
    }
}

impl From<ferry::FerryError> for Failure {
    fn from(error: ferry::FerryError) -> Failure {
        Failure::new(text::error_line(&error))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ferry: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("ferry: {}", failure.message);
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Validate {
            files,
            stack,
            associations,
        } => {
            let allowed = match stack.as_deref().filter(|s| !s.is_empty()) {
                Some(stack) => {
                    let outputs = [notifications::OUTPUT_BUCKETS];
                    deploy::stack_outputs(stack, &outputs).await?.pop()
                }
                None => None,
            };
            Ok(validate::run(&files, allowed.as_deref(), associations).await)
        }
        Command::Plan(args) => plan::run(&args).await,
        Command::Submit(args) => submit::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Cancel(args) => cancel::run(args).await,
        Command::Watch(args) => watch::run(args).await,
        Command::Retry(args) => retry::run(args).await,
        Command::History(args) => history::run(args).await,
        Command::Tasks(args) => tasks::run(args).await,
        Command::Init(args) => init::run(args).await,
        Command::Notifications(args) => notifications::run(&args).await,
        Command::Drain(args) => drain::run(args).await,
        Command::Whoami(args) => whoami::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
