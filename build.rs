//! Links the two system libraries unitdeck calls directly, by their sonames: neither
//! libsystemd-dev nor libpcre2-dev (the `-l` link names) is needed to build, only the
//! libraries every systemd machine has (`libsystemd0`, and `libpcre2-8-0`, which grep
//! needs).
//!
//! - `libsystemd.so.0`: sd-journal, for the histogram and facet scan (`src/systemd/journal/scan.rs`);
//! - `libpcre2-8.so.0`: the library journalctl loads for `--grep`, so that patterns are
//!   checked and highlighted as journalctl matches them (`src/systemd/journal/pattern.rs`).

fn main() {
    println!("cargo:rustc-link-lib=dylib:+verbatim=libsystemd.so.0");
    println!("cargo:rustc-link-lib=dylib:+verbatim=libpcre2-8.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
