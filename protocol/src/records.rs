//! DHT value records: IPNS records under `/ipns/<peer id>` and public keys under
//! `/pk/<peer id>`, validated as the IPNS record spec and go-libp2p's `pk` validator say before a
//! node stores or uses one, and IPNS record creation.
//!
//! The clock is an argument (`now`, Unix nanoseconds), so validation stays pure and testable.

use std::collections::BTreeMap;

use ipld_core::ipld::Ipld;
use libp2p_identity::{Keypair, PeerId, PublicKey};
use prost::Message as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The largest serialized IPNS record accepted or created (the spec's limit).
pub const MAX_RECORD_SIZE: usize = 10 * 1024;

/// Prefix of the bytes a V2 signature covers, before the CBOR `data`.
const SIGNATURE_PREFIX: &[u8] = b"ipns-signature:";

/// Routing-key prefix of IPNS records.
pub const IPNS_PREFIX: &[u8] = b"/ipns/";

/// Routing-key prefix of public-key records.
pub const PK_PREFIX: &[u8] = b"/pk/";

/// Why a value record was refused.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// The key is neither `/ipns/<peer id>` nor `/pk/<peer id>`.
    #[error("unsupported record key (only /ipns/ and /pk/ records are kept)")]
    UnknownNamespace,
    /// The peer ID in the key does not parse.
    #[error("the record key does not hold a valid peer ID")]
    BadKey,
    /// Over [`MAX_RECORD_SIZE`].
    #[error("record of {0} bytes is over the 10 KiB limit")]
    TooLarge(usize),
    /// The protobuf or its CBOR `data` does not decode.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// No `signatureV2` or no `data` (V1-only records are no longer valid).
    #[error("record has no V2 signature or no data")]
    NoV2,
    /// No public key in the record, and the name does not inline one.
    #[error("record carries no public key and the name does not inline one")]
    NoPublicKey,
    /// The public key is not the one the name (peer ID) is derived from.
    #[error("the public key does not belong to this name")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A legacy V1 field disagrees with the signed data.
    #[error("legacy field {0} does not match the signed data")]
    FieldMismatch(&'static str),
    /// The validity type is not EOL (0), the only one defined.
    #[error("unknown validity type {0}")]
    UnknownValidityType(u64),
    /// The EOL has passed.
    #[error("record expired at {0}")]
    Expired(String),
}

/// `IpnsEntry`, the serialized form of an IPNS record. Fields 1–6 are legacy V1 copies of the
/// signed CBOR `data`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IpnsEntry {
    /// Legacy copy of `data[Value]`.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub value: Option<Vec<u8>>,
    /// Legacy V1 signature; never used for verification.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub signature_v1: Option<Vec<u8>>,
    /// Legacy copy of `data[ValidityType]`.
    #[prost(int32, optional, tag = "3")]
    pub validity_type: Option<i32>,
    /// Legacy copy of `data[Validity]`.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub validity: Option<Vec<u8>>,
    /// Legacy copy of `data[Sequence]`.
    #[prost(uint64, optional, tag = "5")]
    pub sequence: Option<u64>,
    /// Legacy copy of `data[TTL]`.
    #[prost(uint64, optional, tag = "6")]
    pub ttl: Option<u64>,
    /// Public key (protobuf), for keys too large to inline in the name.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub pub_key: Option<Vec<u8>>,
    /// Signature over `"ipns-signature:" ‖ data`.
    #[prost(bytes = "vec", optional, tag = "8")]
    pub signature_v2: Option<Vec<u8>>,
    /// The signed DAG-CBOR document.
    #[prost(bytes = "vec", optional, tag = "9")]
    pub data: Option<Vec<u8>>,
}

/// A verified IPNS record's signed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpnsRecord {
    /// The path the name points to, e.g. `/ipfs/bafy…`.
    pub value: Vec<u8>,
    /// Version: higher replaces lower.
    pub sequence: u64,
    /// The EOL as written (RFC 3339).
    pub validity: String,
    /// The EOL, Unix nanoseconds.
    pub eol_nanos: i128,
    /// How long resolvers may cache it, nanoseconds.
    pub ttl_nanos: u64,
}

/// A value record that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidRecord {
    /// An IPNS record for the name in its key.
    Ipns(IpnsRecord),
    /// The public key of the peer in its key.
    PublicKey,
}

/// Validate a value record under its DHT key, at Unix time `now_nanos`.
pub fn validate(key: &[u8], value: &[u8], now_nanos: i128) -> Result<ValidRecord, RecordError> {
    if let Some(id) = key.strip_prefix(IPNS_PREFIX) {
        let name = PeerId::from_bytes(id).map_err(|_| RecordError::BadKey)?;
        return validate_ipns(&name, value, now_nanos).map(ValidRecord::Ipns);
    }
    if let Some(id) = key.strip_prefix(PK_PREFIX) {
        let peer = PeerId::from_bytes(id).map_err(|_| RecordError::BadKey)?;
        let key = PublicKey::try_decode_protobuf(value).map_err(|e| RecordError::Malformed(e.to_string()))?;
        if key.to_peer_id() != peer {
            return Err(RecordError::KeyMismatch);
        }
        return Ok(ValidRecord::PublicKey);
    }
    Err(RecordError::UnknownNamespace)
}

/// Whether `new` should replace `held`, both valid under one key: for IPNS a higher sequence,
/// or the same sequence with a later EOL; a public key never changes.
pub fn replaces(held: &ValidRecord, new: &ValidRecord) -> bool {
    match (held, new) {
        (ValidRecord::Ipns(a), ValidRecord::Ipns(b)) => (b.sequence, b.eol_nanos) > (a.sequence, a.eol_nanos),
        _ => false,
    }
}

/// The DHT key of the IPNS record for `name`.
pub fn ipns_key(name: &PeerId) -> Vec<u8> {
    [IPNS_PREFIX, &name.to_bytes()].concat()
}

/// Verify a serialized IPNS record for `name`, following the spec's steps in order.
pub fn validate_ipns(name: &PeerId, bytes: &[u8], now_nanos: i128) -> Result<IpnsRecord, RecordError> {
    if bytes.len() > MAX_RECORD_SIZE {
        return Err(RecordError::TooLarge(bytes.len()));
    }
    let entry = IpnsEntry::decode(bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
    let (Some(sig), Some(data)) = (entry.signature_v2.as_deref(), entry.data.as_deref()) else {
        return Err(RecordError::NoV2);
    };
    if sig.is_empty() || data.is_empty() {
        return Err(RecordError::NoV2);
    }
    let key = public_key(name, entry.pub_key.as_deref())?;
    let fields = decode_data(data)?;
    if !key.verify(&[SIGNATURE_PREFIX, data].concat(), sig) {
        return Err(RecordError::BadSignature);
    }
    if entry.signature_v1.is_some() || entry.value.is_some() {
        let checks: [(&'static str, bool); 5] = [
            ("value", entry.value.as_deref().is_none_or(|v| v == fields.value)),
            ("validity", entry.validity.as_deref().is_none_or(|v| v == fields.validity)),
            ("validityType", entry.validity_type.is_none_or(|t| t as i64 as u64 == fields.validity_type)),
            ("sequence", entry.sequence.is_none_or(|s| s == fields.sequence)),
            ("ttl", entry.ttl.is_none_or(|t| t == fields.ttl)),
        ];
        if let Some((field, _)) = checks.iter().find(|(_, ok)| !ok) {
            return Err(RecordError::FieldMismatch(field));
        }
    }
    if fields.validity_type != 0 {
        return Err(RecordError::UnknownValidityType(fields.validity_type));
    }
    let validity = String::from_utf8(fields.validity).map_err(|_| RecordError::Malformed("validity".into()))?;
    let eol = OffsetDateTime::parse(&validity, &Rfc3339)
        .map_err(|e| RecordError::Malformed(format!("validity {validity:?}: {e}")))?
        .unix_timestamp_nanos();
    if eol <= now_nanos {
        return Err(RecordError::Expired(validity));
    }
    Ok(IpnsRecord { value: fields.value, sequence: fields.sequence, validity, eol_nanos: eol, ttl_nanos: fields.ttl })
}

/// The record's public key: its `pubKey` field, which must hash to the name, or the key the
/// name inlines (identity multihash, as Ed25519 names do).
fn public_key(name: &PeerId, field: Option<&[u8]>) -> Result<PublicKey, RecordError> {
    if let Some(bytes) = field {
        let key = PublicKey::try_decode_protobuf(bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
        return if key.to_peer_id() == *name { Ok(key) } else { Err(RecordError::KeyMismatch) };
    }
    let mh: &multihash::Multihash<64> = name.as_ref();
    if mh.code() != 0x00 {
        return Err(RecordError::NoPublicKey);
    }
    PublicKey::try_decode_protobuf(mh.digest()).map_err(|e| RecordError::Malformed(e.to_string()))
}

struct Fields {
    value: Vec<u8>,
    validity: Vec<u8>,
    validity_type: u64,
    sequence: u64,
    ttl: u64,
}

fn decode_data(data: &[u8]) -> Result<Fields, RecordError> {
    let doc: Ipld = serde_ipld_dagcbor::from_slice(data).map_err(|e| RecordError::Malformed(e.to_string()))?;
    let Ipld::Map(map) = doc else {
        return Err(RecordError::Malformed("data is not a map".into()));
    };
    let bytes = |k: &str| match map.get(k) {
        Some(Ipld::Bytes(b)) => Ok(b.clone()),
        _ => Err(RecordError::Malformed(format!("data[{k}] missing or not bytes"))),
    };
    let int = |k: &str| match map.get(k) {
        Some(Ipld::Integer(i)) => u64::try_from(*i).map_err(|_| RecordError::Malformed(format!("data[{k}] negative"))),
        _ => Err(RecordError::Malformed(format!("data[{k}] missing or not an integer"))),
    };
    Ok(Fields {
        value: bytes("Value")?,
        validity: bytes("Validity")?,
        validity_type: int("ValidityType")?,
        sequence: int("Sequence")?,
        ttl: int("TTL")?,
    })
}

/// Create a signed IPNS record (V2, with the legacy V1 copies and signature, as kubo writes
/// them) pointing at `value`, valid until `eol_nanos`. Keys that the peer ID cannot inline
/// (RSA) travel in `pubKey`.
pub fn create_ipns(
    key: &Keypair,
    value: &[u8],
    sequence: u64,
    eol_nanos: i128,
    ttl_nanos: u64,
) -> Result<Vec<u8>, RecordError> {
    let eol = OffsetDateTime::from_unix_timestamp_nanos(eol_nanos)
        .map_err(|e| RecordError::Malformed(format!("eol: {e}")))?;
    let validity = format_rfc3339_nanos(eol);
    let mut map = BTreeMap::new();
    map.insert("Value".to_string(), Ipld::Bytes(value.to_vec()));
    map.insert("Validity".to_string(), Ipld::Bytes(validity.as_bytes().to_vec()));
    map.insert("ValidityType".to_string(), Ipld::Integer(0));
    map.insert("Sequence".to_string(), Ipld::Integer(sequence.into()));
    map.insert("TTL".to_string(), Ipld::Integer(ttl_nanos.into()));
    let data = serde_ipld_dagcbor::to_vec(&Ipld::Map(map)).map_err(|e| RecordError::Malformed(e.to_string()))?;
    let sign = |msg: &[u8]| key.sign(msg).map_err(|e| RecordError::Malformed(format!("signing: {e}")));
    let v1 = sign(&[value, validity.as_bytes(), b"EOL"].concat())?;
    let v2 = sign(&[SIGNATURE_PREFIX, &data].concat())?;
    let public = key.public();
    let inlined = public.to_peer_id().as_ref().code() == 0x00;
    let entry = IpnsEntry {
        value: Some(value.to_vec()),
        signature_v1: Some(v1),
        validity_type: Some(0),
        validity: Some(validity.into_bytes()),
        sequence: Some(sequence),
        ttl: Some(ttl_nanos),
        pub_key: (!inlined).then(|| public.encode_protobuf()),
        signature_v2: Some(v2),
        data: Some(data),
    };
    let bytes = entry.encode_to_vec();
    if bytes.len() > MAX_RECORD_SIZE {
        return Err(RecordError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// `2006-01-02T15:04:05.999999999Z` with all nine digits, as Go's `RFC3339Nano` in UTC.
fn format_rfc3339_nanos(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i128 = 1_800_000_000 * 1_000_000_000;
    const HOUR: i128 = 3600 * 1_000_000_000;

    fn record(key: &Keypair, seq: u64, eol: i128) -> Vec<u8> {
        create_ipns(key, b"/ipfs/bafkqaaa", seq, eol, 60_000_000_000).unwrap()
    }

    #[test]
    fn created_records_validate_with_inlined_and_carried_keys() {
        for key in [Keypair::generate_ed25519(), Keypair::generate_secp256k1(), Keypair::generate_ecdsa()] {
            let name = key.public().to_peer_id();
            let bytes = record(&key, 7, NOW + HOUR);
            let got = validate(&ipns_key(&name), &bytes, NOW).unwrap();
            let ValidRecord::Ipns(r) = got else { panic!("not IPNS") };
            assert_eq!((r.value.as_slice(), r.sequence, r.ttl_nanos), (&b"/ipfs/bafkqaaa"[..], 7, 60_000_000_000));
            assert_eq!(r.eol_nanos, NOW + HOUR);
        }
    }

    #[test]
    fn data_is_canonical_dag_cbor() {
        let key = Keypair::generate_ed25519();
        let entry = IpnsEntry::decode(record(&key, 1, NOW + HOUR).as_slice()).unwrap();
        let data = entry.data.unwrap();
        // Keys sorted by length, then bytewise: TTL, Value, Sequence, Validity, ValidityType.
        let order: Vec<usize> = ["TTL", "Value", "Sequence", "Validity", "ValidityType"]
            .iter()
            .map(|k| data.windows(k.len()).position(|w| w == k.as_bytes()).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert_eq!(data[0], 0xa5); // a map of five entries
    }

    #[test]
    fn bad_records_are_refused_with_the_reason() {
        let key = Keypair::generate_ed25519();
        let name = key.public().to_peer_id();
        let other = Keypair::generate_ed25519();
        let good = record(&key, 1, NOW + HOUR);
        let check = |bytes: &[u8]| validate_ipns(&name, bytes, NOW);

        assert!(matches!(check(&record(&key, 1, NOW - 1)), Err(RecordError::Expired(_))));
        assert_eq!(validate_ipns(&other.public().to_peer_id(), &good, NOW), Err(RecordError::BadSignature));

        let mut e = IpnsEntry::decode(good.as_slice()).unwrap();
        e.value = Some(b"/ipfs/other".to_vec());
        assert_eq!(check(&e.encode_to_vec()), Err(RecordError::FieldMismatch("value")));

        let mut e = IpnsEntry::decode(good.as_slice()).unwrap();
        e.signature_v2 = None;
        assert_eq!(check(&e.encode_to_vec()), Err(RecordError::NoV2));

        let mut e = IpnsEntry::decode(good.as_slice()).unwrap();
        let sig = e.signature_v2.as_mut().unwrap();
        sig[0] ^= 1;
        assert_eq!(check(&e.encode_to_vec()), Err(RecordError::BadSignature));

        // A record signed by another key, carrying that key: not this name's.
        let mut e = IpnsEntry::decode(record(&other, 1, NOW + HOUR).as_slice()).unwrap();
        e.pub_key = Some(other.public().encode_protobuf());
        assert_eq!(check(&e.encode_to_vec()), Err(RecordError::KeyMismatch));

        // V2-only is fine.
        let e = IpnsEntry::decode(good.as_slice()).unwrap();
        let v2 = IpnsEntry { data: e.data, signature_v2: e.signature_v2, ..Default::default() };
        assert!(check(&v2.encode_to_vec()).is_ok());

        assert!(matches!(check(&[0u8; MAX_RECORD_SIZE + 1]), Err(RecordError::TooLarge(_))));
        assert!(matches!(check(b"\xff\xff"), Err(RecordError::Malformed(_))));
    }

    #[test]
    fn pk_records_must_hash_to_their_key() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let pk = key.public().encode_protobuf();
        let at = |p: &PeerId| [PK_PREFIX, &p.to_bytes()].concat();
        assert_eq!(validate(&at(&peer), &pk, NOW), Ok(ValidRecord::PublicKey));
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(validate(&at(&stranger), &pk, NOW), Err(RecordError::KeyMismatch));
        assert_eq!(validate(b"/other/x", &pk, NOW), Err(RecordError::UnknownNamespace));
    }

    #[test]
    fn newer_sequence_then_later_eol_wins() {
        let r = |sequence, eol_nanos| {
            ValidRecord::Ipns(IpnsRecord { value: vec![], sequence, validity: String::new(), eol_nanos, ttl_nanos: 0 })
        };
        assert!(replaces(&r(1, 10), &r(2, 5)));
        assert!(!replaces(&r(2, 10), &r(1, 50)));
        assert!(replaces(&r(2, 10), &r(2, 50)));
        assert!(!replaces(&r(2, 10), &r(2, 10)));
    }

    #[test]
    fn go_style_timestamps_parse() {
        let key = Keypair::generate_ed25519();
        let entry = IpnsEntry::decode(record(&key, 1, NOW + HOUR + 123).as_slice()).unwrap();
        assert_eq!(entry.validity.unwrap(), b"2027-01-15T09:00:00.000000123Z");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_validate_or_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let name = Keypair::generate_ed25519().public().to_peer_id();
            proptest::prop_assert!(validate(&ipns_key(&name), &bytes, NOW).is_err());
            let _ = validate(&[PK_PREFIX, &name.to_bytes()].concat(), &bytes, NOW);
        }

        #[test]
        fn an_accepted_mutation_still_says_what_was_signed(
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..6),
        ) {
            let key = Keypair::generate_ed25519();
            let name = key.public().to_peer_id();
            let mut bytes = record(&key, 3, NOW + HOUR);
            let len = bytes.len();
            for (at, x) in edits {
                bytes[at % len] ^= x;
            }
            // Only the ignored V1 signature may change without a refusal.
            if let Ok(r) = validate_ipns(&name, &bytes, NOW) {
                proptest::prop_assert_eq!((r.value.as_slice(), r.sequence), (&b"/ipfs/bafkqaaa"[..], 3));
            }
        }
    }
}
