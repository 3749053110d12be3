//! A rejection names the C source line of the failing instruction: one
//! program per rejection class in fixtures/rejects.bpf.c (compiled with
//! clang -g -O2, the object committed; regen.sh rebuilds it), each failing
//! at the line its source marks `reject: CLASS`.

use bpfkit_object::ObjectSpec;
use bpfkit_verifier::{Program, Verifier, VerifyOptions};
use std::path::PathBuf;

fn fixture() -> (ObjectSpec, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let spec = ObjectSpec::from_file(&dir.join("rejects.bpf.o")).unwrap();
    let source = std::fs::read_to_string(dir.join("rejects.bpf.c")).unwrap();
    (spec, source)
}

/// The 1-based number of the source line that contains `marker`.
fn line_of(source: &str, marker: &str) -> u32 {
    source
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line says `{marker}`")) as u32
        + 1
}

#[test]
fn each_rejection_names_its_c_line_and_reason() {
    let (spec, source) = fixture();
    // Program, class (its `reject:` marker), words the reason must hold,
    // and whether the rule is one for unprivileged loaders only.
    let classes = [
        ("null_unchecked", "null", "may be NULL", false),
        ("oob_map_value", "map value", "map value", false),
        ("oob_packet", "packet", "invalid access to packet", false),
        ("oob_ctx", "ctx", "invalid bpf_context access", false),
        ("oob_stack", "stack", "stack", false),
        ("unreleased", "reference", "Unreleased reference", false),
        (
            "unreleased_task",
            "kfunc",
            "release it with bpf_task_release",
            false,
        ),
        ("bad_return", "return", "should have been in [0, 1]", false),
        ("unbounded_loop", "loop", "too large", false),
        (
            "uninit_stack",
            "uninit",
            "invalid indirect read from stack",
            true,
        ),
        ("ptr_leak", "leak", "leaks addr into map", true),
        (
            "ptr_arith",
            "arith",
            "pointer arithmetic with *= operator prohibited",
            false,
        ),
        (
            "bad_helper_arg",
            "helper arg",
            "R2 type=scalar expected=fp",
            false,
        ),
    ];
    let mut wrong = Vec::new();
    for (prog, class, reason, unprivileged) in classes {
        let p = &spec.programs[prog];
        let opts = VerifyOptions {
            unprivileged,
            // Enough to hit the limit without spending a debug build's minute on 1M insns.
            max_insns: 100_000,
            ..VerifyOptions::default()
        };
        let err = match Verifier::new(p.kind.prog_type).verify(
            Program::Object {
                object: &spec,
                program: p,
            },
            &opts,
        ) {
            Ok(_) => {
                wrong.push(format!("{prog}: accepted"));
                continue;
            }
            Err(e) => e,
        };
        let want = line_of(&source, &format!("reject: {class}"));
        let rendered = err.to_string();
        match &err.line {
            Some(l)
                if l.line == want
                    && l.file.ends_with("rejects.bpf.c")
                    && l.text.contains("reject:") => {}
            other => wrong.push(format!(
                "{prog}: expected rejects.bpf.c:{want}, got {other:?}\n{rendered}"
            )),
        }
        if !err.message.contains(reason) {
            wrong.push(format!(
                "{prog}: the reason does not say `{reason}`:\n{rendered}"
            ));
        }
        if !rendered.contains(&format!("rejects.bpf.c:{want}")) || err.disasm.is_empty() {
            wrong.push(format!(
                "{prog}: the report lacks the line or the instruction:\n{rendered}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn null_and_reference_messages_point_back_to_the_helper_call() {
    let (spec, source) = fixture();
    for (prog, marker, helper) in [
        ("null_unchecked", "lookup: null", "bpf_map_lookup_elem"),
        ("unreleased", "reserve: reference", "bpf_ringbuf_reserve"),
        ("unreleased_task", "acquire: kfunc", "bpf_task_from_pid"),
    ] {
        let p = &spec.programs[prog];
        let err = Verifier::new(p.kind.prog_type)
            .verify(
                Program::Object {
                    object: &spec,
                    program: p,
                },
                &VerifyOptions::default(),
            )
            .unwrap_err();
        let at = format!("{helper} at rejects.bpf.c:{}", line_of(&source, marker));
        assert!(
            err.message.contains(&at),
            "{prog}: the message should say `{at}`: {}",
            err.message
        );
        assert!(
            !err.state.is_empty() && err.state.contains("R10=fp"),
            "{prog}: {}",
            err.state
        );
    }
}

#[test]
fn the_log_is_a_kernel_style_trace() {
    let (spec, _) = fixture();
    let p = &spec.programs["oob_packet"];
    let opts = VerifyOptions {
        log: true,
        ..VerifyOptions::default()
    };
    let err = Verifier::new(p.kind.prog_type)
        .verify(
            Program::Object {
                object: &spec,
                program: p,
            },
            &opts,
        )
        .unwrap_err();
    let first = err.log.lines().next().unwrap_or("");
    assert!(
        first.starts_with("0: r2 = *(u32 *)(r1 + 0)") || first.starts_with("0: "),
        "{}",
        err.log
    );
    assert!(err.log.contains("R2=pkt("), "{}", err.log);
}
