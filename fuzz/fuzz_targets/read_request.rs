//! Request-target → reading → policy, checked against an RFC 3986 and a
//! servlet reading of the same target (`gatehouse::fuzzing::read_request`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = gatehouse::fuzzing::read_request(data) {
        panic!("{e}");
    }
});
