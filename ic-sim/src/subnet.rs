//! Subnets: their kinds, ids, canister ranges and node counts, and the routing table that maps a
//! canister id to the subnet hosting it.
//!
//! Subnet ids are self-authenticating principals (29 bytes), as on the IC. Named subnets (NNS,
//! II, SNS, Fiduciary, Bitcoin) hold approximately their mainnet canister ranges; unnamed ones
//! (application, system, verified application) each get the lowest free block of 2^20 canister
//! ids, so that a simulator with one application subnet allocates `rwlgt-iiaaa-aaaaa-aaaaa-cai`
//! first. A canister is created sequentially from its subnet's *allocation range*; a
//! `specified_id` must lie outside every allocation range (the replica's `InvalidSpecifiedId`).

use candid::Principal;

/// The kind of a subnet, as PocketIC names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubnetKind {
    /// An application subnet (13 nodes).
    Application,
    /// A verified application subnet (13 nodes).
    VerifiedApplication,
    /// A system subnet (13 nodes).
    System,
    /// The NNS subnet (40 nodes).
    Nns,
    /// The Internet Identity subnet (28 nodes).
    Ii,
    /// The SNS subnet (34 nodes).
    Sns,
    /// The fiduciary subnet (28 nodes).
    Fiduciary,
    /// The Bitcoin subnet (13 nodes).
    Bitcoin,
}

impl SubnetKind {
    /// Replicas on a subnet of this kind (mainnet sizes), which scale its fees.
    pub fn nodes(self) -> u32 {
        match self {
            SubnetKind::Application
            | SubnetKind::VerifiedApplication
            | SubnetKind::System
            | SubnetKind::Bitcoin => 13,
            SubnetKind::Nns => 40,
            SubnetKind::Ii | SubnetKind::Fiduciary => 28,
            SubnetKind::Sns => 34,
        }
    }

    /// The named kind whose mainnet ranges hold canister index `index`.
    pub(crate) fn named_for(index: u64) -> Option<SubnetKind> {
        [
            SubnetKind::Nns,
            SubnetKind::Ii,
            SubnetKind::Sns,
            SubnetKind::Fiduciary,
            SubnetKind::Bitcoin,
        ]
        .into_iter()
        .find(|k| {
            k.named_ranges()
                .is_some_and(|r| r.iter().any(|&(a, b)| a <= index && index <= b))
        })
    }

    /// The mainnet canister ranges of a named subnet (inclusive canister indices).
    fn named_ranges(self) -> Option<Vec<(u64, u64)>> {
        const BLOCK: u64 = 1 << 20;
        Some(match self {
            // The NNS range minus the II canister (rdmx6-jaaaa-aaaaa-aaadq-cai, index 7), which
            // lives on the II subnet.
            SubnetKind::Nns => vec![(0, 6), (8, BLOCK - 1)],
            SubnetKind::Ii => vec![(7, 7), (0x21 * BLOCK, 0x22 * BLOCK - 1)],
            SubnetKind::Sns => vec![(0x20 * BLOCK, 0x21 * BLOCK - 1)],
            SubnetKind::Fiduciary => vec![(0x23 * BLOCK, 0x24 * BLOCK - 1)],
            SubnetKind::Bitcoin => vec![(0x1A * BLOCK, 0x1B * BLOCK - 1)],
            _ => return None,
        })
    }
}

/// The block (of 2^20 ids) of PocketIC's first application subnet: `lxzze-o7777-77777-aaaaa-cai`
/// is index 0xFFFF_FFFF_FFE0_0000.
const POCKET_IC_FIRST_BLOCK: u64 = 0xFFFF_FFFF_FFE0_0000 >> 20;

/// What the simulator tells about one subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetInfo {
    /// The subnet id (a 29-byte self-authenticating principal).
    pub id: Principal,
    /// Its kind.
    pub kind: SubnetKind,
    /// Replicas on it.
    pub nodes: u32,
    /// The canister ids it hosts: inclusive ranges, ascending.
    pub ranges: Vec<(Principal, Principal)>,
}

/// One simulated subnet.
#[derive(Clone, Debug)]
pub(crate) struct Subnet {
    pub(crate) id: Principal,
    pub(crate) kind: SubnetKind,
    /// Inclusive ranges of canister indices it hosts.
    pub(crate) ranges: Vec<(u64, u64)>,
    /// The inclusive range of indices `create_canister` allocates from, and the next free one.
    pub(crate) allocation: (u64, u64),
    pub(crate) next_index: u64,
}

impl Subnet {
    pub(crate) fn info(&self) -> SubnetInfo {
        SubnetInfo {
            id: self.id,
            kind: self.kind,
            nodes: self.kind.nodes(),
            ranges: self
                .ranges
                .iter()
                .map(|&(a, b)| (canister_id(a), canister_id(b)))
                .collect(),
        }
    }

    pub(crate) fn hosts(&self, id: Principal) -> bool {
        canister_index(id).is_some_and(|i| self.ranges.iter().any(|&(a, b)| a <= i && i <= b))
    }

    fn in_allocation_range(&self, index: u64) -> bool {
        self.allocation.0 <= index && index <= self.allocation.1
    }
}

/// The id of the subnet created `index`th (a 29-byte self-authenticating id, as the IC's are).
pub(crate) fn derived_id(index: usize, kind: SubnetKind) -> Principal {
    Principal::self_authenticating(format!("ic-sim subnet {index} {kind:?}").as_bytes())
}

/// A canister id from its index: 8 bytes big-endian followed by 0x01 0x01, as the IC builds them.
pub(crate) fn canister_id(index: u64) -> Principal {
    let mut bytes = index.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0x01, 0x01]);
    Principal::from_slice(&bytes)
}

/// The index of a canister id (`None` for principals that are not canister ids).
pub(crate) fn canister_index(id: Principal) -> Option<u64> {
    let bytes = id.as_slice();
    (bytes.len() == 10 && bytes[8..] == [0x01, 0x01])
        .then(|| u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")))
}

/// The subnets of one simulator, in creation order (the index is the subnet's handle).
#[derive(Clone, Debug, Default)]
pub(crate) struct Subnets {
    pub(crate) all: Vec<Subnet>,
    /// Unnamed subnets take blocks downwards from PocketIC's first application range.
    pub(crate) from_top: bool,
}

impl Subnets {
    /// Adds a subnet of `kind`; an unnamed one gets the lowest free block of 2^20 ids, or the
    /// block holding `containing` when given. Returns its index.
    pub(crate) fn add(&mut self, kind: SubnetKind, containing: Option<u64>) -> usize {
        const BLOCK: u64 = 1 << 20;
        let index = self.all.len();
        let ranges = kind.named_ranges().unwrap_or_else(|| {
            let free = |b: &u64| {
                let (start, end) = (b * BLOCK, b * BLOCK + (BLOCK - 1));
                !self
                    .all
                    .iter()
                    .any(|s| s.ranges.iter().any(|&(a, z)| a <= end && start <= z))
            };
            let block = containing.map_or_else(
                || {
                    if self.from_top {
                        (0..POCKET_IC_FIRST_BLOCK + 1).rev().find(free)
                    } else {
                        (0..).find(free)
                    }
                    .expect("a free block exists")
                },
                |i| i / BLOCK,
            );
            vec![(block * BLOCK, block * BLOCK + (BLOCK - 1))]
        });
        // Named subnets allocate from the top of their last range (their mainnet canisters sit
        // at the bottom and are created with specified ids); a subnet created for a specified
        // id allocates nothing; the others allocate their whole block.
        let last = *ranges.last().expect("every subnet has a range");
        let allocation = if kind.named_ranges().is_some() {
            (last.1 - 0xFFFF, last.1)
        } else if containing.is_some() {
            (1, 0)
        } else {
            last
        };
        self.all.push(Subnet {
            id: derived_id(index, kind),
            kind,
            ranges,
            allocation,
            next_index: allocation.0,
        });
        index
    }

    /// The subnet hosting canister `id`.
    pub(crate) fn route(&self, id: Principal) -> Option<usize> {
        self.all.iter().position(|s| s.hosts(id))
    }

    /// The subnet with id `subnet_id`.
    pub(crate) fn by_id(&self, subnet_id: Principal) -> Option<usize> {
        self.all.iter().position(|s| s.id == subnet_id)
    }

    /// Whether `index` lies in any subnet's allocation range.
    pub(crate) fn is_allocated_range(&self, index: u64) -> bool {
        self.all.iter().any(|s| s.in_allocation_range(index))
    }

    /// Where canisters go when nothing says otherwise: the first application subnet, else the
    /// first system subnet, else the first subnet (PocketIC's default effective canister id).
    pub(crate) fn default_subnet(&self) -> usize {
        [SubnetKind::Application, SubnetKind::System]
            .iter()
            .find_map(|k| self.all.iter().position(|s| s.kind == *k))
            .unwrap_or(0)
    }

    /// The next free canister id of subnet `subnet`.
    pub(crate) fn allocate(&mut self, subnet: usize) -> Option<Principal> {
        let s = &mut self.all[subnet];
        (s.next_index <= s.allocation.1).then(|| {
            s.next_index += 1;
            canister_id(s.next_index - 1)
        })
    }
}
