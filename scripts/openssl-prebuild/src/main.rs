//! Prints the install directory of the OpenSSL build.rs made (the value for OPENSSL_DIR).
fn main() {
    println!("{}", env!("OPENSSL_PREBUILT_DIR"));
    eprintln!(
        "openssl-prebuild: OpenSSL {}",
        env!("OPENSSL_PREBUILT_VERSION")
    );
}
