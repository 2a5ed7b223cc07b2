//! Text for people: errors on one line, ages and sizes short.

use ferry::FerryError;

/// One line for an error: what failed and, for an AWS call that never got an answer, where to
/// look.
pub fn error_line(error: &FerryError) -> String {
    let line = error.to_string().replace('\n', " ");
    match error {
        FerryError::AwsService { source } if source.code.is_none() => format!(
            "{}; no answer from AWS: check the region, the credentials and AWS_ENDPOINT_URL",
            without_debug(&line)
        ),
        _ => line,
    }
}

/// The SDK's error text ends with the error's `Debug` form (`... (DispatchFailure(...))`),
/// which says again, less readably, what precedes it.
fn without_debug(line: &str) -> &str {
    const VARIANTS: [&str; 4] = [
        " (DispatchFailure(",
        " (TimeoutError(",
        " (ResponseError(",
        " (ConstructionFailure(",
    ];
    let cut = VARIANTS.iter().filter_map(|v| line.find(v)).min();
    cut.map_or(line, |at| &line[..at])
}

/// A lane as tables show it: a DataSync task by its id, not its whole ARN (`--json` keeps
/// the key whole).
pub fn short_lane(lane: &ferry::lanes::LaneId) -> String {
    let key = lane.to_string();
    match key.strip_prefix("datasync:") {
        Some(arn) => format!("datasync:{}", short_id(arn)),
        None => key,
    }
}

/// The last segment of an ARN (`task-…`, `exec-…`); anything else as it is.
pub fn short_id(id: &str) -> &str {
    if id.starts_with("arn:") {
        id.rsplit('/').next().unwrap_or(id)
    } else {
        id
    }
}

/// `1 job`, `3 jobs`.
pub fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// `42s`, `7m05s`, `3h02m`, `2d04h`.
pub fn age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// `512 B`, `3.4 MiB`, `1.2 TiB`.
pub fn bytes(count: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `90s`, `30m`, `12h`, `7d`, `2w` as seconds; what is wrong with it otherwise.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let expected = || format!("expected a duration such as 90s, 30m, 12h, 7d or 2w, got {text:?}");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(expected)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(expected()),
    };
    number.checked_mul(scale).ok_or_else(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_short() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(425), "7m05s");
        assert_eq!(age(10_920), "3h02m");
        assert_eq!(age(187_200), "2d04h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3_565_158), "3.4 MiB");
        assert_eq!(bytes(1_319_413_953_331), "1.2 TiB");
    }

    #[test]
    fn tables_shorten_arns_and_count_right() {
        let lane = ferry::lanes::LaneId::parse(
            "datasync:arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0",
        )
        .unwrap();
        assert_eq!(short_lane(&lane), "datasync:task-0123456789abcdef0");
        let fsx = ferry::lanes::LaneId::parse("fsx:fs-0123456789abcdef0").unwrap();
        assert_eq!(short_lane(&fsx), "fsx:fs-0123456789abcdef0");
        assert_eq!(
            short_id("arn:aws:datasync:us-east-1:1:task/task-1/execution/exec-2"),
            "exec-2"
        );
        assert_eq!(short_id("task-0123"), "task-0123");
        assert_eq!(
            (plural(1, "job"), plural(3, "job")),
            ("1 job".into(), "3 jobs".into())
        );
    }

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("2w"), Ok(1_209_600));
        for bad in ["", "7", "d", "7y", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unanswered_call_reads_as_one_line_without_the_sdk_debug_form() {
        let line = "AWS service error: Query: dispatch failure: io error: Connection refused \
                    (os error 111) (DispatchFailure(DispatchFailure { source: ConnectorError }))";
        assert_eq!(
            without_debug(line),
            "AWS service error: Query: dispatch failure: io error: Connection refused (os error 111)"
        );
        assert_eq!(without_debug("no debug form"), "no debug form");
    }
}
