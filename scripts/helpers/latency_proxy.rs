//! A proxy that adds a fixed delay to every request, in front of a local
//! registry: the WAN profile of `scripts/bench.sh`.
//!
//! latency_proxy UPSTREAM_PORT DELAY_MS   (prints its own port, runs until killed)

// The proxy reaches its siblings as `super::fake` and `super::image`.
#[allow(dead_code)]
#[path = "../../tests/support/fake.rs"]
mod fake;
#[allow(dead_code)]
#[path = "../../tests/support/image.rs"]
mod image;
#[allow(dead_code)]
#[path = "../../tests/support/proxy.rs"]
mod proxy;

use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let upstream: u16 = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("UPSTREAM_PORT");
    let delay: u64 = args.next().and_then(|a| a.parse().ok()).expect("DELAY_MS");
    let p = proxy::FaultProxy::start(upstream);
    p.rule(
        proxy::ProxyRule::new("*", "/", proxy::Fault::Delay(Duration::from_millis(delay)))
            .times(usize::MAX),
    );
    println!("{}", p.port);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
