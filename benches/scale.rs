mod common;
fn main() {
    if !common::benchmarking("scale") {
        return;
    }
}
