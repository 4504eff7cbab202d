//! Bad IPNS records never replace a good one, whichever way they come (a DHT put, an offer,
//! a PubSub message), and each is refused with its reason: a bad signature, V1 fields that
//! disagree with the signed V2 data, an expired validity, a lower sequence, a key that does
//! not match the name, over 10 KiB. In-process nodes on the memory transport.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use cairn_node::names::NameError;
use cairn_node::net::NetError;
use cairn_node::node::Node;
use cairn_node::testnet;
use cairn_protocol::names::Name;
use cairn_protocol::records::{self, IpnsEntry, RecordError};
use libp2p::identity::Keypair;
use prost::Message;

const DAY: Duration = Duration::from_secs(24 * 3600);
const HOUR_NS: i128 = 3_600_000_000_000;

fn now_nanos() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as i128
}

fn record(key: &Keypair, value: &str, seq: u64, eol: i128) -> Vec<u8> {
    records::create_ipns(key, value.as_bytes(), seq, eol, 60_000_000_000).expect("a record")
}

/// Resolve on `node` until it answers `want` (within 10 s).
async fn resolves_to(node: &Node, name: Name, want: &str) -> Result<()> {
    let mut last = None;
    for _ in 0..100 {
        match node.names().resolve(name, false).await {
            Ok(r) if r.value == want => return Ok(()),
            other => last = Some(other.map(|r| r.value)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{name} never resolved to {want}: last {last:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_refused_and_never_replace_a_good_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let nodes = testnet::nodes(dir.path(), 4, |_| {}).await?;
    let (publisher, attacker, reader) = (&nodes[0], &nodes[1], &nodes[2]);
    let ks = publisher.repo().keystore();
    ks.generate("site")?;
    let key = ks.get("site")?;
    let name = Name::new(key.public().to_peer_id());
    let routing = name.routing_key();

    // Two versions: the good record has sequence 1.
    publisher.names().publish("site", "/ipfs/bafkqaaa".into(), DAY, Duration::from_secs(3600)).await?;
    let good = publisher.names().publish("site", "/ipfs/bafkqaaa/good".into(), DAY, Duration::from_secs(3600)).await?;
    ensure!(good.sequence == 1, "{good:?}");
    resolves_to(reader, name, "/ipfs/bafkqaaa/good").await?;

    let stranger = Keypair::generate_ed25519();
    let eol = now_nanos() + 2 * HOUR_NS;
    let mut bad_sig = IpnsEntry::decode(record(&key, "/ipfs/bafkqaaa/bad-sig", 9, eol).as_slice())?;
    bad_sig.signature_v2.as_mut().context("v2 signature")?[7] ^= 0x40;
    let mut v1_lies = IpnsEntry::decode(record(&key, "/ipfs/bafkqaaa/v2-says", 9, eol).as_slice())?;
    v1_lies.value = Some(b"/ipfs/bafkqaaa/v1-says".to_vec());
    let mut foreign = IpnsEntry::decode(record(&stranger, "/ipfs/bafkqaaa/foreign", 9, eol).as_slice())?;
    foreign.pub_key = Some(stranger.public().encode_protobuf());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad signature", bad_sig.encode_to_vec()),
        ("V1 and V2 disagree", v1_lies.encode_to_vec()),
        ("expired", record(&key, "/ipfs/bafkqaaa/expired", 9, now_nanos() - HOUR_NS)),
        ("lower sequence", record(&key, "/ipfs/bafkqaaa/older", 0, eol)),
        ("another key", foreign.encode_to_vec()),
        ("signed by another key, no key carried", record(&stranger, "/ipfs/bafkqaaa/stranger", 9, eol)),
        ("over 10 KiB", vec![0u8; records::MAX_RECORD_SIZE + 1]),
    ];

    for (what, bytes) in &cases {
        // A DHT put from another node: refused there, with the reason.
        let put = attacker.net().put_value(routing.clone(), bytes.clone()).await;
        match (what, put) {
            (&"lower sequence", Err(NetError::Dht(m))) => ensure!(m.contains("newer record"), "{what}: {m}"),
            (_, Err(NetError::InvalidRecord(e))) => println!("{what}: put refused: {e}"),
            (_, other) => bail!("{what}: put gave {other:?}"),
        }
        // Offered to the reader directly (as PubSub and Fetch do): refused or not kept.
        match (what, reader.names().offer(name, bytes.clone()).await) {
            (&"lower sequence", Ok(false)) => {}
            (_, Err(NameError::Record(e))) => {
                let expected = match *what {
                    "bad signature" | "signed by another key, no key carried" => matches!(e, RecordError::BadSignature),
                    "V1 and V2 disagree" => matches!(e, RecordError::FieldMismatch("value")),
                    "expired" => matches!(e, RecordError::Expired(_)),
                    "another key" => matches!(e, RecordError::KeyMismatch),
                    "over 10 KiB" => matches!(e, RecordError::TooLarge(_)),
                    _ => false,
                };
                ensure!(expected, "{what}: refused for the wrong reason: {e}");
            }
            (_, other) => bail!("{what}: offer gave {other:?}"),
        }
    }

    // The same records as PubSub messages, then a marker on another name's topic from the
    // same sender: once the reader has the marker, it has handled everything sent before it.
    let other = Keypair::generate_ed25519();
    let other_name = Name::new(other.public().to_peer_id());
    attacker.net().put_value(other_name.routing_key(), record(&other, "/ipfs/bafkqaaa/first", 0, eol)).await?;
    resolves_to(reader, other_name, "/ipfs/bafkqaaa/first").await?; // the reader follows both topics
    let at = reader.net().addrs().await?.into_iter().next().context("the reader listens nowhere")?;
    attacker.net().dial(format!("{at}/p2p/{}", reader.net().local_peer_id()).parse()?).await?;
    for topic in [name.pubsub_topic(), other_name.pubsub_topic()] {
        // Publishing needs the reader's subscription to have reached the attacker.
        for _ in 0..100 {
            if attacker.net().pubsub_peers(topic.clone()).await?.contains(&reader.net().local_peer_id()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for (_, bytes) in &cases {
        attacker.net().pubsub_publish(name.pubsub_topic(), bytes.clone()).await.context("bad record on PubSub")?;
    }
    attacker.net().pubsub_publish(other_name.pubsub_topic(), record(&other, "/ipfs/bafkqaaa/marker", 1, eol)).await?;
    resolves_to(reader, other_name, "/ipfs/bafkqaaa/marker").await?;

    // Through it all, the good record stands: cached, in the reader's DHT store, and on a
    // fresh lookup.
    let cached = reader.names().resolve(name, false).await?;
    ensure!(cached.value == "/ipfs/bafkqaaa/good" && cached.sequence == 1, "{cached:?}");
    let held = records::validate_ipns(&name.peer_id(), &reader.net().get_value(routing.clone()).await?, now_nanos())?;
    ensure!(held.value == b"/ipfs/bafkqaaa/good" && held.sequence == 1, "{held:?}");
    let fresh = nodes[3].names().resolve(name, true).await?;
    ensure!(fresh.value == "/ipfs/bafkqaaa/good", "{fresh:?}");
    for n in &nodes {
        n.shutdown().await;
    }
    Ok(())
}
