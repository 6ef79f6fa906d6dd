//! Every mistake `#[derive(Persisted)]` rejects is a compile error on the
//! tokens at fault, with a hint; one file per mistake in `tests/ui/`, the
//! expected output beside it (`TRYBUILD=overwrite` regenerates it).

#[test]
fn derive_rejects_unsupported_input_with_a_hint() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
