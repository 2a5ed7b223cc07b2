//! Prints what adaptive polling costs against a fixed 30-second poll:
//! `cargo run -p ferry --example poll_cost`.

use ferry::poll::{self, PollSettings};

fn main() {
    let settings = PollSettings::default();
    println!(
        "| task length | fixed 30 s polls | adaptive polls (no progress / linear progress) | transitions vs fixed | worst detection delay |"
    );
    println!("|---|---|---|---|---|");
    for (label, seconds) in [
        ("5 min", 300),
        ("1 h", 3_600),
        ("6 h", 21_600),
        ("24 h", 86_400),
    ] {
        let fixed = poll::fixed_cost(30, seconds);
        let blind = poll::simulate(settings, seconds, false);
        let informed = poll::simulate(settings, seconds, true);
        let ratio = 100.0 * blind.transitions as f64 / fixed.transitions as f64;
        println!(
            "| {label} | {} | {} / {} | {ratio:.1} % | {} s |",
            fixed.polls,
            blind.polls,
            informed.polls,
            blind
                .detection_delay_seconds
                .max(informed.detection_delay_seconds)
        );
    }
}
