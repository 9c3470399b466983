mod common;
fn main() {
    if !common::benchmarking("restart") {
        return;
    }
}
