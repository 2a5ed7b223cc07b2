//! What the binaries and the CLI share at the top: the clock. Use cases take the time as a
//! value ([`crate::lanes::runner::Timing`]); their callers read it here.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::LaneConfig;
use crate::lanes::record::Millis;
use crate::lanes::runner::Timing;

/// Milliseconds since the Unix epoch, now: the lane table's clock. Built with the `test-util`
/// feature (never deployed), a test may set its thread's clock instead
/// (`fakes::set_virtual_now`): the lane protocol's simulation drives leases with it.
pub fn now_millis() -> Millis {
    #[cfg(feature = "test-util")]
    if let Some(now) = crate::fakes::virtual_now() {
        return now;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now, and how long a lease taken or renewed now lasts.
pub fn timing(lanes: &LaneConfig) -> Timing {
    Timing {
        now: now_millis(),
        lease_ms: u64::from(lanes.lease_seconds) * 1000,
    }
}
