// sqlx::migrate! embeds migrations/ at compile time but cannot tell cargo to rebuild when a file
// there changes; this does.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
