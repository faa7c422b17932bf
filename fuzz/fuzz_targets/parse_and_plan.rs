//! Arbitrary bytes through everything `seatrial check` does with a file: parse, plan, render the errors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let problems = seatrial::scenario::check_text(std::path::Path::new("/tmp/seatrial-fuzz/scenario.yaml"), &text);
    for problem in &problems {
        let _ = problem.render(false);
    }
});
