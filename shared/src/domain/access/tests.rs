use super::*;

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/hpc-users/alice";
const OPS: &str = "arn:aws:iam::111122223333:role/ferry-operators";

fn policy() -> Policy {
    Policy::parse(policy_text()).unwrap_or_else(|e| panic!("{e}"))
}

fn policy_text() -> &'static str {
    r#"{"rules": [
          {"name": "hpc-exports",
           "principals": ["arn:aws:sts::111122223333:assumed-role/hpc-users/*"],
           "actions": ["submit", "cancel"],
           "kinds": ["fsx_export", "fsx_import"],
           "lanes": ["fsx:fs-0123456789abcdef?"]},
          {"name": "operators",
           "principals": ["arn:aws:iam::111122223333:role/ferry-operators"],
           "actions": ["submit", "cancel", "cancel-others"]}
        ]}"#
}

fn principal(arn: &str) -> Principal {
    Principal::parse(arn).unwrap_or_else(|e| panic!("{e}"))
}

fn check(who: &str, action: Action, kind: JobKind, lane: &str) -> Result<String, String> {
    let policy = policy();
    let who = principal(who);
    policy
        .check(Request {
            principal: &who,
            action,
            kind,
            lane,
        })
        .map(str::to_owned)
        .map_err(|d| d.0)
}

#[test]
fn a_rule_allows_its_principals_actions_kinds_and_lanes() {
    let lane = "fsx:fs-0123456789abcdef0";
    assert_eq!(
        check(ALICE, Action::Submit, JobKind::FsxExport, lane).as_deref(),
        Ok("hpc-exports")
    );
    assert_eq!(
        check(ALICE, Action::Cancel, JobKind::FsxImport, lane).as_deref(),
        Ok("hpc-exports")
    );
    // Left-out kinds and lanes mean every one.
    let ds = "datasync:arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718";
    assert_eq!(
        check(OPS, Action::CancelOthers, JobKind::Datasync, ds).as_deref(),
        Ok("operators")
    );
}

#[test]
fn a_request_outside_every_rule_is_denied_naming_what_the_callers_rules_lack() {
    let lane = "fsx:fs-0123456789abcdef0";
    let denied = check(ALICE, Action::Submit, JobKind::FsxRelease, lane).unwrap_err();
    assert!(
        denied.starts_with(&format!(
            "{ALICE} may not submit fsx_release jobs on lane {lane}"
        )),
        "{denied}"
    );
    assert!(
        denied.contains("'hpc-exports' allows submit, cancel of fsx_export, fsx_import on fsx:fs-0123456789abcdef?"),
        "{denied}"
    );
    // Another lane (the pattern's `?` is one character), another action.
    assert!(
        check(
            ALICE,
            Action::Submit,
            JobKind::FsxExport,
            "fsx:fs-0123456789abcdef01"
        )
        .is_err()
    );
    assert!(check(ALICE, Action::CancelOthers, JobKind::FsxExport, lane).is_err());
}

#[test]
fn a_principal_no_rule_names_is_told_so() {
    let bob = "arn:aws:sts::444455556666:assumed-role/hpc-users/bob";
    let denied = check(bob, Action::Submit, JobKind::FsxExport, "fsx:fs-1").unwrap_err();
    assert!(
        denied.ends_with("no rule of the access policy names this principal"),
        "{denied}"
    );
    // Matching is case-sensitive and whole: a prefix is not enough.
    let upper = "arn:aws:iam::111122223333:role/FERRY-OPERATORS";
    assert!(check(upper, Action::Submit, JobKind::FsxExport, "fsx:fs-1").is_err());
    let longer = "arn:aws:iam::111122223333:role/ferry-operators-2";
    assert!(check(longer, Action::Submit, JobKind::FsxExport, "fsx:fs-1").is_err());
}

#[test]
fn every_broken_field_of_a_policy_is_named() {
    let errors = Policy::parse(
        r#"{"rules": [
          {"name": "a b", "principals": [], "actions": []},
          {"name": "x", "principals": ["alice"], "actions": ["submit"], "lanes": [""]},
          {"name": "x", "principals": ["arn:*"], "actions": ["submit"]}
        ]}"#,
    )
    .unwrap_err()
    .to_string();
    for expected in [
        "rules[0].name: must be 1-64 letters",
        "rules[0].principals: must name at least one",
        "rules[0].actions: must name submit, cancel or cancel-others",
        "rules[1].principals[0]: must be an ARN pattern",
        "rules[1].lanes[0]: must be a lane pattern",
        "rules[2].name: is the name of an earlier rule",
    ] {
        assert!(errors.contains(expected), "{expected} not in {errors}");
    }
    let unknown = Policy::parse(
        r#"{"rules": [{"name": "a", "principals": ["arn:*"], "actions": ["delete"]}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("rules[0].actions[0]") && unknown.contains("delete"),
        "{unknown}"
    );
    let kind = Policy::parse(r#"{"rules": [{"name": "a", "principals": ["arn:*"], "actions": ["submit"], "kinds": ["fsx_erase"]}]}"#)
        .unwrap_err()
        .to_string();
    assert!(kind.contains("rules[0].kinds[0]"), "{kind}");
    let extra = Policy::parse(r#"{"rules": [{"name": "a", "principals": ["arn:*"], "actions": ["submit"], "effect": "Deny"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(extra.contains("effect"), "{extra}");
    assert!(
        Policy::parse(r#"{"rules": []}"#)
            .unwrap_err()
            .to_string()
            .contains("rules: must hold 1-100")
    );
}

#[test]
fn a_principal_is_an_arn_within_iams_length() {
    assert!(Principal::parse(ALICE).is_ok());
    assert!(Principal::parse(&format!("arn:{}", "a".repeat(MAX_PRINCIPAL_CHARS - 4))).is_ok());
    for bad in [
        String::new(),
        "alice".to_owned(),
        format!("arn:{}", "a".repeat(MAX_PRINCIPAL_CHARS)),
        // Counted in bytes: 600 four-byte characters are 2,404 bytes.
        format!("arn:{}", "\u{1F600}".repeat(600)),
        "arn:aws:iam::1:user/a\nb".to_owned(),
    ] {
        let error = Principal::parse(&bad).unwrap_err().to_string();
        assert!(
            error.contains("requestContext.authorizer.iam.userArn"),
            "{error}"
        );
    }
}
