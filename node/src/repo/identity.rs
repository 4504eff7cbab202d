//! The node's Ed25519 identity key and the libp2p peer ID derived from it.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use ed25519_dalek::SigningKey;

/// The node's identity: an Ed25519 key pair.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// A fresh random identity.
    pub(crate) fn generate() -> Self {
        Identity { key: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    /// The 32-byte secret seed (what libp2p's `ed25519::SecretKey` takes).
    pub(crate) fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key bytes.
    pub(crate) fn public_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The libp2p peer ID: identity multihash of the protobuf `PublicKey{Type: Ed25519, Data}`,
    /// in base58btc (`12D3KooW…`).
    pub fn peer_id(&self) -> String {
        let mut proto = vec![0x08, 0x01, 0x12, 0x20];
        proto.extend_from_slice(&self.public_bytes());
        let mut mh = vec![0x00, proto.len() as u8];
        mh.extend_from_slice(&proto);
        multibase::Base::Base58Btc.encode(mh)
    }

    /// Save to `path` with owner-only permissions; refuses to overwrite.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        let hex: String = self.secret_bytes().iter().map(|b| format!("{b:02x}")).collect();
        writeln!(f, "ed25519 {hex}")?;
        f.sync_all()
    }

    /// Load from `path`.
    pub fn load(path: &Path) -> io::Result<Self> {
        let text = fs::read_to_string(path)?;
        let bad =
            || io::Error::new(io::ErrorKind::InvalidData, format!("{} is not a cairn identity key", path.display()));
        let hex = text.trim().strip_prefix("ed25519 ").ok_or_else(bad)?;
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Identity { key: SigningKey::from_bytes(&seed) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_and_peer_id_shape() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate();
        let p = dir.path().join("identity.key");
        id.save(&p).unwrap();
        assert!(id.save(&p).is_err());
        let back = Identity::load(&p).unwrap();
        assert_eq!(back.peer_id(), id.peer_id());
        assert!(id.peer_id().starts_with("12D3KooW"), "{}", id.peer_id());
    }
}
