//! Routing rules: which uploads start which job.
//!
//! `FERRY_ROUTES` holds a JSON array of routes (`docs/routes.md`). Each names a bucket, a key
//! prefix and optional suffixes, and a job template (a job spec without the per-upload fields:
//! `paths`, `includes`, `manifest`). An object matches at most one route: overlapping routes
//! are rejected when the function starts, so the same upload can never start two jobs.

use serde::Deserialize;

use crate::domain::job::{JobKind, JobSpec, Limits, ManifestSpec, ValidJob};
use crate::domain::parse;
use crate::error::{FieldError, FieldErrors};
use crate::ids::{BucketName, RoleArn};

/// One routing rule, as configured.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// 1-40 of `[A-Za-z0-9_-]`: used in execution names.
    pub name: String,
    pub bucket: BucketName,
    /// Key prefix (string prefix, as in S3). For FSx export and release, empty or ending in `/`.
    #[serde(default)]
    pub prefix: String,
    /// Any of these key suffixes (e.g. `.h5`); empty means every key.
    #[serde(default)]
    pub suffixes: Vec<String>,
    /// The job to start; its per-upload fields are filled from the objects.
    pub job: JobSpec,
    /// FSx export/release: the file system directory (relative to its root) that holds the
    /// objects under `prefix`, i.e. the data repository association's file system path.
    /// Default: the prefix itself (repository linked at the file system root).
    pub file_system_path: Option<String>,
    /// DataSync: the key prefix the task's S3 source location points at (its subdirectory);
    /// filters and manifests are relative to it. Default: the bucket root.
    pub source_prefix: Option<String>,
    /// DataSync: where to write a manifest when a batch does not fit in an include filter
    /// (or has keys a filter cannot express).
    pub manifest: Option<ManifestTarget>,
}

/// Where DataSync manifests are written, and the role DataSync reads them with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestTarget {
    pub bucket: BucketName,
    #[serde(default)]
    pub prefix: String,
    pub bucket_access_role_arn: RoleArn,
}

impl Route {
    /// True when `key` in `bucket` belongs to this route.
    pub fn matches(&self, bucket: &str, key: &str) -> bool {
        self.bucket.as_str() == bucket
            && key.starts_with(&self.prefix)
            && (self.suffixes.is_empty() || self.suffixes.iter().any(|s| key.ends_with(s.as_str())))
    }

    /// The key prefix filters and manifests are relative to (DataSync).
    pub fn source_prefix(&self) -> &str {
        self.source_prefix.as_deref().unwrap_or("")
    }

    /// The file system directory of the route's prefix, without a trailing `/` (FSx).
    pub fn file_system_root(&self) -> &str {
        self.file_system_path
            .as_deref()
            .unwrap_or(&self.prefix)
            .trim_matches('/')
    }

    /// The prefix an upload job's paths may collapse within when runs merge, in the form of
    /// its paths: `s3://bucket/prefix` for imports, the file system directory (with its `/`)
    /// for export and release; for DataSync (includes are never collapsed) the source prefix.
    pub fn collapse_root(&self) -> String {
        match self.job.kind {
            JobKind::FsxImport => format!("s3://{}/{}", self.bucket, self.prefix),
            JobKind::Datasync => self.source_prefix().to_owned(),
            _ => match self.file_system_root() {
                "" => String::new(),
                root => format!("{root}/"),
            },
        }
    }

    /// The route's job for its whole prefix (its `paths` the collapse root), validated: what
    /// every job the route makes lies within, so what is checked against the file system's
    /// links before its uploads are queued. `None` when it does not validate.
    pub fn prefix_job(&self, limits: &Limits) -> Option<ValidJob> {
        let mut job = self.job.clone();
        match self.collapse_root().trim_end_matches('/') {
            "" => {}
            root => job.paths = vec![root.to_owned()],
        }
        job.validate(limits).ok()
    }

    /// The manifest spec DataSync gets for a manifest written at `key`. The bucket's ARN is in
    /// the partition of the role that reads it (a bucket and its reader share one).
    pub fn manifest_spec(&self, key: &str) -> Option<ManifestSpec> {
        self.manifest.as_ref().map(|m| {
            let partition = m.bucket_access_role_arn.partition();
            ManifestSpec {
                bucket_arn: format!("arn:{partition}:s3:::{}", m.bucket),
                object_path: key.to_owned(),
                bucket_access_role_arn: m.bucket_access_role_arn.to_string(),
                object_version_id: None,
            }
        })
    }
}

/// All routes, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Routes(Vec<Route>);

impl Routes {
    /// Parses and checks `FERRY_ROUTES`: every route valid, no two overlapping.
    pub fn from_json(text: &str, limits: &Limits) -> Result<Routes, FieldErrors> {
        Routes::new(parse::from_str(text, "routes")?, limits)
    }

    pub fn new(routes: Vec<Route>, limits: &Limits) -> Result<Routes, FieldErrors> {
        let mut errors = Vec::new();
        if routes.is_empty() {
            errors.push(FieldError {
                field: "routes".into(),
                problem: "at least one route is required".into(),
            });
        }
        for (i, route) in routes.iter().enumerate() {
            let mut check = RouteCheck {
                index: i,
                errors: &mut errors,
            };
            check.route(route, limits);
            for (j, earlier) in routes[..i].iter().enumerate() {
                if overlaps(earlier, route) {
                    check.fail(
                        "",
                        format!(
                            "route {:?} overlaps route {:?} (routes[{j}]): an object could match both",
                            route.name, earlier.name
                        ),
                    );
                }
            }
        }
        for (i, route) in routes.iter().enumerate() {
            for (place, what) in ferry_outputs(&routes) {
                if place.could_be_matched_by(route) {
                    RouteCheck { index: i, errors: &mut errors }.fail(
                        "prefix",
                        format!(
                            "route {:?} would queue Ferry's own output: {what} are written under s3://{}/{}; narrow the prefix or suffixes, or write them elsewhere",
                            route.name, place.bucket, place.prefix
                        ),
                    );
                }
            }
        }
        if errors.is_empty() {
            Ok(Routes(routes))
        } else {
            Err(FieldErrors { errors })
        }
    }

    /// The S3 event notification filters the routes need, by bucket: one per route and
    /// suffix (S3 takes one prefix and one suffix rule a configuration: S3 user guide,
    /// "Configuring event notifications using object key name filtering"). A suffix that
    /// ends with another of the same route is left out (the other covers it; S3 refuses
    /// overlapping configurations).
    pub fn notification_filters(&self) -> Vec<(String, Vec<KeyFilter>)> {
        let mut by_bucket: Vec<(String, Vec<KeyFilter>)> = Vec::new();
        for route in &self.0 {
            let bucket = route.bucket.as_str().to_owned();
            let suffixes: Vec<Option<String>> = if route.suffixes.is_empty() {
                vec![None]
            } else {
                let covered = |s: &String| {
                    route
                        .suffixes
                        .iter()
                        .any(|o| o != s && s.ends_with(o.as_str()))
                };
                let mut kept: Vec<&String> =
                    route.suffixes.iter().filter(|s| !covered(s)).collect();
                kept.sort();
                kept.dedup();
                kept.into_iter().map(|s| Some(s.clone())).collect()
            };
            let filters = suffixes
                .into_iter()
                .enumerate()
                .map(|(i, suffix)| KeyFilter {
                    id: if i == 0 {
                        format!("ferry-{}", route.name)
                    } else {
                        format!("ferry-{}-{i}", route.name)
                    },
                    prefix: route.prefix.clone(),
                    suffix,
                });
            match by_bucket.iter_mut().find(|(b, _)| *b == bucket) {
                Some((_, list)) => list.extend(filters),
                None => by_bucket.push((bucket, filters.collect())),
            }
        }
        by_bucket
    }

    /// The route `key` in `bucket` belongs to, if any.
    pub fn route_for(&self, bucket: &str, key: &str) -> Option<usize> {
        self.0.iter().position(|r| r.matches(bucket, key))
    }

    pub fn get(&self, index: usize) -> &Route {
        &self.0[index]
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One S3 event notification filter: a key prefix and at most one suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFilter {
    /// The configuration's `Id`: `ferry-<route>` (and `-<n>` for a route's further suffixes).
    pub id: String,
    pub prefix: String,
    pub suffix: Option<String>,
}

/// Where Ferry itself writes into S3 on behalf of the routes' jobs.
struct Output<'a> {
    bucket: &'a str,
    prefix: String,
    /// The suffix every key written there has, when known.
    suffix: Option<&'static str>,
}

impl Output<'_> {
    /// True when some key written here could match `route`.
    fn could_be_matched_by(&self, route: &Route) -> bool {
        let prefixes =
            self.prefix.starts_with(&route.prefix) || route.prefix.starts_with(&self.prefix);
        let suffixes = match self.suffix {
            None => true,
            Some(suffix) => {
                route.suffixes.is_empty()
                    || route
                        .suffixes
                        .iter()
                        .any(|s| suffix.ends_with(s.as_str()) || s.ends_with(suffix))
            }
        };
        route.bucket.as_str() == self.bucket && prefixes && suffixes
    }
}

/// The places the routes' jobs write to: DataSync manifests (`<prefix><name>.csv`) and FSx
/// completion reports (under the report path, in the task's own folder). A route matching one
/// would queue a job for every manifest or report, and each job writes another.
fn ferry_outputs(routes: &[Route]) -> Vec<(Output<'_>, &'static str)> {
    let mut places = Vec::new();
    for route in routes {
        if let Some(m) = &route.manifest {
            let place = Output {
                bucket: m.bucket.as_str(),
                prefix: m.prefix.clone(),
                suffix: Some(".csv"),
            };
            places.push((place, "DataSync manifests"));
        }
        let report = route.job.report.as_ref().filter(|r| r.enabled);
        let path = report.and_then(|r| r.path.as_deref());
        if let Some(rest) = path.and_then(|p| p.strip_prefix("s3://")) {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = if key.is_empty() || key.ends_with('/') {
                key.to_owned()
            } else {
                format!("{key}/")
            };
            let place = Output {
                bucket,
                prefix,
                suffix: None,
            };
            places.push((place, "FSx completion reports"));
        }
    }
    places
}

/// Two routes overlap when an object could match both: same bucket, one prefix a prefix of
/// the other, and suffix sets that can both match a key (either empty, or one suffix ending
/// with another).
fn overlaps(a: &Route, b: &Route) -> bool {
    let prefixes = a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix);
    let suffixes = a.suffixes.is_empty()
        || b.suffixes.is_empty()
        || a.suffixes.iter().any(|x| {
            b.suffixes
                .iter()
                .any(|y| x.ends_with(y.as_str()) || y.ends_with(x.as_str()))
        });
    a.bucket == b.bucket && prefixes && suffixes
}

/// The checks of one route, recording each problem under `routes[i]`.
struct RouteCheck<'a> {
    index: usize,
    errors: &'a mut Vec<FieldError>,
}

impl RouteCheck<'_> {
    fn fail(&mut self, field: &str, problem: impl Into<String>) {
        let i = self.index;
        self.errors.push(FieldError {
            field: if field.is_empty() {
                format!("routes[{i}]")
            } else {
                format!("routes[{i}].{field}")
            },
            problem: problem.into(),
        });
    }

    fn route(&mut self, route: &Route, limits: &Limits) {
        let name_ok = (1..=40).contains(&route.name.len())
            && route
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            self.fail(
                "name",
                format!("must be 1-40 of [A-Za-z0-9_-]; got {:?}", route.name),
            );
        }
        if route.suffixes.iter().any(String::is_empty) {
            self.fail("suffixes", "must not contain an empty suffix");
        }
        self.template_fields(&route.job);
        self.kind_fields(route);
        self.template(route, limits);
    }

    /// The per-upload fields are Ferry's to fill.
    fn template_fields(&mut self, job: &JobSpec) {
        for (field, filled) in [
            ("job.paths", !job.paths.is_empty()),
            ("job.includes", !job.includes.is_empty()),
            ("job.manifest", job.manifest.is_some()),
        ] {
            if filled {
                self.fail(
                    field,
                    "is filled from the uploaded objects; leave it out of the template",
                );
            }
        }
    }

    /// The route fields each kind uses, and the prefixes it needs.
    fn kind_fields(&mut self, route: &Route) {
        let kind = route.job.kind;
        match kind {
            JobKind::FsxExport | JobKind::FsxRelease if !(route.prefix.is_empty() || route.prefix.ends_with('/')) => self.fail(
                "prefix",
                "must be empty or end with '/' for FSx export and release routes (paths are directories)",
            ),
            JobKind::FsxAutoRelease => self.fail(
                "job.kind",
                "fsx_auto_release tasks are not started by uploads; use a schedule",
            ),
            _ => {}
        }
        let datasync = kind == JobKind::Datasync;
        for (field, set) in [
            ("source_prefix", route.source_prefix.is_some()),
            ("manifest", route.manifest.is_some()),
        ] {
            if set && !datasync {
                self.fail(field, "is only used by datasync routes");
            }
        }
        if datasync && !route.prefix.starts_with(route.source_prefix()) {
            self.fail(
                "source_prefix",
                format!(
                    "the route prefix {:?} must lie under the source location's prefix",
                    route.prefix
                ),
            );
        }
        if route.file_system_path.is_some()
            && !matches!(kind, JobKind::FsxExport | JobKind::FsxRelease)
        {
            self.fail(
                "file_system_path",
                "is only used by fsx_export and fsx_release routes",
            );
        }
    }

    /// The template itself must be a valid job; for DataSync with a manifest target, it is
    /// validated with a manifest so the bucket and role are checked now rather than on the
    /// first upload.
    fn template(&mut self, route: &Route, limits: &Limits) {
        let mut probe = route.job.clone();
        if route.manifest.is_some() {
            probe.manifest = route.manifest_spec("probe.csv");
        }
        if let Err(invalid) = probe.validate(limits) {
            for e in invalid.errors {
                // The probe's manifest is the route's `manifest` target, not a template field.
                let field = e.field.replacen("job.manifest.", "manifest.", 1);
                self.fail(&field, e.problem);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn routes(value: serde_json::Value) -> Result<Routes, FieldErrors> {
        Routes::from_json(&value.to_string(), &Limits::default())
    }

    fn import(name: &str, prefix: &str) -> serde_json::Value {
        json!({"name": name, "bucket": "ferry-data", "prefix": prefix,
               "job": {"name": name, "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}})
    }

    #[test]
    fn routes_match_by_bucket_prefix_and_suffix() {
        let mut csv = import("csv", "incoming/");
        csv["suffixes"] = json!([".csv", ".tsv"]);
        let r = routes(json!([csv, import("raw", "raw/")])).unwrap();
        assert_eq!(r.route_for("ferry-data", "incoming/a.csv"), Some(0));
        assert_eq!(r.route_for("ferry-data", "incoming/a.bin"), None);
        assert_eq!(r.route_for("ferry-data", "raw/x"), Some(1));
        assert_eq!(r.route_for("other", "raw/x"), None);
    }

    #[test]
    fn overlapping_routes_are_rejected() {
        let e = routes(json!([
            import("a", "incoming/"),
            import("b", "incoming/sub/")
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
        let mut csv = import("csv", "incoming/");
        csv["suffixes"] = json!([".csv"]);
        let mut h5 = import("h5", "incoming/");
        h5["suffixes"] = json!([".h5"]);
        assert!(
            routes(json!([csv.clone(), h5])).is_ok(),
            "disjoint suffixes do not overlap"
        );
        let mut scsv = import("scsv", "incoming/x");
        scsv["suffixes"] = json!(["s.csv"]);
        assert!(routes(json!([csv, scsv])).is_err(), "s.csv ends with .csv");
    }

    #[test]
    fn templates_are_validated_and_per_upload_fields_refused() {
        let mut bad = import("bad", "incoming/");
        bad["job"]["paths"] = json!(["s3://ferry-data/x"]);
        bad["job"]["file_system_id"] = json!("fs-1");
        let e = routes(json!([bad])).unwrap_err();
        assert!(e.mentions("routes[0].job.paths"), "{e}");
        assert!(e.mentions("routes[0].job.file_system_id"), "{e}");
        let e = routes(json!({"name": "x"})).unwrap_err();
        assert!(e.to_string().starts_with("routes:"), "{e}");
        let e = routes(json!([])).unwrap_err();
        assert!(e.mentions("routes"), "{e}");
    }

    #[test]
    fn datasync_routes_check_their_manifest_target() {
        let route = json!({"name": "ds", "bucket": "ferry-data", "prefix": "out/", "source_prefix": "out/",
            "manifest": {"bucket": "ferry-data", "prefix": "m/", "bucket_access_role_arn": "not-a-role"},
            "job": {"name": "ds", "kind": "datasync", "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0"}});
        let e = routes(json!([route])).unwrap_err();
        assert!(
            e.mentions("routes[0].manifest.bucket_access_role_arn"),
            "{e}"
        );
    }

    #[test]
    fn a_route_that_would_queue_ferrys_own_manifests_or_reports_is_refused() {
        // Issue 31, item 7: every manifest or report Ferry writes there would queue a job,
        // whose run writes another.
        let role = "arn:aws:iam::111122223333:role/ferry-manifests";
        let datasync = |prefix: &str, manifests: &str| {
            json!({"name": "ds", "bucket": "ferry-data", "prefix": prefix,
                "manifest": {"bucket": "ferry-data", "prefix": manifests, "bucket_access_role_arn": role},
                "job": {"name": "ds", "kind": "datasync",
                        "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0"}})
        };
        let e = routes(json!([datasync("", "ferry-manifests/")])).unwrap_err();
        assert!(e.mentions("routes[0].prefix"), "{e}");
        assert!(e.to_string().contains("DataSync manifests"), "{e}");
        assert!(routes(json!([datasync("out/", "ferry-manifests/")])).is_ok());
        // Another route over the manifests, unless its suffixes exclude `.csv`.
        let mut all = import("all", "ferry-");
        let e = routes(json!([datasync("out/", "ferry-manifests/"), all.clone()])).unwrap_err();
        assert!(e.mentions("routes[1].prefix"), "{e}");
        all["suffixes"] = json!([".h5"]);
        assert!(routes(json!([datasync("out/", "ferry-manifests/"), all])).is_ok());
        // FSx completion reports, written under the report path.
        let mut reporting = import("rep", "in/");
        reporting["job"]["report"] = json!({"enabled": true, "path": "s3://ferry-data/in/reports"});
        let e = routes(json!([reporting.clone()])).unwrap_err();
        assert!(e.to_string().contains("FSx completion reports"), "{e}");
        reporting["job"]["report"]["path"] = json!("s3://ferry-data/ferry-reports");
        assert!(routes(json!([reporting])).is_ok());
    }

    #[test]
    fn each_route_needs_one_notification_filter_a_suffix() {
        let mut h5 = import("h5", "in/");
        h5["suffixes"] = json!([".h5", "data.h5", ".nc"]);
        let mut other = import("other", "raw/");
        other["bucket"] = json!("ferry-other");
        let r = routes(json!([h5, import("all", "out/"), other])).unwrap();
        let filter = |id: &str, prefix: &str, suffix: Option<&str>| KeyFilter {
            id: id.into(),
            prefix: prefix.into(),
            suffix: suffix.map(Into::into),
        };
        assert_eq!(
            r.notification_filters(),
            [
                (
                    "ferry-data".to_owned(),
                    vec![
                        filter("ferry-h5", "in/", Some(".h5")),
                        filter("ferry-h5-1", "in/", Some(".nc")),
                        filter("ferry-all", "out/", None),
                    ]
                ),
                (
                    "ferry-other".to_owned(),
                    vec![filter("ferry-other", "raw/", None)]
                ),
            ],
            "data.h5 is covered by .h5: S3 would refuse the two as overlapping"
        );
    }

    #[test]
    fn export_routes_need_directory_prefixes() {
        let route = json!({"name": "ex", "bucket": "ferry-data", "prefix": "run-",
            "job": {"name": "ex", "kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0"}});
        let e = routes(json!([route])).unwrap_err();
        assert!(e.mentions("routes[0].prefix"), "{e}");
    }
}
