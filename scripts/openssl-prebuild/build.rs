//! Builds OpenSSL with openssl-src exactly as openssl-sys's `vendored` feature does (same crate,
//! same defaults, OUT_DIR/openssl-build), and hands the install directory to the binary.
fn main() {
    let artifacts = openssl_src::Build::new().build();
    let install = artifacts
        .include_dir()
        .parent()
        .expect("openssl-src installs include/ under its install directory");
    println!("cargo:rustc-env=OPENSSL_PREBUILT_DIR={}", install.display());
    println!(
        "cargo:rustc-env=OPENSSL_PREBUILT_VERSION={}",
        openssl_src::version()
    );
}
