//! Sample specs: `tally_vote` (facts), `word_stats` (strings and lists), `weighted_score`
//! (strings and integers in a loop), `inventory` (61 nodes of everything: the benchmark's
//! self-patch) and `amortize` (integer arithmetic in a fold). Tests, benchmarks and the `self_upgrade` schema's example
//! use them; `samples/*.json` beside the crate are the files.

/// Counts votes in the tool's facts.
pub const TALLY_VOTE: &str = include_str!("../samples/tally_vote.json");
/// Summarises a list of words.
pub const WORD_STATS: &str = include_str!("../samples/word_stats.json");
/// Sums weighted scores.
pub const WEIGHTED_SCORE: &str = include_str!("../samples/weighted_score.json");

/// Keeps stock counts.
pub const INVENTORY: &str = include_str!("../samples/inventory.json");

/// Integer arithmetic in a fold: a loan's balance.
pub const AMORTIZE: &str = include_str!("../samples/amortize.json");

/// Every sample, by name.
pub const ALL: &[(&str, &str)] = &[
    ("tally_vote", TALLY_VOTE),
    ("word_stats", WORD_STATS),
    ("weighted_score", WEIGHTED_SCORE),
    ("inventory", INVENTORY),
    ("amortize", AMORTIZE),
];

/// The sample called `name`, as JSON.
pub fn json(name: &str) -> Option<serde_json::Value> {
    ALL.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| serde_json::from_str(text).expect("the samples are JSON"))
}
