//! The server's keys, all derived from one seed so that a client can pin them: the root key
//! (BLS12-381, signs certificates; the subnet id is derived from it, as the IC derives the root
//! subnet's id from its public key) and one node key (Ed25519, signs query responses; listed
//! under `subnet/<id>/node/<node id>/public_key`).

use candid::Principal;
use ic_certification::{Certificate, HashTree};
use ic_transport_types::{QueryResponse, RequestId};
use ic_verify_bls_signature::PrivateKey as BlsPrivateKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// DER prefix of a BLS12-381 G2 public key (interface spec, "Certificate": the root key is
/// DER-wrapped with OID 1.3.6.1.4.1.44668.5.3.1.2.1 and curve 1.3.6.1.4.1.44668.5.3.2.1).
const BLS_DER_PREFIX: [u8; 37] = [
    0x30, 0x81, 0x82, 0x30, 0x1d, 0x06, 0x0d, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05,
    0x03, 0x01, 0x02, 0x01, 0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0xdc, 0x7c, 0x05, 0x03,
    0x02, 0x01, 0x03, 0x61, 0x00,
];

/// Domain separator of a certificate's signed root hash (interface spec, "Certificate").
const STATE_ROOT_DOMAIN: &[u8] = b"\x0Dic-state-root";

/// The root and node keys of one server.
pub struct Keys {
    root: BlsPrivateKey,
    root_der: Vec<u8>,
    node: ic_ed25519::PrivateKey,
    node_der: Vec<u8>,
}

impl Keys {
    /// The keys of `seed`: the same seed gives the same keys, so a root key can be pinned in
    /// icp.yaml.
    pub fn from_seed(seed: u64) -> Keys {
        let derive = |purpose: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(b"ic-sim-http ");
            h.update(purpose);
            h.update(seed.to_le_bytes());
            h.finalize().into()
        };
        let mut root_bytes = derive(b"root key");
        // Big-endian scalar: clearing the top two bits keeps it below the group order.
        root_bytes[0] &= 0x3f;
        let root = BlsPrivateKey::deserialize(&root_bytes).expect("a scalar below the order");
        let mut root_der = BLS_DER_PREFIX.to_vec();
        root_der.extend_from_slice(&root.public_key().serialize());
        let node = ic_ed25519::PrivateKey::generate_from_seed(&derive(b"node key"));
        let node_der = node.public_key().serialize_rfc8410_der();
        Keys {
            root,
            root_der,
            node,
            node_der,
        }
    }

    /// The DER-encoded root public key (133 bytes; its hex is icp's `root-key`).
    pub fn root_key_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The subnet id: the self-authenticating principal of the root key.
    pub fn subnet_id(&self) -> Principal {
        Principal::self_authenticating(&self.root_der)
    }

    /// The node's DER-encoded Ed25519 public key.
    pub fn node_key_der(&self) -> &[u8] {
        &self.node_der
    }

    /// The node id: the self-authenticating principal of the node key.
    pub fn node_id(&self) -> Principal {
        Principal::self_authenticating(&self.node_der)
    }

    /// A certificate of `tree`, signed by the root key, CBOR-encoded with the self-describe tag.
    pub fn certify(&self, tree: HashTree) -> Vec<u8> {
        let mut message = STATE_ROOT_DOMAIN.to_vec();
        message.extend_from_slice(&tree.digest());
        let signature = self.root.sign(&message).serialize().to_vec();
        cbor(&Certificate {
            tree,
            signature,
            delegation: None,
        })
    }

    /// `response` with the node's signature over it (interface spec, "Query call": the node
    /// signs `\x0Bic-response` and the representation-independent hash of the response with
    /// the request id and the time).
    pub fn sign_query(
        &self,
        mut response: QueryResponse,
        request_id: RequestId,
        time: u64,
    ) -> QueryResponse {
        let signable = response.signable(request_id, time);
        let signature = ic_transport_types::NodeSignature {
            timestamp: time,
            signature: self.node.sign_message(&signable).to_vec(),
            identity: self.node_id(),
        };
        match &mut response {
            QueryResponse::Replied { signatures, .. }
            | QueryResponse::Rejected { signatures, .. } => signatures.push(signature),
        }
        response
    }
}

/// CBOR with the self-describe tag (55799), as the replica sends it.
pub fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut serializer = serde_cbor::Serializer::new(Vec::new());
    serializer.self_describe().expect("writing to memory");
    value
        .serialize(&mut serializer)
        .expect("the server's values encode as CBOR");
    serializer.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_distinct_per_seed() {
        let (a, b, c) = (Keys::from_seed(0), Keys::from_seed(0), Keys::from_seed(1));
        assert_eq!(a.root_key_der(), b.root_key_der());
        assert_ne!(a.root_key_der(), c.root_key_der());
        assert_eq!(a.root_key_der().len(), 133);
        assert_eq!(a.node_key_der().len(), 44);
        assert_eq!(a.subnet_id().as_slice().len(), 29);
    }

    #[test]
    fn a_certificate_verifies_under_the_root_key_only() {
        let keys = Keys::from_seed(7);
        let tree = ic_certification::labeled(b"time".to_vec(), ic_certification::leaf(vec![1]));
        let cert: Certificate = serde_cbor::from_slice(&keys.certify(tree.clone())).unwrap();
        let mut message = STATE_ROOT_DOMAIN.to_vec();
        message.extend_from_slice(&tree.digest());
        let raw = &keys.root_key_der()[BLS_DER_PREFIX.len()..];
        assert!(
            ic_verify_bls_signature::verify_bls_signature(&cert.signature, &message, raw).is_ok()
        );
        let other = Keys::from_seed(8);
        let other = &other.root_key_der()[BLS_DER_PREFIX.len()..];
        assert!(
            ic_verify_bls_signature::verify_bls_signature(&cert.signature, &message, other)
                .is_err()
        );
    }
}
