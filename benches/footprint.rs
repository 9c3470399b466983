mod common;
fn main() {
    if !common::benchmarking("footprint") {
        return;
    }
}
