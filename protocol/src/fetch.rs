//! The libp2p Fetch protocol (`/libp2p/fetch/0.0.1`), as IPNS over PubSub uses it to hand the
//! latest record to a peer that just subscribed to a name's topic: one request and one
//! response per stream, each a protobuf message behind an unsigned-varint length.
//!
//! The identifier is the record's routing key (`/ipns/` ‖ peer ID bytes). go-libp2p declares
//! it a protobuf `string` but sends those raw bytes, which are not UTF-8, so it is read here
//! as bytes.

use prost::Message as _;

/// The protocol ID.
pub const PROTOCOL: &str = "/libp2p/fetch/0.0.1";

/// Largest request accepted: an identifier is a routing key, well under this.
pub const MAX_REQUEST: usize = 1024;

/// Largest response accepted: an IPNS record (10 KiB at most) and framing.
pub const MAX_RESPONSE: usize = 12 * 1024;

/// `FetchRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FetchRequest {
    /// What is asked for (for IPNS, the routing key).
    #[prost(bytes = "vec", tag = "1")]
    pub identifier: Vec<u8>,
}

/// `FetchResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FetchResponse {
    /// [`Status`] as a number.
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// The value, when found.
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// `FetchResponse.StatusCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Found: `data` holds it.
    Ok = 0,
    /// Not held.
    NotFound = 1,
    /// The peer failed.
    Error = 2,
}

/// Why a Fetch message was refused.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    /// Over the size limit.
    #[error("fetch message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not a length-prefixed protobuf of the right shape.
    #[error("malformed fetch message: {0}")]
    Malformed(String),
}

/// `message` behind its varint length.
pub fn frame(message: &impl prost::Message) -> Vec<u8> {
    message.encode_length_delimited_to_vec()
}

/// The length a frame announces and the bytes its prefix takes, once enough has arrived;
/// `None` while the prefix is incomplete.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, FetchError> {
    match unsigned_varint::decode::usize(buf) {
        Ok((len, _)) if len > max => Err(FetchError::TooLarge(len)),
        Ok((len, rest)) => Ok(Some((len, buf.len() - rest.len()))),
        Err(unsigned_varint::decode::Error::Insufficient) if buf.len() < 10 => Ok(None),
        Err(e) => Err(FetchError::Malformed(e.to_string())),
    }
}

/// Decode a request's protobuf body (after its length prefix).
pub fn decode_request(body: &[u8]) -> Result<FetchRequest, FetchError> {
    if body.len() > MAX_REQUEST {
        return Err(FetchError::TooLarge(body.len()));
    }
    FetchRequest::decode(body).map_err(|e| FetchError::Malformed(e.to_string()))
}

/// Decode a response's protobuf body (after its length prefix): the value, `None` when the
/// peer does not hold it.
pub fn decode_response(body: &[u8]) -> Result<Option<Vec<u8>>, FetchError> {
    if body.len() > MAX_RESPONSE {
        return Err(FetchError::TooLarge(body.len()));
    }
    let r = FetchResponse::decode(body).map_err(|e| FetchError::Malformed(e.to_string()))?;
    match r.status {
        0 => Ok(Some(r.data)),
        1 => Ok(None),
        2 => Err(FetchError::Malformed("the peer answered ERROR".into())),
        s => Err(FetchError::Malformed(format!("unknown status {s}"))),
    }
}

/// A response frame.
pub fn response(status: Status, data: Vec<u8>) -> Vec<u8> {
    frame(&FetchResponse { status: status as i32, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip_through_frames() {
        let key = b"/ipns/\x00\x24\x08\x01\x12\x20\xff\xfe".to_vec(); // not UTF-8
        let f = frame(&FetchRequest { identifier: key.clone() });
        let (len, prefix) = frame_len(&f, MAX_REQUEST).unwrap().unwrap();
        assert_eq!(prefix + len, f.len());
        assert_eq!(decode_request(&f[prefix..]).unwrap().identifier, key);

        let f = response(Status::Ok, b"record".to_vec());
        let (len, prefix) = frame_len(&f, MAX_RESPONSE).unwrap().unwrap();
        assert_eq!(decode_response(&f[prefix..prefix + len]).unwrap(), Some(b"record".to_vec()));
        let f = response(Status::NotFound, Vec::new());
        assert_eq!(decode_response(&f[1..]).unwrap(), None);
    }

    #[test]
    fn oversized_and_broken_frames_are_refused() {
        assert_eq!(frame_len(&[0x80], MAX_REQUEST), Ok(None), "an incomplete prefix waits");
        assert!(matches!(frame_len(&[0xff, 0x7f], MAX_REQUEST), Err(FetchError::TooLarge(_))));
        assert!(matches!(frame_len(&[0xff; 11], MAX_REQUEST), Err(FetchError::Malformed(_))));
        assert!(decode_response(&[0x08, 0x07]).is_err(), "unknown status");
        assert!(decode_request(b"\xff\xff\xff").is_err());
    }
}
