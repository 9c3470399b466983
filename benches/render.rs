mod common;
fn main() {
    if !common::benchmarking("render") {
        return;
    }
}
