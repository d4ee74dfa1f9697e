//! Storing candid records in ic-stable-structures (feature `cdk`).

use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use std::borrow::Cow;

/// A candid-encoded stored value. New fields of a stored record must be `opt` (candid decodes
/// them as `None` from older bytes).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Candid<T>(pub T);

impl<T> Storable for Candid<T>
where
    T: candid::CandidType + for<'de> candid::Deserialize<'de>,
{
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(candid::encode_one(&self.0).expect("candid encoding of a stored record"))
    }

    fn into_bytes(self) -> Vec<u8> {
        candid::encode_one(&self.0).expect("candid encoding of a stored record")
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Candid(candid::decode_one(&bytes).expect("candid decoding of a stored record"))
    }

    const BOUND: Bound = Bound::Unbounded;
}
