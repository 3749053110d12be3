//! The property every error value must have: a message, and one that does
//! not say the same thing twice when printed with its sources the way
//! `anyhow`'s `{:#}` (and so the `bpfkit` binary) prints it, each source
//! after `": "`.
//!
//! Shared by the fuzz checks of the crates whose errors wrap others.

/// Panics unless `e` and its sources each have a non-empty message and the
/// whole chain repeats no clause: no message contains its source's, and no
/// two neighbouring `": "`-separated clauses are equal.
pub fn assert_clean(e: &dyn std::error::Error) {
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    let full = chain.join(": ");
    for message in &chain {
        assert!(
            !message.trim().is_empty(),
            "empty error message in `{full}`: {e:?}"
        );
    }
    for pair in chain.windows(2) {
        assert!(
            !pair[0].contains(pair[1].as_str()),
            "error message repeats its source: `{full}`"
        );
    }
    let clauses: Vec<&str> = full.split(": ").collect();
    for pair in clauses.windows(2) {
        assert_ne!(pair[0], pair[1], "error message repeats a clause: `{full}`");
    }
}
