//! IPNS names as people write them: a peer ID (the hash of the name's public key) printed as a
//! CIDv1 with the `libp2p-key` codec in base36 (`k51…`), as kubo and Helia print them.
//! Parsing also takes the base58 peer-ID form (`12D3KooW…`, `Qm…`), any multibase CIDv1 with
//! that codec, and a leading `/ipns/`.

use std::fmt;
use std::str::FromStr;

use cid::Cid;
use libp2p_identity::PeerId;

use crate::records::ipns_key;

/// The multicodec of a CID naming a public key.
pub const LIBP2P_KEY: u64 = 0x72;

/// Why a text is not an IPNS name.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// Neither a peer ID nor a `libp2p-key` CID.
    #[error("{0:?} is not an IPNS name (expected k51…, 12D3KooW… or /ipns/<name>; DNSLink names are not supported)")]
    Unparsable(String),
    /// A CID with another codec.
    #[error("{0} is a CID of content, not a name: its codec is not libp2p-key")]
    NotAKey(String),
}

/// An IPNS name: the peer ID of the key that signs its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(PeerId);

impl Name {
    /// The name of the key with this peer ID.
    pub fn new(peer: PeerId) -> Name {
        Name(peer)
    }

    /// The peer ID of the signing key.
    pub fn peer_id(&self) -> PeerId {
        self.0
    }

    /// The DHT key of the name's records, `/ipns/` ‖ the peer ID's bytes.
    pub fn routing_key(&self) -> Vec<u8> {
        ipns_key(&self.0)
    }

    /// The name from a DHT routing key (`/ipns/` ‖ peer ID bytes).
    pub fn from_routing_key(key: &[u8]) -> Option<Name> {
        let id = key.strip_prefix(crate::records::IPNS_PREFIX)?;
        PeerId::from_bytes(id).ok().map(Name)
    }

    /// The PubSub topic its records travel on (IPNS over PubSub): `/record/` ‖ the routing key
    /// in unpadded base64url.
    pub fn pubsub_topic(&self) -> String {
        format!("/record/{}", multibase::Base::Base64Url.encode(self.routing_key()))
    }

    /// The name whose records travel on `topic`, if it is a name's topic.
    pub fn from_pubsub_topic(topic: &str) -> Option<Name> {
        let key = multibase::Base::Base64Url.decode(topic.strip_prefix("/record/")?).ok()?;
        Name::from_routing_key(&key)
    }

    /// The name as a CIDv1 (`libp2p-key`, the peer ID's multihash).
    pub fn to_cid(&self) -> Cid {
        Cid::new_v1(LIBP2P_KEY, *self.0.as_ref())
    }
}

impl fmt::Display for Name {
    /// Base36 CIDv1 (`k51…` for Ed25519 keys): short enough for a DNS label.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_cid().to_string_of_base(multibase::Base::Base36Lower).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl FromStr for Name {
    type Err = NameError;

    fn from_str(text: &str) -> Result<Name, NameError> {
        let t = text.strip_prefix("/ipns/").unwrap_or(text).trim_end_matches('/');
        if let Ok(peer) = t.parse::<PeerId>() {
            return Ok(Name(peer));
        }
        let cid = Cid::try_from(t).map_err(|_| NameError::Unparsable(text.to_string()))?;
        if cid.codec() != LIBP2P_KEY {
            return Err(NameError::NotAKey(text.to_string()));
        }
        PeerId::from_multihash(*cid.hash()).map(Name).map_err(|_| NameError::Unparsable(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p_identity::Keypair;

    #[test]
    fn ed25519_names_print_as_k51_and_parse_back_from_every_form() {
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let name = Name::new(peer);
        let text = name.to_string();
        assert!(text.starts_with("k51"), "{text}");
        for form in [text.clone(), format!("/ipns/{text}"), peer.to_base58(), format!("/ipns/{peer}/")] {
            assert_eq!(form.parse::<Name>(), Ok(name), "{form}");
        }
        let base32 = name.to_cid().to_string_of_base(multibase::Base::Base32Lower).unwrap();
        assert_eq!(base32.parse::<Name>(), Ok(name));
        assert_eq!(Name::from_routing_key(&name.routing_key()), Some(name));
        assert_eq!(Name::from_pubsub_topic(&name.pubsub_topic()), Some(name));
        assert_eq!(Name::from_pubsub_topic("/other"), None);
    }

    #[test]
    fn a_known_name_matches_helia() {
        // Helia's `peerIdFromString(…).toCID().toString(base36)` (@libp2p/peer-id) prints this.
        let name: Name = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA".parse().unwrap();
        assert_eq!(name.to_string(), "k51qzi5uqu5dhdmyb9bd18pypu2wp5lpv2xnskfmrqa4lb5knqryrotb05e7or");
    }

    #[test]
    fn content_cids_and_junk_are_refused_with_the_reason() {
        let content = "bafkqaaa";
        assert_eq!(content.parse::<Name>(), Err(NameError::NotAKey(content.into())));
        assert!(matches!("example.com".parse::<Name>(), Err(NameError::Unparsable(_))));
        assert!(matches!("".parse::<Name>(), Err(NameError::Unparsable(_))));
    }
}
