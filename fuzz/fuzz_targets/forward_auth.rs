//! `gatehouse::fuzzing::forward_auth`: no input makes it panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gatehouse::fuzzing::forward_auth(data));
