//! The certified state tree, as far as clients read it (interface spec, "The system state
//! tree"): `time`, `request_status`, `canister/<id>/{controllers,module_hash,metadata}`,
//! `subnet/<id>/{public_key,canister_ranges,node}` and `canister_ranges/<id>`. A read builds a
//! tree of exactly the requested paths from the simulator's state; the root key signs it.
//!
//! Who may read what follows the replica (dfinity/ic
//! `rs/http_endpoints/public/src/read_state/canister.rs`, `verify_paths`): canister paths only
//! for the effective canister, private metadata only for controllers, a request's status only
//! for its sender, one request id per read.

use candid::Principal;
use ic_certification::{AsHashTree, HashTree, Label, NestedTree};
use ic_sim::Sim;

use crate::error::HttpError;
use crate::ingress::{IngressHistory, IngressState};
use crate::keys::{Keys, cbor};

/// Where a read_state request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effective {
    /// `/api/v3/canister/<id>/read_state`.
    Canister(Principal),
    /// `/api/v3/subnet/<id>/read_state`.
    Subnet(Principal),
}

/// What a tree is built from.
pub struct StateView<'a> {
    /// The simulator.
    pub sim: &'a Sim,
    /// The server's keys.
    pub keys: &'a Keys,
    /// The ingress history.
    pub history: &'a IngressHistory,
}

type Leaves = Vec<(Vec<Vec<u8>>, Vec<u8>)>;

impl StateView<'_> {
    /// The tree of `paths` (plus `time`, always) for `sender`, checked as the replica checks
    /// them.
    pub fn read(
        &self,
        sender: Principal,
        effective: Effective,
        paths: &[Vec<Label>],
    ) -> Result<HashTree, HttpError> {
        let mut tree = NestedTree::<Vec<u8>, Vec<u8>>::default();
        self.insert_time(&mut tree);
        let mut request_id: Option<&[u8]> = None;
        for path in paths {
            let labels: Vec<&[u8]> = path.iter().map(|l| l.as_bytes()).collect();
            let leaves = match labels.as_slice() {
                [b"time"] => vec![],
                [b"canister", id, rest @ ..]
                    if matches!(rest, [b"controllers"] | [b"module_hash"] | [b"metadata", _]) =>
                {
                    let Effective::Canister(effective_id) = effective else {
                        return Err(invalid_path());
                    };
                    let canister = principal(id)?;
                    if canister != effective_id {
                        return Err(HttpError::bad_request(format!(
                            "Effective principal id in URL {effective_id} does not match requested principal id: {canister}."
                        )));
                    }
                    self.canister_leaves(sender, canister, rest)?
                }
                [b"api_boundary_nodes", ..] if labels.len() <= 3 => vec![],
                [b"subnet", ..] if subnet_path_allowed(&labels) => self.subnet_leaves(),
                [b"canister_ranges", _] if matches!(effective, Effective::Subnet(_)) => {
                    self.range_leaves()
                }
                [b"request_status", id]
                | [
                    b"request_status",
                    id,
                    b"status" | b"reply" | b"reject_code" | b"reject_message" | b"error_code",
                ] => {
                    if id.len() != 32 {
                        return Err(HttpError::bad_request(
                            "Invalid request id in paths. Maybe the request ID is not of 32 bytes in length?!",
                        ));
                    }
                    if let Some(previous) = request_id
                        && previous != *id
                    {
                        return Err(HttpError::bad_request(format!(
                            "More than one non-unique request ID exists in request_status paths: {} and {}.",
                            hex::encode(previous),
                            hex::encode(id)
                        )));
                    }
                    request_id = Some(id);
                    let id: [u8; 32] = (*id).try_into().expect("length checked");
                    if let Some(entry) = self.history.get(&id)
                        && entry.sender != sender
                    {
                        return Err(HttpError::forbidden(
                            "The user tries to access Request ID not signed by the caller.",
                        ));
                    }
                    self.request_status_leaves(&id)
                }
                _ => return Err(invalid_path()),
            };
            for (leaf_path, value) in leaves {
                if leaf_path.len() >= labels.len()
                    && leaf_path
                        .iter()
                        .zip(&labels)
                        .all(|(a, b)| a.as_slice() == *b)
                {
                    tree.insert(&leaf_path, value);
                }
            }
        }
        Ok(tree.as_hash_tree())
    }

    /// `time` and `request_status/<id>`: what a synchronous call's certificate holds.
    pub fn request_status(&self, request_id: &[u8; 32]) -> HashTree {
        let mut tree = NestedTree::<Vec<u8>, Vec<u8>>::default();
        self.insert_time(&mut tree);
        for (path, value) in self.request_status_leaves(request_id) {
            tree.insert(&path, value);
        }
        tree.as_hash_tree()
    }

    fn insert_time(&self, tree: &mut NestedTree<Vec<u8>, Vec<u8>>) {
        let now = self.sim.get_time().as_nanos_since_unix_epoch();
        tree.insert(&[b"time".to_vec()], leb128(now));
    }

    fn canister_leaves(
        &self,
        sender: Principal,
        canister: Principal,
        rest: &[&[u8]],
    ) -> Result<Leaves, HttpError> {
        let sim = self.sim;
        if !sim.canister_exists(canister) {
            return Ok(vec![]);
        }
        let base = |tail: &[&[u8]]| {
            let mut path = vec![b"canister".to_vec(), canister.as_slice().to_vec()];
            path.extend(tail.iter().map(|l| l.to_vec()));
            path
        };
        Ok(match rest {
            [b"controllers"] => vec![(base(rest), cbor(&sim.get_controllers(canister)))],
            [b"module_hash"] => sim
                .module_hash(canister)
                .map(|h| (base(rest), h.to_vec()))
                .into_iter()
                .collect(),
            [b"metadata", name] => {
                let name = std::str::from_utf8(name).map_err(|e| {
                    HttpError::bad_request(format!("Could not parse the custom section name: {e}."))
                })?;
                match sim.metadata_section(canister, name) {
                    None => vec![],
                    Some(section)
                        if !section.public && !sim.get_controllers(canister).contains(&sender) =>
                    {
                        let short: String = name.chars().take(100).collect();
                        return Err(HttpError::forbidden(format!(
                            "Custom section {short} can only be requested by the controllers of the canister."
                        )));
                    }
                    Some(section) => vec![(base(rest), section.bytes)],
                }
            }
            _ => unreachable!("matched by the caller"),
        })
    }

    fn subnet_leaves(&self) -> Leaves {
        let subnet = self.keys.subnet_id().as_slice().to_vec();
        let node = self.keys.node_id().as_slice().to_vec();
        let at = |tail: &[&[u8]]| {
            let mut path = vec![b"subnet".to_vec(), subnet.clone()];
            path.extend(tail.iter().map(|l| l.to_vec()));
            path
        };
        vec![
            (at(&[b"canister_ranges"]), cbor(&self.sim.canister_ranges())),
            (
                at(&[b"node", &node, b"public_key"]),
                self.keys.node_key_der().to_vec(),
            ),
            (at(&[b"public_key"]), self.keys.root_key_der().to_vec()),
        ]
    }

    /// `canister_ranges/<subnet>/<shard>`: one shard, named by its lowest canister id.
    fn range_leaves(&self) -> Leaves {
        let ranges = self.sim.canister_ranges();
        let shard = ranges.first().map(|(low, _)| low.as_slice().to_vec());
        shard
            .map(|shard| {
                (
                    vec![
                        b"canister_ranges".to_vec(),
                        self.keys.subnet_id().as_slice().to_vec(),
                        shard,
                    ],
                    cbor(&ranges),
                )
            })
            .into_iter()
            .collect()
    }

    fn request_status_leaves(&self, request_id: &[u8; 32]) -> Leaves {
        let Some(entry) = self.history.get(request_id) else {
            return vec![];
        };
        let at = |field: &str| {
            vec![
                b"request_status".to_vec(),
                request_id.to_vec(),
                field.as_bytes().to_vec(),
            ]
        };
        match &entry.state {
            IngressState::Processing(_) => vec![(at("status"), b"processing".to_vec())],
            IngressState::Replied(reply) => vec![
                (at("reply"), reply.clone()),
                (at("status"), b"replied".to_vec()),
            ],
            IngressState::Rejected(reject) => vec![
                (at("error_code"), reject.error_code.to_string().into_bytes()),
                (at("reject_code"), leb128(reject.reject_code as u64)),
                (
                    at("reject_message"),
                    reject.reject_message.clone().into_bytes(),
                ),
                (at("status"), b"rejected".to_vec()),
            ],
        }
    }
}

/// The paths under `subnet` a client may ask for (replica: `verify_paths`).
fn subnet_path_allowed(labels: &[&[u8]]) -> bool {
    matches!(
        labels,
        [b"subnet"]
            | [b"subnet", _]
            | [b"subnet", _, b"public_key" | b"node" | b"canister_ranges"]
            | [b"subnet", _, b"node", _]
            | [b"subnet", _, b"node", _, b"public_key"]
    )
}

fn invalid_path() -> HttpError {
    HttpError::not_found("Invalid path requested.")
}

fn principal(bytes: &[u8]) -> Result<Principal, HttpError> {
    Principal::try_from_slice(bytes)
        .map_err(|e| HttpError::bad_request(format!("Could not parse principal id: {e}")))
}

/// Unsigned LEB128, as the tree stores numbers.
fn leb128(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    leb128::write::unsigned(&mut out, n).expect("writing to memory");
    out
}
