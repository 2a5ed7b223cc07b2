//! Who may do what through Ferry's verified entry (the `submit` function's URL, `AuthType:
//! AWS_IAM`): the **access policy**. IAM decides who may call the URL at all; this policy
//! decides which jobs a verified caller may submit and which it may cancel. It is pure: the
//! caller's principal ARN, the action, the job's kind and lane in, a rule or a refusal out.
//!
//! ```json
//! {"rules": [
//!   {"name": "hpc-exports",
//!    "principals": ["arn:aws:sts::111122223333:assumed-role/hpc-users/*"],
//!    "actions": ["submit", "cancel"],
//!    "kinds": ["fsx_export", "fsx_import"],
//!    "lanes": ["fsx:fs-0123456789abcdef0"]},
//!   {"name": "operators",
//!    "principals": ["arn:aws:iam::111122223333:role/ferry-operators"],
//!    "actions": ["submit", "cancel", "cancel-others"]}
//! ]}
//! ```
//!
//! - A request is allowed when one rule names the caller (`principals`), the action
//!   (`actions`), the job's kind (`kinds`, every kind when left out) and its lane (`lanes`,
//!   every lane when left out). Nothing is allowed otherwise: no rule, no access.
//! - Patterns match the whole text, `*` any run of characters and `?` one, case-sensitive: as
//!   IAM's `ArnLike` ("IAM JSON policy elements: Condition operators").
//! - `cancel` cancels the jobs the caller submitted through the URL; `cancel-others` any job
//!   of the rule's kinds and lanes (schedules', uploads', other people's).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

use super::job::JobKind;
use super::parse;
use crate::error::{FieldError, FieldErrors};

/// What a verified caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Submit,
    /// Cancel a job this caller submitted.
    Cancel,
    /// Cancel any job.
    CancelOthers,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Submit => "submit",
            Action::Cancel => "cancel",
            Action::CancelOthers => "cancel-others",
        }
    }
}

/// The most rules a policy holds: it travels in one environment variable of 4 KB at most
/// (Lambda quotas), so a few dozen rules is already more than fits.
pub const MAX_RULES: usize = 100;

/// The longest policy text: the template's `AccessPolicy` `MaxLength`, which keeps `submit`'s
/// environment variables within Lambda's 4 KB (`scripts/check-template.py` adds them up).
pub const MAX_POLICY_CHARS: usize = 3000;

/// The longest principal ARN, in bytes: IAM ARNs are at most 2,048 characters of ASCII ("IAM
/// and AWS STS quotas"). Counted in bytes, a verified caller's job source (`submit by <ARN>`,
/// 2,058 bytes at most) stays under a schedule's longest (`schedule ` and 1,024 characters,
/// 4,105 bytes), which the limits tests carry through records, runs and reports.
pub const MAX_PRINCIPAL_CHARS: usize = 2048;

/// A principal ARN that AWS verified (the function URL's `requestContext.authorizer.iam.
/// userArn`): `arn:…`, at most [`MAX_PRINCIPAL_CHARS`], no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    pub fn parse(arn: &str) -> Result<Principal, FieldErrors> {
        let ok = arn.starts_with("arn:")
            && arn.len() <= MAX_PRINCIPAL_CHARS
            && !arn.chars().any(char::is_control);
        if ok {
            Ok(Principal(arn.to_owned()))
        } else {
            Err(FieldErrors::one(
                "requestContext.authorizer.iam.userArn",
                format!("must be an ARN (arn:…) of at most {MAX_PRINCIPAL_CHARS} bytes"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One request to check: who, what, on which kind of job in which lane.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    pub kind: JobKind,
    /// The lane's id as Ferry prints it (`fsx:fs-…`, `datasync:arn:…`, `datasync-task:…`).
    pub lane: &'a str,
}

/// A request no rule allows: the message says who asked what, and what the caller's own
/// rules lack (or that no rule names the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a caller is, as Lambda verified it, and what the policy grants it: what `submit`'s URL
/// answers `{"whoami": {}}` (`ferry whoami`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whoami {
    pub caller: String,
    /// Whether the deployment has an access policy at all (without one, nothing is allowed).
    pub policy: bool,
    /// What each rule naming the caller grants it ([`Policy::grants`]).
    pub grants: Vec<String>,
}

/// A parsed, checked access policy (see the module's summary).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    name: String,
    principals: Vec<WildMatch>,
    actions: BTreeSet<Action>,
    /// Empty: every kind.
    kinds: BTreeSet<JobKind>,
    /// Empty: every lane.
    lanes: Vec<WildMatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySpec {
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: String,
    principals: Vec<String>,
    actions: Vec<Action>,
    #[serde(default)]
    kinds: Vec<JobKind>,
    #[serde(default)]
    lanes: Vec<String>,
}

impl Policy {
    /// Parses a policy, naming every field that breaks a rule (`rules[1].principals[0]: …`).
    pub fn parse(text: &str) -> Result<Policy, FieldErrors> {
        let chars = text.chars().count();
        if chars > MAX_POLICY_CHARS {
            return Err(FieldErrors::one(
                "input",
                format!(
                    "is {chars} characters; a policy is at most {MAX_POLICY_CHARS} (the AccessPolicy parameter, within Lambda's 4 KB of environment variables)"
                ),
            ));
        }
        let spec: PolicySpec = parse::from_str(text, "")?;
        let mut errors = Vec::new();
        let mut fail = |field: String, problem: &str| {
            errors.push(FieldError {
                field,
                problem: problem.to_owned(),
            })
        };
        if spec.rules.is_empty() || spec.rules.len() > MAX_RULES {
            fail("rules".into(), &format!("must hold 1-{MAX_RULES} rules"));
        }
        let mut names = BTreeSet::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            let at = |field: &str| format!("rules[{i}].{field}");
            let name_ok = (1..=64).contains(&rule.name.chars().count())
                && rule
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !name_ok {
                fail(at("name"), "must be 1-64 letters, digits, '-', '_' or '.'");
            } else if !names.insert(rule.name.as_str()) {
                fail(
                    at("name"),
                    "is the name of an earlier rule; names are unique",
                );
            }
            if rule.principals.is_empty() {
                fail(
                    at("principals"),
                    "must name at least one principal ARN pattern",
                );
            }
            for (j, pattern) in rule.principals.iter().enumerate() {
                if !pattern.starts_with("arn:") || pattern.chars().any(char::is_control) {
                    fail(
                        at(&format!("principals[{j}]")),
                        "must be an ARN pattern (arn:…, with * and ? as wildcards)",
                    );
                }
            }
            if rule.actions.is_empty() {
                fail(at("actions"), "must name submit, cancel or cancel-others");
            }
            for (j, pattern) in rule.lanes.iter().enumerate() {
                if pattern.is_empty() || pattern.chars().any(char::is_control) {
                    fail(
                        at(&format!("lanes[{j}]")),
                        "must be a lane pattern (fsx:fs-…, datasync:arn:…, datasync-task:…; * and ? as wildcards)",
                    );
                }
            }
        }
        if !errors.is_empty() {
            return Err(FieldErrors { errors });
        }
        let rules = spec.rules.into_iter().map(Rule::from).collect();
        Ok(Policy { rules })
    }

    /// The rules' names, in order.
    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(|rule| rule.name.as_str()).collect()
    }

    /// What each rule naming `principal` grants it (`'hpc' allows submit, cancel of …`).
    pub fn grants(&self, principal: &Principal) -> Vec<String> {
        self.rules
            .iter()
            .filter(|rule| rule.names(principal))
            .map(Rule::describe)
            .collect()
    }

    /// The name of the first rule that allows `request`, or why none does.
    pub fn check(&self, request: Request<'_>) -> Result<&str, Denied> {
        if let Some(rule) = self.rules.iter().find(|rule| rule.allows(request)) {
            return Ok(&rule.name);
        }
        let asked = format!(
            "{} may not {} {} jobs on lane {}",
            request.principal,
            request.action.as_str(),
            request.kind.as_str(),
            request.lane
        );
        let described = self.grants(request.principal);
        if described.is_empty() {
            return Err(Denied(format!(
                "{asked}: no rule of the access policy names this principal"
            )));
        }
        Err(Denied(format!(
            "{asked}: no rule allows it; this principal's rules: {}",
            described.join("; ")
        )))
    }
}

impl From<RuleSpec> for Rule {
    fn from(spec: RuleSpec) -> Rule {
        Rule {
            name: spec.name,
            principals: spec.principals.iter().map(|p| WildMatch::new(p)).collect(),
            actions: spec.actions.into_iter().collect(),
            kinds: spec.kinds.into_iter().collect(),
            lanes: spec.lanes.iter().map(|p| WildMatch::new(p)).collect(),
        }
    }
}

impl Rule {
    fn names(&self, principal: &Principal) -> bool {
        self.principals
            .iter()
            .any(|p| p.matches(principal.as_str()))
    }

    fn allows(&self, request: Request<'_>) -> bool {
        self.names(request.principal)
            && self.actions.contains(&request.action)
            && (self.kinds.is_empty() || self.kinds.contains(&request.kind))
            && (self.lanes.is_empty() || self.lanes.iter().any(|p| p.matches(request.lane)))
    }

    /// `'hpc' allows submit, cancel of fsx_export on fsx:fs-1`: what the rule grants.
    fn describe(&self) -> String {
        let actions: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        let kinds = if self.kinds.is_empty() {
            "every kind".to_owned()
        } else {
            let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
            kinds.join(", ")
        };
        let lanes = if self.lanes.is_empty() {
            "every lane".to_owned()
        } else {
            let lanes: Vec<String> = self.lanes.iter().map(ToString::to_string).collect();
            lanes.join(", ")
        };
        format!(
            "'{}' allows {} of {kinds} on {lanes}",
            self.name,
            actions.join(", ")
        )
    }
}

#[cfg(test)]
mod tests;
