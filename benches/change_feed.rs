mod common;
fn main() {
    if !common::benchmarking("change_feed") {
        return;
    }
}
