//! Pages of the list endpoints. Every list endpoint of the three canisters answers one page:
//! the items from a cursor on, cut off when the next item would take the page past
//! [`PAGE_BYTES`] of candid (or past the caller's count limit), with the cursor to continue
//! from (`next_from`, absent when the page reaches the end).
//!
//! A page is measured by each item's own candid encoding, type table included, which is more
//! than the item takes inside the page's `vec`: a page's reply is always under [`PAGE_BYTES`]
//! plus the few bytes of its envelope, far under the IC's 2 MiB reply limit. A page holds at
//! least one item (each store bounds its items far below [`PAGE_BYTES`]), so paging always moves
//! on.

use candid::CandidType;

/// Most bytes of items in one page: half the IC's 2 MiB reply limit.
pub const PAGE_BYTES: usize = 1024 * 1024;

/// Most items a caller may ask for in one page (a count limit above it is lowered to it).
pub const MAX_PAGE_ITEMS: u32 = 10_000;

/// The candid size of `item` as [`collect`] counts it: its own encoding, type table included.
pub fn encoded_len<T: CandidType>(item: &T) -> usize {
    candid::encode_one(item).map_or(usize::MAX, |bytes| bytes.len())
}

/// The first items of `items` (each with its cursor) that fit in `max_bytes` and `max_items`
/// (at least one), and the cursor of the first item left out.
pub fn collect<C, T: CandidType>(
    items: impl IntoIterator<Item = (C, T)>,
    max_items: u32,
    max_bytes: usize,
) -> (Vec<T>, Option<C>) {
    let max_items = max_items.clamp(1, MAX_PAGE_ITEMS) as usize;
    let mut page = Vec::new();
    let mut bytes = 0usize;
    for (cursor, item) in items {
        let size = encoded_len(&item);
        if !page.is_empty() && (page.len() >= max_items || bytes.saturating_add(size) > max_bytes) {
            return (page, Some(cursor));
        }
        bytes = bytes.saturating_add(size);
        page.push(item);
    }
    (page, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stops_at_the_byte_limit_and_names_the_next_item() {
        let items = (0u64..100).map(|i| (i, "x".repeat(100)));
        let one = encoded_len(&"x".repeat(100));
        let (page, next) = collect(items, 1000, one * 10 + 5);
        assert_eq!(page.len(), 10);
        assert_eq!(next, Some(10));
    }

    #[test]
    fn a_page_stops_at_the_count_and_ends_without_a_cursor() {
        let (page, next) = collect((0u64..5).map(|i| (i, i)), 3, PAGE_BYTES);
        assert_eq!((page, next), (vec![0, 1, 2], Some(3)));
        let (page, next) = collect((0u64..5).map(|i| (i, i)), 10, PAGE_BYTES);
        assert_eq!((page.len(), next), (5, None));
    }

    #[test]
    fn an_item_larger_than_the_page_still_moves_on() {
        let (page, next) = collect([(1u8, vec![0u8; 64]), (2, vec![0; 64])], 10, 8);
        assert_eq!((page.len(), next), (1, Some(2)));
        let (page, next) = collect((0u64..5).map(|i| (i, i)), 0, PAGE_BYTES);
        assert_eq!(
            (page.len(), next),
            (1, Some(1)),
            "a zero limit still answers one"
        );
    }
}
