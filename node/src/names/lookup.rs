//! One DHT lookup of a name under the answer rule: answer with the best valid record once
//! [`Rule::enough`] peers have sent a valid one, or [`Rule::settle`] after the first, whichever
//! comes first; keep listening until the walk ends, and hand on every later record that is
//! newer than the answer. Every record is self-certifying (signed by the name's key), so one
//! valid record is authentic; waiting for more only guards against an old one (see
//! `specs/ipns.md`).

use std::time::Duration;

use cairn_protocol::names::Name;
use cairn_protocol::records::{IpnsRecord, ValidRecord};
use tokio::time::Instant;

use super::published;
use crate::net::Network;

/// When a lookup answers.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Answer once this many peers (this node's own record store counting as one) sent a
    /// valid record.
    pub enough: usize,
    /// Answer this long after the first valid record, however many came.
    pub settle: Duration,
    /// Give up on a walk that found nothing after this long.
    pub timeout: Duration,
}

impl Default for Rule {
    fn default() -> Self {
        Rule { enough: 3, settle: Duration::from_millis(250), timeout: Duration::from_secs(30) }
    }
}

/// Run one lookup, handing `report` the settled answer (`true`), then newer records
/// (`false`). Returns when the walk ends or times out.
pub(super) async fn run<F, Fut>(net: &Network, name: Name, rule: &Rule, mut report: F)
where
    F: FnMut(IpnsRecord, Vec<u8>, bool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Ok(mut found) = net.search_value(name.routing_key()).await else { return };
    let give_up = Instant::now() + rule.timeout;
    let mut best: Option<(IpnsRecord, Vec<u8>)> = None;
    let mut answers = 0usize;
    let mut settle_at: Option<Instant> = None;
    let mut settled = false;
    let mut report = |best: &(IpnsRecord, Vec<u8>), settled: bool| {
        let (record, bytes) = best.clone();
        report(record, bytes, settled)
    };
    loop {
        let wake = match (settled, settle_at) {
            (false, Some(at)) => at.min(give_up),
            _ => give_up,
        };
        let next = tokio::select! {
            f = found.recv() => f,
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= give_up {
                    break;
                }
                settled = true;
                if let Some(b) = &best {
                    report(b, true).await;
                }
                continue;
            }
        };
        let Some(f) = next else { break };
        let ValidRecord::Ipns(record) = f.record else { continue };
        answers += 1;
        let newer = best.as_ref().is_none_or(|(b, _)| published::newer(b, &record));
        if newer {
            best = Some((record, f.value));
        }
        let b = best.as_ref().expect("set above");
        if !settled {
            settle_at.get_or_insert_with(|| Instant::now() + rule.settle);
            if answers >= rule.enough {
                settled = true;
                report(b, true).await;
            }
        } else if newer {
            report(b, false).await;
        }
    }
    if let (false, Some(b)) = (settled, &best) {
        report(b, true).await;
    }
}
