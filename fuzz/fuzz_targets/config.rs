//! `gatehouse::fuzzing::config`: no input makes it panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gatehouse::fuzzing::config(data));
