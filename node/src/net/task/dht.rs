//! The swarm task's Kademlia side: value records put and found, query progress (provider
//! searches, closest-peer walks, bootstraps) and the providers they turn up.

use super::*;

impl Task {
    pub(super) fn put_value(&mut self, key: Vec<u8>, value: Vec<u8>, reply: oneshot::Sender<Result<(), NetError>>) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        let record = match kad.store_mut().offer(kad::Record::new(key, value), now_nanos()) {
            Ok(Some(record)) => record,
            Ok(None) => {
                let why = "a newer record (higher sequence or later EOL) is already held under this key";
                let _ = reply.send(Err(NetError::Dht(why.into())));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        match kad.put_record(record, kad::Quorum::One) {
            Ok(id) => {
                self.value_puts.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(NetError::Dht(e.to_string())));
            }
        }
    }

    /// A record found by a value search: handed on if valid. A search nobody reads any more
    /// ends here.
    fn on_value_found(&mut self, id: QueryId, peer: Option<PeerId>, record: kad::Record) {
        let Some(found) = self.value_searches.get(&id) else { return };
        if found.is_closed() {
            self.value_searches.remove(&id);
            if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                q.finish();
            }
            return;
        }
        match records::validate(record.key.as_ref(), &record.value, now_nanos()) {
            Ok(valid) => {
                // A reader more than FOUND_VALUES records behind misses the rest; it has the
                // first ones, and the best of the rest comes again in the next search.
                let _ = found.try_send(crate::net::FoundValue { peer, record: valid, value: record.value });
            }
            Err(e) => tracing::debug!(?peer, "invalid value record ignored: {e}"),
        }
    }

    pub(super) fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed { id, result, step, stats } => {
                if let Some(asked) = self.provider_searches.get(&id).and_then(|s| s.asked.as_ref()) {
                    asked.store(stats.num_requests(), Ordering::Relaxed);
                }
                self.on_query(id, result, step.last)
            }
            kad::Event::InboundRequest { request: kad::InboundRequest::AddProvider { record: Some(record) } } => {
                // kad already checked the record is from the peer that sent it.
                if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().add_provider(record) {
                    tracing::debug!("provider record refused: {e}");
                }
            }
            kad::Event::InboundRequest { request: kad::InboundRequest::PutRecord { source, record: Some(r), .. } } => {
                // Value records (/ipns/, /pk/) are stored only once validated, and only when
                // they replace an older one.
                match self.swarm.behaviour_mut().kad.store_mut().offer(r, now_nanos()) {
                    Ok(Some(r)) => tracing::debug!(%source, key = ?r.key, "value record stored"),
                    Ok(None) => tracing::debug!(%source, "value record older than the one held; kept ours"),
                    Err(e) => tracing::debug!(%source, "value record refused: {e}"),
                }
            }
            _ => {}
        }
    }

    fn on_query(&mut self, id: QueryId, result: QueryResult, last: bool) {
        match result {
            QueryResult::GetProviders(Ok(GetProvidersOk::FoundProviders { providers, .. })) => {
                self.on_providers(id, providers);
            }
            QueryResult::GetProviders(_) => {}
            QueryResult::GetClosestPeers(res) if self.closest.contains_key(&id) => {
                let reply = self.closest.remove(&id).expect("checked");
                let peers = match res {
                    Ok(GetClosestPeersOk { peers, .. }) => peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                let _ = reply.send(Ok(peers.into_iter().map(|p| (p.peer_id, p.addrs)).collect()));
            }
            QueryResult::GetClosestPeers(res) if self.provider_walks.contains_key(&id) => {
                let provider = self.provider_walks.remove(&id).expect("checked");
                let peers = match res {
                    Ok(GetClosestPeersOk { peers, .. }) => peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                let addrs: Vec<Multiaddr> =
                    peers.into_iter().filter(|p| p.peer_id == provider).flat_map(|p| p.addrs).collect();
                if !self.connected.contains_key(&provider) && !addrs.is_empty() {
                    let opts = DialOpts::peer_id(provider)
                        .addresses(addrs)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    let _ = self.swarm.dial(opts);
                }
            }
            QueryResult::GetClosestPeers(res) => {
                if let Some((peer, reply)) = self.peer_searches.remove(&id) {
                    let addrs = match res {
                        Ok(GetClosestPeersOk { peers, .. }) => {
                            peers.into_iter().filter(|p| p.peer_id == peer).flat_map(|p| p.addrs).collect()
                        }
                        Err(kad::GetClosestPeersError::Timeout { peers, .. }) => {
                            peers.into_iter().filter(|p| p.peer_id == peer).flat_map(|p| p.addrs).collect()
                        }
                    };
                    let _ = reply.send(Ok(addrs));
                }
            }
            QueryResult::StartProviding(res) => {
                if let Some(reply) = self.provides.remove(&id) {
                    // A walk that found no peers to store the record on is an error; a partial
                    // store (timeout) still announced the key to some peers.
                    let out = match res {
                        Ok(_) => Ok(()),
                        Err(kad::AddProviderError::Timeout { .. }) => Ok(()),
                    };
                    let _ = reply.send(out);
                }
            }
            QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found))) => {
                self.on_value_found(id, found.peer, found.record);
            }
            QueryResult::PutRecord(res) => {
                if let Some(reply) = self.value_puts.remove(&id) {
                    // Kept here either way; the error says no other peer took it.
                    let _ = reply.send(res.map(|_| ()).map_err(|e| NetError::Dht(e.to_string())));
                }
            }
            QueryResult::Bootstrap(res) if last || res.is_err() => {
                if let Some(reply) = self.bootstraps.remove(&id) {
                    let _ = reply.send(res.map(|_| ()).map_err(|e| NetError::Dht(e.to_string())));
                }
            }
            _ => {}
        }
        if last {
            self.provider_searches.remove(&id);
            self.peer_searches.remove(&id);
            self.closest.remove(&id);
            self.provides.remove(&id);
            self.bootstraps.remove(&id);
            self.value_puts.remove(&id);
            // Dropping the sender tells the reader the walk is over.
            self.value_searches.remove(&id);
        }
    }

    /// New providers: dial them while the query still knows their addresses, hand them on,
    /// and stop the query once enough were found or nobody listens any more.
    fn on_providers(&mut self, id: QueryId, providers: HashSet<PeerId>) {
        let local = *self.swarm.local_peer_id();
        let Some(key) = self.provider_searches.get(&id).map(|s| s.key.clone()) else { return };
        // Providers found in this node's own record store come without the query knowing
        // their addresses: take them from the records, and keep them for later dials.
        for r in self.swarm.behaviour_mut().kad.store_mut().providers(&key) {
            if providers.contains(&r.provider) && !r.addresses.is_empty() {
                if self.provider_addrs.len() >= PROVIDER_ADDRS {
                    self.provider_addrs.clear();
                }
                self.provider_addrs.insert(r.provider, r.addresses);
            }
        }
        let Some(search) = self.provider_searches.get_mut(&id) else { return };
        let mut done = false;
        for p in providers {
            if p == local || !search.seen.insert(p) {
                continue;
            }
            if !self.connected.contains_key(&p) {
                let addrs = self.provider_addrs.get(&p).cloned().unwrap_or_default();
                let opts =
                    DialOpts::peer_id(p).addresses(addrs).condition(PeerCondition::DisconnectedAndNotDialing).build();
                if let Err(e) = self.swarm.dial(opts) {
                    // A record without addresses (and none known): walk the DHT towards the
                    // provider now, rather than after the search ends.
                    tracing::debug!(%p, "provider without known addresses ({e}): looking it up");
                    if self.provider_walks.len() < MAX_PROVIDER_WALKS {
                        let walk = self.swarm.behaviour_mut().kad.get_closest_peers(p);
                        self.provider_walks.insert(walk, p);
                    }
                }
            }
            if search.found.try_send(p).is_err() || search.seen.len() >= search.limit {
                done = true;
                break;
            }
        }
        if done {
            self.provider_searches.remove(&id);
            if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                q.finish();
            }
        }
    }
}
