//! Who may run, so that content nobody has cannot starve content the node holds.
//!
//! Every request holds exactly one permit while it runs, its body included:
//! - a **local** permit (of `gateway.max_requests`) while everything it read was in the store;
//! - a **retrieval** permit (of [`retrieval_slots`]) from its first block that had to come
//!   from the network on: the request gives its local permit back when it takes one, so
//!   requests waiting on the network never hold the slots of local content.
//!
//! A request whose root block is missing fetches it before it takes any permit, and identical
//! roots are fetched once: the first request leads (with a retrieval permit), the others wait
//! for its result without holding anything ([`Admission::fetch_root`]). A request that waits
//! longer than the retrieval timeout for a retrieval permit is answered 503 with `Retry-After`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_protocol::Cid;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::error::GatewayError;
use crate::dag_read::{BlockError, NetworkGate};

/// Retrieval slots for a gateway of `max_requests` slots: `max_retrievals`, at most three
/// quarters of `max_requests` (and at least one), so local content always keeps a quarter.
pub(crate) fn retrieval_slots(max_requests: usize, max_retrievals: usize) -> usize {
    max_retrievals.min(max_requests * 3 / 4).max(1)
}

/// The outcome of a root fetch, shared by the requests that waited for it.
type RootResult = Option<Result<(), GatewayError>>;

/// The gateway's two pools and its root fetches in flight.
pub(crate) struct Admission {
    local: Arc<Semaphore>,
    retrievals: Arc<Semaphore>,
    /// How long a request may wait for a retrieval slot.
    wait: Duration,
    roots: Mutex<HashMap<Cid, watch::Receiver<RootResult>>>,
}

/// The one permit a request holds, swapped from local to retrieval on its first miss.
pub(crate) struct Slot {
    held: Mutex<Option<OwnedSemaphorePermit>>,
    network: std::sync::atomic::AtomicBool,
    retrievals: Arc<Semaphore>,
    wait: Duration,
}

impl Admission {
    /// Pools of `max_requests` local and `retrievals` network slots.
    pub(crate) fn new(max_requests: usize, retrievals: usize, wait: Duration) -> Admission {
        Admission {
            local: Arc::new(Semaphore::new(max_requests.max(1))),
            retrievals: Arc::new(Semaphore::new(retrievals.max(1))),
            wait,
            roots: Mutex::new(HashMap::new()),
        }
    }

    /// A local slot for a request about to run.
    pub(crate) async fn admit(&self) -> Result<Arc<Slot>, GatewayError> {
        let permit = self
            .local
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| GatewayError::unavailable("the gateway is shutting down"))?;
        Ok(Arc::new(Slot {
            held: Mutex::new(Some(permit)),
            network: false.into(),
            retrievals: self.retrievals.clone(),
            wait: self.wait,
        }))
    }

    /// Fetch the root block `cid` with `fetch` (as a task holding a retrieval slot), once for
    /// every request that asks for it meanwhile. A leader that goes away (its
    /// client hung up) hands the fetch on: its entry is removed and its followers see a closed
    /// channel and lead in turn, so no CID is ever stuck behind a request that is gone.
    pub(crate) async fn fetch_root<F>(&self, cid: Cid, fetch: F) -> Result<(), GatewayError>
    where
        F: Future<Output = Result<(), GatewayError>> + Send + 'static,
    {
        let mut fetch = Some(fetch);
        loop {
            let (lead, mut rx) = {
                let mut roots = self.roots.lock().expect("root fetches lock");
                match roots.get(&cid) {
                    Some(rx) if rx.has_changed().is_ok() => (None, rx.clone()),
                    _ => {
                        let (tx, rx) = watch::channel(None);
                        roots.insert(cid, rx.clone());
                        (Some(Leader { tx, roots: &self.roots, cid }), rx)
                    }
                }
            };
            let Some(leader) = lead else {
                // Another request is fetching it: wait for its result, holding nothing.
                match rx.wait_for(|r| r.is_some()).await {
                    Ok(r) => return r.clone().expect("waited for a result"),
                    // The leader went away without a result: try again, maybe as the leader.
                    Err(_) => continue,
                }
            };
            let result = self.lead_fetch(fetch.take().expect("one leader per call")).await;
            leader.finish(result.clone());
            return result;
        }
    }

    async fn lead_fetch<F>(&self, fetch: F) -> Result<(), GatewayError>
    where
        F: Future<Output = Result<(), GatewayError>> + Send + 'static,
    {
        let permit = match tokio::time::timeout(self.wait, self.retrievals.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(GatewayError::unavailable("the gateway is shutting down")),
            Err(_) => return Err(busy()),
        };
        // The permit goes with the work: if this request is dropped, the fetch still counts
        // against the pool until it ends.
        tokio::spawn(async move {
            let _held = permit;
            fetch.await
        })
        .await
        .unwrap_or_else(|e| Err(GatewayError::internal(format!("a root fetch failed: {e}"))))
    }
}

/// The leading request of a root fetch. Dropped without [`Leader::finish`] (the request was
/// cancelled), it removes its entry, and its followers see the channel close.
struct Leader<'a> {
    tx: watch::Sender<RootResult>,
    roots: &'a Mutex<HashMap<Cid, watch::Receiver<RootResult>>>,
    cid: Cid,
}

impl Leader<'_> {
    fn finish(self, result: Result<(), GatewayError>) {
        let _ = self.tx.send(Some(result));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.roots.lock().expect("root fetches lock").remove(&self.cid);
    }
}

/// Every retrieval slot stayed busy for the whole wait.
pub fn busy() -> GatewayError {
    GatewayError::unavailable(
        "every network retrieval slot of this gateway is busy (gateway.max_retrievals); retry in a few seconds",
    )
}

impl Slot {
    /// Before a block is fetched from the network: trade the local permit for a retrieval
    /// one (once; later misses keep it).
    pub(crate) async fn to_network(&self) -> Result<(), GatewayError> {
        use std::sync::atomic::Ordering;
        if self.network.load(Ordering::Acquire) {
            return Ok(());
        }
        let permit = match self.retrievals.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // No retrieval slot free: give the local one back before waiting, so requests
                // that wait on the network never hold the slots of local content.
                self.held.lock().expect("slot lock").take();
                tokio::time::timeout(self.wait, self.retrievals.clone().acquire_owned())
                    .await
                    .map_err(|_| busy())?
                    .map_err(|_| GatewayError::unavailable("the gateway is shutting down"))?
            }
        };
        *self.held.lock().expect("slot lock") = Some(permit);
        self.network.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether this request has moved to the retrieval pool.
    #[cfg(test)]
    pub(crate) fn is_network(&self) -> bool {
        self.network.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl NetworkGate for Slot {
    fn enter(&self) -> Pin<Box<dyn Future<Output = Result<(), BlockError>> + Send + '_>> {
        Box::pin(async move { self.to_network().await.map_err(|e| BlockError::Unavailable(e.message)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_content_keeps_a_quarter() {
        assert_eq!(retrieval_slots(256, 64), 64);
        assert_eq!(retrieval_slots(8, 64), 6);
        assert_eq!(retrieval_slots(1, 64), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_goes_to_the_network_frees_its_local_slot_and_roots_are_fetched_once() {
        let adm = Arc::new(Admission::new(2, 1, Duration::from_millis(200)));
        let a = adm.admit().await.unwrap();
        let _b = adm.admit().await.unwrap();
        assert_eq!(adm.local.available_permits(), 0);
        a.to_network().await.unwrap();
        assert!(a.is_network());
        assert_eq!(adm.local.available_permits(), 1, "the local slot went back");
        // The only retrieval slot is taken: a second network request gets 503 in time.
        let c = adm.admit().await.unwrap();
        let err = c.to_network().await.unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(adm.local.available_permits(), 1, "only the local request holds a local slot");
        drop((a, c));

        // A leader that is cancelled hands the fetch on instead of leaving the CID stuck.
        let cid0 = cairn_protocol::cids::parse("bafkqaaa").unwrap();
        let slow = {
            let adm = adm.clone();
            tokio::spawn(async move {
                adm.fetch_root(cid0, async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        slow.abort();
        let _ = slow.await;
        tokio::time::timeout(Duration::from_secs(2), adm.fetch_root(cid0, async { Ok(()) }))
            .await
            .expect("not stuck behind the cancelled leader")
            .unwrap();

        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cid = cairn_protocol::cids::parse("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4").unwrap();
        let mut waiters = Vec::new();
        for _ in 0..20 {
            let (adm, calls) = (adm.clone(), calls.clone());
            waiters.push(tokio::spawn(async move {
                adm.fetch_root(cid, async move {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(())
                })
                .await
            }));
        }
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "one fetch for twenty requests");
    }
}
