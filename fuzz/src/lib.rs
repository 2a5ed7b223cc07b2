//! What the fuzz targets share: the routes `s3-trigger` runs with, S3's key encoding, a
//! one-thread `block_on`, and the oracle.

pub mod oracle;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future that never waits on I/O (the handlers over in-memory fakes) to completion.
/// A future that stays pending would spin: libFuzzer's `-timeout` reports it as a hang.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
