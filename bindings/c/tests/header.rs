//! `include/gridsync.h` is what cbindgen makes of `src/` today: regenerate it and
//! compare. With `GRIDSYNC_UPDATE_HEADER=1` the committed header is rewritten
//! instead (then review and commit it).

use std::path::Path;

#[test]
fn the_committed_header_is_the_generated_one() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("bindings/c/cbindgen.toml reads");
    // Parsed from `src/lib.rs` and the modules it declares: `with_src` runs no
    // `cargo metadata`, so this test never waits on cargo's locks. Every type the
    // header needs is defined in this crate.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = crate_dir.join("include/gridsync.h");
    if std::env::var_os("GRIDSYNC_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/gridsync.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "bindings/c/include/gridsync.h is out of date with bindings/c/src: \
         run `GRIDSYNC_UPDATE_HEADER=1 cargo test -p gridsync-c --test header` and commit it"
    );
}
