//! The property every error value must have: a message, and one that does
//! not say the same thing twice when printed with its sources the way
//! `anyhow`'s `{:#}` (and so the `bpfkit` binary) prints it, each source
//! after `": "`.
//!
//! Shared by the fuzz checks of the crates whose errors wrap others.

/// Panics unless `e` and its sources each have a non-empty message and the
/// whole chain repeats no clause: no message contains its source's, and
/// (in messages whose quoting can be told from their words) no two
/// neighbouring `": "`-separated clauses are equal.
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
    let unquoted = neutralize_quoted(&full);
    let clauses: Vec<&str> = unquoted.split(": ").collect();
    // Clauses quoting input say whatever the input says. `{:?}` quoting is
    // unambiguous (neutralized above), but backtick quoting is not: a
    // backtick in the quoted input (a .config value, a BTF name) makes its
    // text look like the message's own. So clauses are compared only in
    // messages without backticks; the source check above holds for all.
    if !unquoted.contains('`') {
        let own = |c: &str| !c.trim().is_empty() && !c.contains('"');
        for pair in clauses.windows(2) {
            if own(pair[0]) && own(pair[1]) {
                assert_ne!(pair[0], pair[1], "error message repeats a clause: `{full}`");
            }
        }
    }
}

/// `text` with the `": "` inside `{:?}`-quoted input (`"..."`) made no
/// longer a separator: a message may quote input that repeats itself,
/// which is not the message repeating itself.
fn neutralize_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                } else if c == ':' && chars.peek() == Some(&' ') {
                    out.push_str(":\u{0}");
                    continue;
                }
            }
            None if c == '"' => quote = Some(c),
            None => {}
        }
        out.push(c);
    }
    out
}
